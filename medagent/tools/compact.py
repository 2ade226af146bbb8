"""Compact, model-friendly output: one line per resource, a token budget per call, an explicit "N more" marker.

Lines look like ``2019-05-01 | Hemoglobin A1c/Hemoglobin.total in Blood (LOINC 4548-4) | 6.1 % | final |
Observation/abc``: date, display + code, value + unit, status, details, and always the reference so
answers can cite it. Nothing is dropped silently: when rows do not fit the limit or the budget the
text ends with ``... N more not shown (of T); narrow by ...``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medagent.tools.context import ToolContext
from medagent.tools.registry import ToolResult
from medagent.vocabulary import SYSTEM_LABELS, readable_number

number = readable_number  # the tools' number display (shared with the oracle, which copies it)


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
    """One line, no zero-width characters, at most ``limit`` characters (marked with '...').

    Text from the record is untrusted data: free text (a sentence or more) and anything that could pose
    as a chat turn, a tool call or an instruction comes back as quoted record data (:func:`quote_record_text`)."""
    if not text:
        return ""
    flat = " ".join(str(text).replace("\u200b", "").split())
    short = flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."
    return quote_record_text(short) if _needs_quoting(flat) else short


def quote_record_json(value: Any) -> Any:
    """A resource's JSON with every string quoted the way :func:`clean` quotes a line (free text and anything
    instruction-like becomes ``«...»``; codes, ids, dates and references stay as they are), nothing cut."""
    if isinstance(value, str):
        flat = " ".join(value.replace("\u200b", "").split())
        return quote_record_text(flat) if _needs_quoting(flat) else value
    if isinstance(value, dict):
        return {key: quote_record_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [quote_record_json(item) for item in value]
    return value


RECORD_QUOTE = ("\u00ab", "\u00bb")  # « » delimit text quoted from the record
FREE_TEXT_WORDS = 16
_CONTROL_TOKEN = re.compile(r"<\s*/?\s*(?:start_of_turn|end_of_turn|bos|eos|pad|unused\d+|think|\|[^<>]{0,40}?\|)\s*>",
                            re.IGNORECASE)
_ROLE_MARKER = re.compile(r"\b(system|assistant|user|model|tool|developer|human|agent|ai assistant)\s*:", re.IGNORECASE)
_INSTRUCTION_LIKE = re.compile(r"[{}<>\u00ab\u00bb]|\bignore\b.{0,20}\b(?:previous|prior|above|earlier)\b|"
                               r"\binstruction|\b(?:automated|ai)\s+(?:agent|assistant)\b", re.IGNORECASE)


def _needs_quoting(flat: str) -> bool:
    return (len(flat.split()) >= FREE_TEXT_WORDS or _CONTROL_TOKEN.search(flat) is not None
            or _ROLE_MARKER.search(flat) is not None or _INSTRUCTION_LIKE.search(flat) is not None)


def quote_record_text(text: str) -> str:
    """``«...»``: one line of record text, escaped so it cannot pose as a turn, a tool call or an
    instruction: chat-template tokens removed, role markers (``SYSTEM:``) bracketed, braces, angle
    brackets and the quote marks themselves replaced (so JSON or a closing quote cannot break out)."""
    escaped = _CONTROL_TOKEN.sub("[control token removed]", text)
    escaped = _ROLE_MARKER.sub(lambda m: f"[{m.group(1)}]", escaped)
    escaped = escaped.translate(_ESCAPES)
    return f"{RECORD_QUOTE[0]}{escaped}{RECORD_QUOTE[1]}"


_ESCAPES = str.maketrans({"{": "(", "}": ")", "<": "\u2039", ">": "\u203a", "\u00ab": '"', "\u00bb": '"',
                          "\n": " ", "\r": " "})


def join(*parts: str | None) -> str:
    return " | ".join(p for p in parts if p)


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
        why = (f"the ~{ctx.token_budget}-token budget per call" if by_budget
               else f"limit={limit}" if limit is not None else "the row cap")
        first, last = offset + 1, offset + len(shown)
        span = f"rows {first}-{last} shown" if shown else f"no rows from {first} shown"
        step = f"next page: the same arguments with offset={last}, or narrow by {hint}" if pageable \
            else f"narrow by {hint}"
        out.append(f"... {left} more not shown (of {total}; {span}, cut by {why}); {step}")
    elif offset and not lines:
        out.append(f"(offset={offset} is past the last of {total} rows)")
    out.extend(footer)
    refs = [line.row["ref"] for line in shown if line.row.get("ref")]
    for ref in references:
        if ref not in refs:
            refs.append(ref)
    return ToolResult(text="\n".join(out), rows=[line.row for line in shown], references=refs, truncated=max(left, 0))
