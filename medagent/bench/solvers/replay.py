"""Replaying a code policy's trajectory through the real agent: proof that a task is solvable within its limits.

The oracle solves through the tools but not through the agent's loop. :class:`ReplaySolver` feeds each task's
recorded tool calls (and its final answer) to the LangGraph agent as a scripted model, under the limits the
task states (``solvers.agent.limits_for``): the run must end ``answered`` and pass the graders, and its step and token
counts (the agent's own count: prompt + completion tokens of every model call, estimated at 4 characters per
token by the scripted model) are what an agent following the oracle's path would spend.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from medagent.bench.solvers.agent import AgentSolver
from medagent.fhir.client import FhirClient
from medagent.models.base import ModelRequest
from medagent.models.scripted import ScriptedPolicy
from medagent.scenarios.models import Scenario
from medagent.tools.registry import FINAL_ANSWER
from medagent.trajectory import RunOutcome


def load_trajectories(results: Path) -> dict[str, RunOutcome]:
    """Scenario id -> the recorded outcome (trial 0) of a run's ``results.jsonl``."""
    out: dict[str, RunOutcome] = {}
    for line in results.read_text().splitlines():
        record = json.loads(line)
        if record.get("trial", 0) == 0:
            out[record["scenario_id"]] = RunOutcome.model_validate(record["outcome"])
    return out


def script_of(outcome: RunOutcome) -> list[dict[str, Any]]:
    """The agent replies that reproduce a trajectory: each tool call, then the final answer."""
    replies: list[dict[str, Any]] = [
        {"tool": step.tool, "arguments": step.arguments or {}} for step in outcome.trace if step.is_tool_call
    ]
    replies.append(
        {"tool": FINAL_ANSWER, "arguments": {"answer": outcome.answer or "", "citations": list(outcome.citations)}}
    )
    return replies


_WROTE = re.compile(r"^(?:ordered|added|wrote|recorded|stopped) ([A-Z][A-Za-z]+/[A-Za-z0-9\-.]+)", re.M)


class ReplayScript:
    """The scripted model of a replay: the recorded replies in turn, with every reference the recorded run wrote
    replaced by the one the replay's own write got (the server names what it creates)."""

    def __init__(self, outcome: RunOutcome) -> None:
        self.replies = script_of(outcome)
        self.wrote = [step.wrote for step in outcome.trace if step.is_tool_call]
        self.renamed: dict[str, str] = {}
        self.turn = 0

    def __call__(self, request: ModelRequest) -> dict[str, Any]:
        if self.turn > 0 and self.turn - 1 < len(self.wrote) and self.wrote[self.turn - 1]:
            found = _WROTE.findall(request.messages[-1].content)
            for old, new in zip(self.wrote[self.turn - 1], found, strict=False):
                self.renamed[old] = new
        reply = self.replies[min(self.turn, len(self.replies) - 1)]
        self.turn += 1
        text = json.dumps(reply)
        for old, new in self.renamed.items():
            text = text.replace(old, new)
        return dict(json.loads(text))


class ReplaySolver:
    """Replays recorded trajectories through the agent (scripted model, the task's stated limits)."""

    name = "replay"
    model: str | None = "scripted-replay"

    def __init__(self, trajectories: dict[str, RunOutcome]) -> None:
        self.trajectories = trajectories

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        recorded = self.trajectories.get(scenario.id)
        if recorded is None:
            return RunOutcome(status="error", error=f"no recorded trajectory for {scenario.id}")
        solver = AgentSolver(ScriptedPolicy(ReplayScript(recorded)), model=self.model or "replay")
        return await solver.solve(scenario, client, run_id=run_id)
