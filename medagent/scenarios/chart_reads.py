"""The reads the oracle's handlers share, each one or two tool calls through a :class:`ToolCaller`.

:class:`ChartReads` holds the lookups a solver may override (``oracle-by-name`` searches conditions and
medications by the name the question writes instead of the code); the plain functions below are the same for
every solver.
"""

from __future__ import annotations

from typing import Any

from medagent.scenarios.tool_caller import ToolCaller, ToolGap
from medagent.scenarios.tool_rows import rows_of, utc_moment

MAX_ROWS = 100  # the tools' largest page
RECENT_WINDOW = "-24h"  # the tools' relative window for "within the last 24 hours"


async def every_row(tools: ToolCaller, tool: str, **arguments: Any) -> list[dict[str, Any]]:
    """Every row of a search, page after page (``offset``) while the tool says rows were left out: what an agent
    does when the token budget cuts a result."""
    rows: list[dict[str, Any]] = []
    while True:
        result = await tools.call(tool, offset=len(rows), limit=MAX_ROWS, **arguments)
        rows.extend(result.rows)
        if not result.truncated or not result.rows:
            return rows


async def observations(tools: ToolCaller, patient: str, code: str, **window: Any) -> list[dict[str, Any]]:
    """Every result of one code (``since``/``until``/``order`` narrow it); ToolGap if rows were left out."""
    return rows_of(await every_row(tools, "search_observations", patient=patient, code=code, **window), code)


async def latest_observation(tools: ToolCaller, patient: str, code: str, **window: Any) -> dict[str, Any] | None:
    """The newest result of one code (``order="oldest"``: the first) inside the window, or None."""
    result = await tools.call("search_observations", patient=patient, code=code, latest=1, **window)
    rows = rows_of(result.rows, code)
    return rows[0] if rows else None


async def conditions_oldest_first(tools: ToolCaller, patient: str, code: str) -> list[dict[str, Any]]:
    """Every Condition of one code, oldest first; ToolGap if rows were left out."""
    return await every_row(tools, "search_conditions", patient=patient, code=code, order="oldest")


def reason_words(display: str) -> str:
    """A condition's name as the ``reason`` argument takes it (at most 100 characters, cut at a word)."""
    return display if len(display) <= 100 else display[:100].rsplit(" ", 1)[0]


async def orders_with_reason(
    tools: ToolCaller, patient: str, conditions: list[dict[str, Any]], medication_code: str | None = None
) -> list[dict[str, Any]]:
    """The orders whose documented reason is one of these Condition rows: searched by the conditions' names
    (``reason=``, a few rows instead of the whole medication list), kept by the reason's reference."""
    refs = {row["ref"] for row in conditions}
    orders: dict[str, dict[str, Any]] = {}
    for display in sorted({str(row.get("display") or "") for row in conditions}):
        for row in await every_row(
            tools, "search_medications", patient=patient, reason=reason_words(display), code=medication_code
        ):
            if refs & set(row.get("reasons") or []):
                orders.setdefault(row["ref"], row)
    return list(orders.values())


async def newest_with_reason(tools: ToolCaller, patient: str, conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest order whose documented reason is one of these Condition rows (one row, or none): the newest
    order searched by the conditions' names, else every such order."""
    refs = {row["ref"] for row in conditions}
    names = sorted({str(row.get("display") or "") for row in conditions})
    if len(names) == 1:
        result = await tools.call("search_medications", patient=patient, reason=reason_words(names[0]), limit=1)
        if result.rows and refs & set(result.rows[0].get("reasons") or []):
            return result.rows
    orders = await orders_with_reason(tools, patient, conditions)
    return sorted(orders, key=lambda row: utc_moment(row.get("authored")))[-1:]


class ChartReads:
    """The oracle's overridable lookups, on one task's tools."""

    def __init__(self, tools: ToolCaller) -> None:
        self.tools = tools

    async def patient_by_mrn(self, mrn: str) -> tuple[str, dict[str, Any]]:
        """(patient id, its find_patients row) of the one patient with this MRN; ToolGap otherwise."""
        result = await self.tools.call("find_patients", identifier=mrn)
        rows = [row for row in result.rows if row.get("mrn") == mrn]
        if len(rows) != 1:
            raise ToolGap(f"find_patients(identifier={mrn!r}) gave {len(rows)} patient(s) with that MRN")
        return rows[0]["ref"].removeprefix("Patient/"), rows[0]

    async def demographics(self, mrn: str) -> tuple[str, dict[str, Any]]:
        """The patient with this MRN and their row with the age at now (the age task's answer)."""
        return await self.patient_by_mrn(mrn)

    async def patient_in_context(self, name: str, born: str) -> dict[str, Any] | None:
        """The row of the patient in context when they are the one named (None: search for them)."""
        return None

    async def conditions(self, patient: str, codes: str) -> list[dict[str, Any]]:
        return await every_row(self.tools, "search_conditions", patient=patient, code=codes)

    async def first_condition(self, patient: str, code: str) -> dict[str, Any] | None:
        """The earliest Condition with this code."""
        result = await self.tools.call("search_conditions", patient=patient, code=code, order="oldest", limit=1)
        return result.rows[0] if result.rows else None

    async def medications(self, patient: str, *, code: str | None = None, status: str = "all") -> list[dict[str, Any]]:
        return await every_row(self.tools, "search_medications", patient=patient, code=code, status=status)

    async def latest(
        self, patient: str, code: str, *, since: str | None = None, until: str | None = None
    ) -> dict[str, Any] | None:
        return await latest_observation(self.tools, patient, code, since=since, until=until)

    async def first_order(self, patient: str, code: str, which: str = "first") -> dict[str, Any] | None:
        """The first (or, ``which="last"``, the most recent) order of a medication code."""
        order = "oldest" if which == "first" else "newest"
        result = await self.tools.call("search_medications", patient=patient, code=code, order=order, limit=1)
        return result.rows[0] if result.rows else None

    async def ever_ordered(self, patient: str, code: str) -> list[dict[str, Any]]:
        """Some order of a medication code, at any time (at most one row)."""
        result = await self.tools.call("search_medications", patient=patient, code=code, limit=1)
        return result.rows

    async def orders_for_condition(
        self, patient: str, condition_code: str, medication_code: str | None = None
    ) -> list[dict[str, Any]]:
        """Orders whose documented reason is a Condition with this code (reasonReference -> Condition)."""
        found = await self.conditions(patient, condition_code)
        if not found:
            return []
        return await orders_with_reason(self.tools, patient, found, medication_code)

    async def immunizations(self, patient: str, cvx: str) -> list[dict[str, Any]]:
        """Completed administrations of one vaccine code."""
        rows = await every_row(self.tools, "search_immunizations", patient=patient, code=cvx)
        return [row for row in rows if row.get("status") in (None, "completed")]
