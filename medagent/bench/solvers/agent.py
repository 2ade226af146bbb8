"""The agent as a solver: the LangGraph agent with a model backend, writes auto-approved for scoring.

Benchmark runs approve every write to the patient in context (the grader judges what reached the server); a
write the approval path escalates is refused (no reviewer).
"""

from __future__ import annotations

from typing import Any

from medagent.fhir.client import FhirClient
from medagent.models.base import PromptProfile
from medagent.scenarios.models import Scenario
from medagent.tools.approval import ApprovalDecision
from medagent.trajectory import RunOutcome

NO_REVIEWER = ApprovalDecision(
    verdict="reject", by="benchmark", reason="no reviewer is attached to a benchmark run; the write needed one"
)
"""A benchmark run has no person to ask: a write the approval path escalates (a patient other than the one in
context) is refused, the agent is told so and goes on, as a code solver's escalated write is refused."""


def limits_for(scenario: Scenario, base: Any) -> Any:
    """The one place a task's stated limits meet the agent's: ``base`` (the agent's ``Limits``) with the tool-call
    and token limits the scenario states (its category's, e.g. the workflow tier's) in place of the defaults."""
    if scenario.limits is None:
        return base
    return base.stated(max_steps=scenario.limits.max_steps, max_tokens=scenario.limits.max_tokens)


class AgentSolver:
    """The LangGraph agent with a model backend; writes auto-approved (graded by the server's diff).

    One compiled agent serves every server: each run brings its client and gets its own run context.
    """

    def __init__(
        self,
        backend: Any,
        *,
        model: str,
        limits: Any = None,
        tool_names: list[str] | None = None,
        prompt_profile: PromptProfile | None = None,
    ) -> None:
        from medagent.agent.graph import Agent
        from medagent.agent.state import Limits
        from medagent.tools.registry import default_registry

        self.backend = backend
        self.model = model
        self.name = "agent"
        self.agent = Agent(
            model=backend,
            registry=default_registry(),
            limits=limits or Limits(),
            approval="auto",
            tool_names=tool_names,
            actor=f"medagent/{model}",
            prompt_profile=prompt_profile,
        )

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        result = await self.agent.run(
            scenario.question,
            now=scenario.now,
            patient=scenario.patient_context,
            run_id=run_id or scenario.id,
            client=client,
            limits=limits_for(scenario, self.agent.limits),
        )
        while result.pending_approval is not None:  # bounded: every resumed step counts toward the step limit
            result = await self.agent.resume(result.run_id, decision=NO_REVIEWER, client=client)
        # the run is over and its outcome goes to the results log: its checkpoints would only pile up in memory
        # over a run of thousands of tasks (one agent serves them all)
        if self.agent.checkpointer is not None:
            await self.agent.checkpointer.adelete_thread(result.run_id)
        return RunOutcome.model_validate(result.model_dump(include=set(RunOutcome.model_fields)))
