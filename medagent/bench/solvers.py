"""Solvers: what answers a scenario. The agent (any model backend) or a policy written in code.

A solver gets the scenario, a FHIR client on a freshly reset server and the run id, and returns its
:class:`~medagent.trajectory.RunOutcome` (answer, trajectory, audit); the runner then reads the server's
diff and grades. Same contract for the real agent, the oracle and the deliberately wrong policies, so
the graders are proven on the path the agent takes. Benchmark runs approve every write to the patient in context (the grader
judges what reached the server); a write the approval path escalates is refused (no reviewer).
"""

from __future__ import annotations

from typing import Any, Protocol

from medagent.fhir.client import FhirClient
from medagent.scenarios.models import Scenario
from medagent.tools.approval import ApprovalDecision
from medagent.trajectory import RunOutcome

NO_REVIEWER = ApprovalDecision(verdict="reject", by="benchmark",
                               reason="no reviewer is attached to a benchmark run; the write needed one")
"""A benchmark run has no person to ask: a write the approval path escalates (a patient other than the one in
context) is refused, the agent is told so and goes on, as a code policy's escalated write is refused."""


class Solver(Protocol):
    name: str
    model: str | None

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome: ...


class AgentSolver:
    """The LangGraph agent with a model backend; writes auto-approved (graded by the server's diff).

    One compiled agent serves every server: each run brings its client and gets its own run context.
    """

    def __init__(self, backend: Any, *, model: str, limits: Any = None, tool_names: list[str] | None = None,
                 prompt_profile: str | None = None) -> None:
        from medagent.agent.graph import Agent
        from medagent.agent.state import Limits
        from medagent.tools.registry import default_registry

        self.backend = backend
        self.model = model
        self.name = "agent"
        self.agent = Agent(model=backend, registry=default_registry(), limits=limits or Limits(), approval="auto",
                           tool_names=tool_names, actor=f"medagent/{model}", prompt_profile=prompt_profile)

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        result = await self.agent.run(scenario.question, now=scenario.now, patient=scenario.patient_context,
                                      run_id=run_id or scenario.id, client=client)
        while result.pending_approval is not None:  # bounded: every resumed step counts toward the step limit
            result = await self.agent.resume(result.run_id, decision=NO_REVIEWER, client=client)
        # the run is over and its outcome goes to the results log: its checkpoints would only pile up in memory
        # over a run of thousands of tasks (one agent serves them all)
        if self.agent.checkpointer is not None:
            await self.agent.checkpointer.adelete_thread(result.run_id)
        return RunOutcome.model_validate(result.model_dump(include=set(RunOutcome.model_fields)))
