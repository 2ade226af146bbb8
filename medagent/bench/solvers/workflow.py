"""Deliberately wrong solvers aimed at the workflow tier: each must score low where the checkpoints should catch it.

- ``note-only``: the oracle's reads, decisions, note and answer, but no order, no stop: only the note is
  written (a documentation-only shortcut).
- ``setup-only`` on the workflow tier (``shortcuts.SetupOnlySolver`` calls ``setup_view``): the oracle, but every
  read shows only what the task's setup added (the resources the runner writes before the agent starts): its
  decisions rest on the setup alone, never on the Synthea chart.
- ``empty-chart``: the oracle, but every read except the patient's identity comes back empty without reaching
  the server: the protocol applied to a chart with nothing in it (it orders what an empty chart makes due and
  answers from nothing).

Any of them may fail to finish a plan (a read it needs shows nothing): it then answers with what it has.
"""

from __future__ import annotations

from typing import Any

from medagent.bench.solvers.oracle import OracleSolver, SolverTools
from medagent.bench.solvers.tool_session import ToolSession
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer
from medagent.tools.registry import ToolResult

SHORTCUT_FAILURES = (LookupError, ValueError, TypeError, AssertionError, RuntimeError, ArithmeticError)


class NoteOnlySolver(OracleSolver):
    """Deliberately wrong solver: writes the structured note and nothing else."""

    name = "note-only"

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        if tool == "add_structured_note":
            return await super().write(s, tool, **arguments)
        return ToolResult(text=f"(not sent: the note-only policy writes no {tool})")


class ViewTools(SolverTools):
    """The tools with every read filtered to what a shortcut policy may see (``keep(row)``)."""

    def __init__(
        self, solver: OracleSolver, session: ToolSession, keep: Any, reads: tuple[str, ...] | None = None
    ) -> None:
        super().__init__(solver, session)
        self.keep = keep
        self.reads_allowed = reads  # None: every read reaches the server (filtered); else only these tools do

    async def call(self, tool_name: str, /, *, complete: bool = False, **arguments: Any) -> ToolResult:
        if self.session.is_write(tool_name):
            return await super().call(tool_name, complete=complete, **arguments)
        if self.reads_allowed is not None and tool_name not in self.reads_allowed:
            return ToolResult(text="(nothing)")
        result = await self.session.call(tool_name, strict=False, **arguments)
        rows = [row for row in result.rows if self.keep(row)]
        return ToolResult(
            text=result.text, rows=rows, references=[r["ref"] for r in rows if r.get("ref")], error=result.error
        )


def setup_view(solver: OracleSolver, tools: SolverTools, scenario: Scenario) -> SolverTools:
    """The tools as the setup-only shortcut sees them: the task's setup resources (and the patient's identity)."""
    added = {f"{r['resourceType']}/{r['id']}" for r in scenario.setup}

    def keep(row: dict[str, Any]) -> bool:
        ref = str(row.get("ref", ""))
        return ref in added or ref.startswith("Patient/") or "ref" not in row

    return ViewTools(solver, tools.session, keep)


async def solve_in_view(solver: OracleSolver, view: SolverTools, scenario: Scenario) -> OracleAnswer:
    """The oracle's answer through a restricted view; a plan the view cannot finish answers what it has."""
    try:
        return await OracleSolver.answer(solver, view, scenario)
    except SHORTCUT_FAILURES as exc:  # the plan needed something the view does not show
        return OracleAnswer(f"could not finish: {type(exc).__name__}", [])


class EmptyChartSolver(OracleSolver):
    """Deliberately wrong solver: the protocol applied to an empty chart (no read reaches the server)."""

    name = "empty-chart"
    strict_writes = False

    async def answer(self, tools: SolverTools, scenario: Scenario) -> OracleAnswer:
        return await solve_in_view(self, self.view(tools, scenario), scenario)

    def view(self, tools: SolverTools, scenario: Scenario) -> SolverTools:
        return ViewTools(
            self,
            tools.session,
            lambda row: str(row.get("ref", "")).startswith("Patient/"),
            reads=("find_patients", "get_patient"),
        )
