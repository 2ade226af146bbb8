"""The oracle: solves every scenario through the agent's typed tools; it must score 100% on every frozen set.

It hands each scenario to its category's handler (``Category.solve``, declared beside the category's generator
in ``medagent.scenarios``) with a :class:`SolverTools`: the agent's tools through ``Registry.call`` on the
bench's FHIR client (the path the agent takes), never the bundles. A handler reads the question's *meaning*
from the task (``scenario.meta``: which codes, which form of question; the task text: names, the reported list,
the note to write) and every *value* from the server. It never reads ``scenario.answer``, ``expected_writes`` or
``provenance``. Anything less than 100% is a tool gap or a ground-truth bug.

The deliberately wrong solvers (``wrong``) and ``oracle-by-name`` subclass :class:`OracleSolver` and
change one rule: how a write is sent (:meth:`OracleSolver.write`), whether a conditional task acts on either
branch (``act_on_every_branch``), or the shared lookups (:meth:`OracleSolver.reads_for`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from medagent.bench.solvers.tool_session import ToolSession
from medagent.fhir.client import FhirClient
from medagent.scenarios.category import categories, category_of, set_version
from medagent.scenarios.chart_reads import ChartReads
from medagent.scenarios.free_answers import sentence_answer
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolGap
from medagent.tools.context import AGENT_TOKEN_BUDGET
from medagent.tools.registry import Registry, ToolResult, default_registry
from medagent.trajectory import RunOutcome


class SolverTools:
    """The ``ToolCaller`` a code solver hands to a category's handler: reads straight to the task's session,
    writes through the solver's write rule."""

    def __init__(self, solver: OracleSolver, session: ToolSession) -> None:
        self.solver = solver
        self.session = session
        self.reads = solver.reads_for(self, session)

    @property
    def now(self) -> datetime:
        return self.session.now

    @property
    def act_on_every_branch(self) -> bool:
        return self.solver.act_on_every_branch

    async def call(self, tool_name: str, /, *, complete: bool = False, **arguments: Any) -> ToolResult:
        if self.session.is_write(tool_name):
            return await self.solver.write(self.session, tool_name, **arguments)
        return await self.session.call(tool_name, complete=complete, **arguments)


class OracleSolver:
    """Solves every EHRQA question and agentic task with the typed tools; must score 100%."""

    name = "oracle"
    model: str | None = None
    act_on_every_branch = False  # the always-act solver sets it: act on every conditional branch
    strict_writes = True  # the oracle expects every write to succeed

    def __init__(self, registry: Registry | None = None, *, token_budget: int | None = None) -> None:
        self.registry = registry or default_registry()
        self.token_budget = token_budget

    # ---------- the Solver protocol ----------

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        # v3 is solved as the agent sees the tools (its per-call budget); v1/v2 with the larger oracle budget
        budget = self.token_budget or (AGENT_TOKEN_BUDGET if set_version(scenario) >= 3 else None)
        kwargs = {"token_budget": budget} if budget else {}
        session = ToolSession(self.registry, client, scenario, actor=f"medagent/{self.name}", run_id=run_id, **kwargs)
        try:
            answer, citations = await self.answer(SolverTools(self, session), scenario)
        except ToolGap as exc:
            session.final(None, [])
            return session.outcome(status="error", answer=None, citations=[], error=f"tool gap: {exc}")
        kind = scenario.meta.get("answer_kind")
        if kind is not None:  # the question states no format: the free answer's sentence (scenarios.free_answers)
            answer = sentence_answer(str(kind), answer)
        session.final(answer, citations)
        return session.outcome(status="answered", answer=answer, citations=citations)

    async def answer(self, tools: SolverTools, scenario: Scenario) -> OracleAnswer:
        """The scenario's category solves it (its handler in ``medagent.scenarios``)."""
        try:
            declared = category_of(scenario)
        except KeyError:
            raise ToolGap(f"the oracle has no handler for {scenario.suite}/{scenario.category}") from None
        form = scenario.meta.get("form")
        if form is not None and form not in declared.phrasings:
            # a set written apart from the generators (scenarios/natural) files a question under the category a
            # reader would; the form it asks is solved by the category that declares that form
            owners = [c for c in categories(suite=declared.suite, tier=declared.tier) if form in c.phrasings]
            if owners:
                declared = owners[0]
        answer = await declared.solve(tools, scenario)
        key = scenario.meta.get("answer_key")  # v3 states a single value after writes as a named JSON field
        return OracleAnswer(json.dumps({key: answer.answer}), answer.citations) if key else answer

    # ---------- the rules the other code solvers change ----------

    def reads_for(self, tools: SolverTools, session: ToolSession) -> ChartReads:
        """The shared lookups the handlers use (``oracle-by-name`` searches by the question's words)."""
        return ChartReads(tools)

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        """Every write of every task goes through here."""
        return await s.call(tool, strict=self.strict_writes, **arguments)
