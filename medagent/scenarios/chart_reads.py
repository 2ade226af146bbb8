"""The reads the oracle's handlers share, each one or two tool calls through a :class:`ToolCaller`.

:class:`ChartReads` holds the lookups a solver may override (``oracle-by-name`` searches conditions and
medications by the name the question writes instead of the code); the plain functions below are the same for
every solver.
"""

from __future__ import annotations

from typing import Any

from medagent.scenarios.tool_caller import ToolCaller, ToolGap
from medagent.scenarios.tool_rows import rows_of

MAX_ROWS = 100  # the tools' largest page
RECENT_WINDOW = "-24h"  # the tools' relative window for "within the last 24 hours"


async def observations(tools: ToolCaller, patient: str, code: str, **window: Any) -> list[dict[str, Any]]:
    """Every result of one code (``since``/``until``/``order`` narrow it); ToolGap if rows were left out."""
    result = await tools.call("search_observations", complete=True, patient=patient, code=code, limit=MAX_ROWS,
                              **window)
    return rows_of(result.rows, code)


async def latest_observation(tools: ToolCaller, patient: str, code: str, **window: Any) -> dict[str, Any] | None:
    """The newest result of one code (``order="oldest"``: the first) inside the window, or None."""
    result = await tools.call("search_observations", patient=patient, code=code, latest=1, **window)
    rows = rows_of(result.rows, code)
    return rows[0] if rows else None


async def conditions_oldest_first(tools: ToolCaller, patient: str, code: str) -> list[dict[str, Any]]:
    """Every Condition of one code, oldest first; ToolGap if rows were left out."""
    result = await tools.call("search_conditions", complete=True, patient=patient, code=code, order="oldest",
                              limit=MAX_ROWS)
    return result.rows


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

    async def conditions(self, patient: str, codes: str) -> list[dict[str, Any]]:
        result = await self.tools.call("search_conditions", complete=True, patient=patient, code=codes,
                                       limit=MAX_ROWS)
        return result.rows

    async def first_condition(self, patient: str, code: str) -> dict[str, Any] | None:
        """The earliest Condition with this code."""
        result = await self.tools.call("search_conditions", patient=patient, code=code, order="oldest", limit=1)
        return result.rows[0] if result.rows else None

    async def medications(self, patient: str, *, code: str | None = None, status: str = "all") -> list[dict[str, Any]]:
        result = await self.tools.call("search_medications", complete=True, patient=patient, code=code, status=status,
                                       limit=MAX_ROWS)
        return result.rows

    async def latest(self, patient: str, code: str, *, since: str | None = None,
                     until: str | None = None) -> dict[str, Any] | None:
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

    async def orders_for_condition(self, patient: str, condition_code: str,
                                   medication_code: str | None = None) -> list[dict[str, Any]]:
        """Orders whose documented reason is a Condition with this code (reasonReference -> Condition)."""
        conditions = {row["ref"] for row in await self.conditions(patient, condition_code)}
        if not conditions:
            return []
        orders = await self.medications(patient, code=medication_code)
        return [row for row in orders if conditions & set(row.get("reasons") or [])]

    async def immunizations(self, patient: str, cvx: str) -> list[dict[str, Any]]:
        """Completed administrations of one vaccine code."""
        result = await self.tools.call("search_immunizations", complete=True, patient=patient, code=cvx,
                                       limit=MAX_ROWS)
        return [row for row in result.rows if row.get("status") in (None, "completed")]
