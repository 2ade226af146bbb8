"""Solvers: what answers a scenario. The agent (any model backend) or a policy written in code.

A solver gets the scenario and a FHIR client on a freshly reset server and returns its answer
and trajectory; the runner then reads the server's diff and grades. Same contract for the real
agent, the oracle and the deliberately wrong policies, so the graders are proven on the path
the agent takes.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from medagent.fhir.client import FhirClient
from medagent.scenarios.models import Scenario


class SolveOutcome(BaseModel):
    status: str = "answered"
    answer: str | None = None
    citations: list[str] = Field(default_factory=list)
    trace: list[dict[str, Any]] = Field(default_factory=list)
    steps: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_s: float = 0.0
    tool_s: float = 0.0
    error: str | None = None


class Solver(Protocol):
    name: str
    model: str | None

    async def solve(self, scenario: Scenario, client: FhirClient) -> SolveOutcome: ...


class AgentSolver:
    """The LangGraph agent with a model backend; writes auto-approved (graded by the server's diff)."""

    def __init__(self, backend: Any, *, model: str, limits: Any = None, tool_names: list[str] | None = None) -> None:
        from medagent.agent.state import Limits
        from medagent.tools.registry import default_registry

        self.backend = backend
        self.model = model
        self.name = "agent"
        self.limits = limits or Limits()
        self.registry = default_registry()
        self.tool_names = tool_names
        self._agents: dict[int, Any] = {}

    def agent_for(self, client: FhirClient) -> Any:
        """One compiled agent per FHIR client (i.e. per server), reused across that server's tasks."""
        from medagent.agent.graph import Agent

        if id(client) not in self._agents:
            self._agents[id(client)] = Agent(
                model=self.backend, registry=self.registry, client=client, limits=self.limits, approval="auto",
                tool_names=self.tool_names, actor=f"medagent/{self.model}")
        return self._agents[id(client)]

    async def solve(self, scenario: Scenario, client: FhirClient) -> SolveOutcome:
        agent = self.agent_for(client)
        result = await agent.run(scenario.question, now=scenario.now, patient=scenario.patient,
                                 run_id=scenario.id)
        return SolveOutcome(
            status=result.status, answer=result.answer, citations=result.citations, trace=result.trace,
            steps=result.steps, tool_calls=sum(1 for s in result.trace if s.get("tool") not in (None, "final_answer")),
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            model_s=sum(s.get("model_s", 0.0) for s in result.trace),
            tool_s=sum(s.get("tool_s", 0.0) for s in result.trace), error=result.error,
        )
