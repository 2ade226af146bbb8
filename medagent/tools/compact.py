"""Compact, model-friendly output: one line per resource, a token budget per call, an explicit "N more" marker.

Lines look like ``2019-05-01 | Hemoglobin A1c/Hemoglobin.total in Blood (LOINC 4548-4) | 6.1 % | final |
Observation/abc``: date, display + code, value + unit, status, details, and always the reference so
answers can cite it. Nothing is dropped silently: when rows do not fit the limit or the budget the
text ends with ``... N more not shown (of T); narrow by ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medagent.tools.context import ToolContext
from medagent.tools.registry import ToolResult
from medagent.untrusted_text import (
    RECORD_QUOTE,
    guard_record_text,
    needs_quoting,
    one_line,
    quote_record_text,
)
from medagent.vocabulary import SYSTEM_LABELS, readable_number

number = readable_number  # the tools' number display (shared with the oracle, which copies it)

__all__ = [
    "RECORD_QUOTE",
    "Line",
    "clean",
    "code_label",
    "guard_record_text",
    "join",
    "number",
    "quote_record_json",
    "quote_record_text",
    "render",
    "system_label",
]


def system_label(system: str | None) -> str:
    if not system:
        return ""
    return SYSTEM_LABELS.get(system, system.rstrip("/").rsplit("/", 1)[-1])


def code_label(system: str | None, code: str | None) -> str:
    if not code:
        return ""
    label = system_label(system)
    return f"{label} {code}" if label else code


def clean(text: str | None, limit: int = 120) -> str:
    """One line of record text (format characters dropped), at most ``limit`` characters (marked with '...'),
    through the one quoting rule as free text: a sentence or more, and anything that could pose as a chat
    turn, a tool call or an instruction, comes back as quoted record data (:func:`guard_record_text`)."""
    if not text:
        return ""
    flat = one_line(str(text))
    short = flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."
    return quote_record_text(short) if needs_quoting(flat, free_text=True) else short


def quote_record_json(value: Any) -> Any:
    """A resource's JSON with every string (keys too) through the one quoting rule as :func:`clean` applies it
    (free text and anything instruction-like becomes ``«...»``; codes, ids, dates and references stay as they
    are), nothing cut."""
    if isinstance(value, str):
        return quote_record_text(value) if needs_quoting(value, free_text=True) else value
    if isinstance(value, dict):
        return {quote_record_json(key): quote_record_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [quote_record_json(item) for item in value]
    return value


def join(*parts: str | None, sep: str = " | ") -> str:
    """The one place a line is assembled: every part (a display, a code, a unit, a name, a route, a reference,
    the tools' own words around them) passes the one quoting rule, whatever field it came from."""
    return sep.join(guard_record_text(p) for p in parts if p)


MARKER_ROOM = 160  # characters of the budget kept for the cut line


@dataclass
class Line:
    """One output line and the structured row it came from."""

    text: str
    row: dict[str, Any]


def render(
    ctx: ToolContext,
    header: str,
    lines: Sequence[Line],
    *,
    total: int | None = None,
    hint: str = "date (since/until) or code",
    empty: str = "no matching records",
    footer: Sequence[str] = (),
    references: Sequence[str] = (),
    offset: int = 0,
    limit: int | None = None,
    pageable: bool = True,
) -> ToolResult:
    """Fit a header and lines into the call's budget; the rest becomes an explicit 'N more' marker.

    ``total`` is how many matched on the server; ``lines`` are the rows from ``offset`` on (a page of
    them). The cut line says why rows were left out (the limit or the per-call token budget) and, for
    tools that page (``pageable``), the ``offset`` of the next page.
    """
    seen = offset + len(lines) if lines else 0  # an empty page past the end proves no rows up to the offset
    total = seen if total is None else max(total, seen)
    budget = ctx.char_budget
    out = [header]
    used = len(header) + 1 + sum(len(f) + 1 for f in footer)
    shown: list[Line] = []
    by_budget = False
    for line in lines:
        cost = len(line.text) + 1
        if shown and used + cost > budget - MARKER_ROOM:
            by_budget = True
            break
        out.append(line.text)
        shown.append(line)
        used += cost
    if not lines:
        out.append(empty)
    left = total - offset - len(shown)
    if left > 0:
        why = (
            f"the ~{ctx.token_budget}-token budget per call"
            if by_budget
            else f"limit={limit}"
            if limit is not None
            else "the row cap"
        )
        first, last = offset + 1, offset + len(shown)
        span = f"rows {first}-{last} shown" if shown else f"no rows from {first} shown"
        step = (
            f"next page: the same arguments with offset={last}, or narrow by {hint}"
            if pageable
            else f"narrow by {hint}"
        )
        out.append(f"... {left} more not shown (of {total}; {span}, cut by {why}); {step}")
    elif offset and not lines:
        out.append(f"(offset={offset} is past the last of {total} rows)")
    out.extend(footer)
    refs = [line.row["ref"] for line in shown if line.row.get("ref")]
    for ref in references:
        if ref not in refs:
            refs.append(ref)
    return ToolResult(text="\n".join(out), rows=[line.row for line in shown], references=refs, truncated=max(left, 0))
