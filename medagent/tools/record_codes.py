"""The 'none found' of a search by a code the patient's record never carries: the codes it does carry.

A small model writes well-formed codes from memory (LOINC 10000-1, CVX 100) and, told only "none found", answers
"none". When the code is nowhere in the patient's record of that type (up to now, any date), the empty result names
the codes the record does hold, most used first, so the next call can use one of them.
"""

from __future__ import annotations

from collections import Counter

from medagent.tools.compact import code_label
from medagent.tools.context import ToolContext
from medagent.tools.dates import up_to
from medagent.tools.manifest import CLINICAL_TYPES
from medagent.tools.rows import first_coding
from medagent.vocabulary import CLINICAL_DATES

__all__ = ["RECORD_CODES_SHOWN", "codes_on_record"]

RECORD_CODES_SHOWN = 12  # codes named, most used first
RECORD_CODES_READ = 1000  # rows read to count them (one page)


async def codes_on_record(ctx: ToolContext, kind: str, patient: str, codes: set[str], what: str) -> str:
    """'none found: this patient's record has no <what> with code X (up to now); its <what> codes include: ...'
    when no row of ``kind`` of the patient carries any of ``codes`` up to now; "" when one does (then the window
    or another filter left it out) or the record has no row of that type."""
    code_param, element, _ = CLINICAL_TYPES[kind]
    date_param = CLINICAL_DATES[kind].search_param
    if not codes or not code_param or not element or not date_param:
        return ""
    scope = [("patient", patient), (date_param, up_to(ctx.now))]
    held = await ctx.client.search_page(kind, [*scope, (code_param, ",".join(sorted(codes))), ("_summary", "count")])
    if int(held.get("total", 0)):
        return ""
    bundle = await ctx.client.search_page(kind, [*scope, ("_count", str(RECORD_CODES_READ)), ("_elements", element)])
    counts = Counter(first_coding(entry.get("resource", {}).get(element)) for entry in bundle.get("entry") or [])
    counts.pop(("", "", ""), None)
    if not counts:
        return ""
    shown = counts.most_common(RECORD_CODES_SHOWN)
    listed = "; ".join(f"{display} ({code_label(system, code)}) x{n}" for (system, code, display), n in shown)
    more = f"; and {len(counts) - len(shown)} more" if len(counts) > len(shown) else ""
    return (
        f"none found: this patient's record has no {what} with code {', '.join(sorted(codes))} (up to now); its "
        f"{what} codes include: {listed}{more}. Search with one of these codes, or with text= (words of the name)"
    )
