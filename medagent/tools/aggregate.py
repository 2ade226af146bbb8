"""Counting rows without reading them: groups by year, month or name (code), with n and the first and last occurrence."""

from __future__ import annotations

from typing import Any, Literal

from medagent.tools.compact import Line, join, number
from medagent.tools.dates import parse_fhir
from medagent.tools.rows import minute, named

TIME_FIELDS = ("date", "start", "authored", "onset")  # the field holding a row's clinical time, per row kind
GroupBy = Literal["year", "month", "name"]


def row_time(row: dict[str, Any]) -> str | None:
    """The clinical time of a row (effective, start, authored or onset), as the FHIR text."""
    return next((row[f] for f in TIME_FIELDS if row.get(f)), None)


def _key(row: dict[str, Any], by: GroupBy) -> str:
    if by == "name":
        code = row.get("component") or row.get("code") or ""
        return named(row.get("system") or "", code, row.get("display") or "") if not row.get("component") else f"{code}"
    when = row_time(row) or ""
    return when[:4] if by == "year" else when[:7]


def group_lines(lines: list[Line], by: GroupBy) -> list[Line]:
    """One line per group: 'key | n=3 | first <time> <ref> | last <time> <ref>' (years/months oldest first,
    names most frequent first). Exact over the lines given."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        groups.setdefault(_key(line.row, by) or "no date", []).append(line.row)
    out = []
    for key, rows in groups.items():
        timed = sorted(
            rows, key=lambda r: (parse_fhir(row_time(r)) is None, parse_fhir(row_time(r)) or 0, r.get("ref"))
        )
        first, last = timed[0], timed[-1]
        values = [r["value"] for r in rows if isinstance(r.get("value"), float)]
        row: dict[str, Any] = {
            "group": key,
            "count": len(rows),
            "first": row_time(first),
            "first_ref": first.get("ref"),
            "last": row_time(last),
            "last_ref": last.get("ref"),
            "refs": [r.get("ref") for r in timed],
        }
        spread = ""
        if values:
            row.update(min=min(values), max=max(values))
            spread = f"min {number(min(values))}, max {number(max(values))}"
        first_text = f"first {minute(row['first'])} {row['first_ref']}"
        last_text = f"last {minute(row['last'])} {row['last_ref']}" if len(rows) > 1 else ""
        out.append(Line(join(key, f"n={len(rows)}", spread, first_text, last_text), row))
    if by == "name":
        out.sort(key=lambda line: (-line.row["count"], line.row["group"]))
    else:
        out.sort(key=lambda line: line.row["group"])
    return out
