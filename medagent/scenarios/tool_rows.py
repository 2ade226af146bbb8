"""Reading the rows the agent's tools return: numbers, dates in UTC, references, and the rounding a task states."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolGap
from medagent.vocabulary import parse_instant, readable_number


def parse_time(value: str | None) -> datetime | None:
    """A row's FHIR date or date-time (None when the row has none)."""
    return parse_instant(value) if value else None


def utc_moment(value: str | None) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise ToolGap(f"a row has no usable date ({value!r})")
    return moment.astimezone(UTC)


def utc_day(value: str | None) -> str:
    """The calendar date of a FHIR date/dateTime in UTC (the scenarios' clocks are UTC)."""
    return utc_moment(value).date().isoformat()


def utc_date(value: str | None) -> date:
    """The calendar date of a FHIR date/dateTime in UTC, as a date."""
    return utc_moment(value).date()


def numeric(row: dict[str, Any]) -> float:
    value = row.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ToolGap(f"{row.get('ref')} has no numeric value in its row ({row.get('text')!r})")
    return float(value)


def refs(rows: list[dict[str, Any]]) -> list[str]:
    """The references of rows that have one."""
    return [row["ref"] for row in rows if row.get("ref")]


def rows_of(rows: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    """Rows of one code (a blood-pressure component counts as its own code)."""
    return [row for row in rows if (row.get("component") or row.get("code")) == code]


def oldest_first(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows sorted by the date under ``key``, oldest first."""
    return sorted(rows, key=lambda row: utc_moment(row.get(key)))


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def names_by_code(rows: list[dict[str, Any]]) -> dict[str, str]:
    """code -> the display of its newest row (rows come newest first)."""
    out: dict[str, str] = {}
    for row in rows:
        out.setdefault(row.get("code") or row.get("display") or row["ref"], row["display"])
    return out


def names_text(names: list[str]) -> str:
    """Names as a list answer: sorted, semicolon-separated, or "none"."""
    return "; ".join(sorted(set(names))) if names else "none"


# ---------- answer formats stated in the task text ----------

_ROUNDING = re.compile(r"rounded to (?:the nearest whole number|(\d+) decimal places?)")


def stated_decimals(question: str) -> int | None:
    """The rounding the answer format asks for (None: 'as recorded', no rounding stated)."""
    match = _ROUNDING.search(question)
    if match is None:
        return None
    return int(match.group(1)) if match.group(1) else 0


def number_text(value: float, decimals: int | None) -> str:
    """The value rounded as the question asks; with no rounding stated, as the tools display it (what an agent
    reads and copies)."""
    if decimals is None:
        return readable_number(value)
    return f"{round(value, decimals):.{decimals}f}"


def quantity_text(value: float, unit: str | None, decimals: int | None) -> str:
    return f"{number_text(value, decimals)} {unit or ''}".strip()


def stated(scenario: Scenario, key: str, pattern: str) -> Any:
    """A part of the task the text names: from ``meta`` (v2, where phrasings vary), else read from the v1 text."""
    return scenario.meta[key] if key in scenario.meta else task_text(pattern, scenario.question, scenario.id)


def value_answer(question: str, row: dict[str, Any] | None) -> OracleAnswer:
    """A value row as the answer (rounded as the question states), citing it; "none" without a row."""
    if row is None:
        return OracleAnswer("none", [])
    return OracleAnswer(quantity_text(numeric(row), row.get("unit"), stated_decimals(question)), [row["ref"]])


def task_text(pattern: str, question: str, scenario_id: str) -> str:
    """A part of the task text (a name, the reported list, the note to write); ToolGap when it is not there."""
    match = re.search(pattern, question, re.S)
    if match is None:
        raise ToolGap(f"cannot read {pattern!r} from the task text of {scenario_id}")
    return match.group(1)
