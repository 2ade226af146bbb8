"""medagent's suites as inspect_ai tasks (the optional extra ``medagent[inspect]``).

``inspect eval medagent/inspect_tasks.py@medagent_suite -T scenario_set=v2 -T suite=agentic -T limit=20 \\
    -T agent=agent -T model_url=http://vllm:8000/v1`` (or ``-T agent=oracle`` for a code solver):

- dataset: the frozen scenario set (one Sample per scenario; the scenario itself in the metadata);
- solver ``medagent_solver``: medagent's own solver (the LangGraph agent on a model endpoint, or a code
  solver) on a real FHIR server; the task's setup, diff and reset go through the runner's scoring
  (the embedded fast path on a server it starts, or ``fhir_url``: a standard FHIR server, history and tags);
- solver ``medagent_tools_solver``: inspect's own ReAct agent (``inspect_ai.agent.react``) on the eval's
  model, given medagent's tools as inspect tools (through the same registry and write approval);
  ``-T solver=tools`` on ``medagent_suite``;
- scorer ``medagent_scorer``: medagent's graders on the answer and the server diff.

Samples share one server and run one at a time on it (a lock), as in ``bench run``.
"""

from __future__ import annotations

import asyncio
import atexit
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import (
    CORRECT,
    INCORRECT,
    Score,
    Target,
    accuracy,
    scorer,
    stderr,
)
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.tool import ToolDef, ToolParams

from medagent.bench.scenario_sets import open_set, set_dir
from medagent.bench.server_diff import EmbeddedServerDiff, ServerDiff, StandardServerDiff
from medagent.bench.servers import template_db
from medagent.config import get_settings
from medagent.fhir.client import FhirClient
from medagent.fhir.server.process import EmbeddedServer
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario
from medagent.tools.context import ToolContext
from medagent.tools.registry import Registry, Tool

T = TypeVar("T")
_SERVERS: dict[str, _Server] = {}


class _Server:
    """One FHIR server for a whole eval (started on first use), lent to one sample at a time."""

    def __init__(self, fhir_url: str | None) -> None:
        self.fhir_url = fhir_url
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self.embedded: EmbeddedServer | None = None
        self.clean: int | None = None

    def lock(self) -> asyncio.Lock:
        """The lock of the running event loop (each ``inspect eval`` runs its own loop)."""
        return self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    async def base_url(self) -> str:
        if self.fhir_url:
            return self.fhir_url
        if self.embedded is None:
            folder = Path(tempfile.mkdtemp(prefix="medagent-inspect-"))
            template = await asyncio.to_thread(template_db, get_settings().home)
            self.embedded = await asyncio.to_thread(
                EmbeddedServer(template, allow_reset=True, slots=1, slots_dir=folder).start
            )
        return self.embedded.slot_url(0)

    async def scoring(self, client: FhirClient, run_id: str) -> ServerDiff:
        if self.fhir_url:
            return StandardServerDiff(client, run_id)
        if self.clean is None:
            self.clean = await client.snapshot()
        return EmbeddedServerDiff(client, self.clean)


def scenario_samples(
    scenario_set: str = "v2", suite: str = "all", split: str = "test", tier: str = "all", limit: int | None = None
) -> MemoryDataset:
    chosen = open_set(set_dir(scenario_set))
    return MemoryDataset(
        [
            Sample(id=s.id, input=s.question, target=str(s.answer), metadata={"scenario": s.model_dump(mode="json")})
            for s in chosen.load(suite, split, tier, limit)
        ],
        name=f"medagent-{chosen.name}",
    )


async def _scored_on_server(
    server: _Server, scenario: Scenario, run_id: str, solve: Callable[[FhirClient], Awaitable[T]]
) -> tuple[T, list[dict[str, Any]]]:
    """``solve(client)`` on the server after the task's setup, then the server diff, then the reset."""
    async with server.lock():
        async with FhirClient(await server.base_url(), timeout=60) as client:
            scoring = await server.scoring(client, run_id)
            await scoring.begin(scenario)
            try:
                result = await solve(client)
                changes = await scoring.changes()
            finally:
                await scoring.end()
    return result, changes


@solver
def medagent_solver(
    agent: str = "agent",
    model_url: str | None = None,
    model_name: str | None = None,
    fhir_url: str | None = None,
    max_steps: int | None = None,
) -> Any:
    """medagent's solver for ``agent`` (see ``bench run --agent``) on a FHIR server, with the server diff kept."""
    from medagent.bench.solvers.catalog import make_solver

    settings = get_settings(model=model_url, model_name=model_name)
    inner = make_solver(agent, settings.model, settings.model_name, max_steps)
    server = _SERVERS.setdefault(fhir_url or "embedded", _Server(fhir_url))

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        scenario = Scenario.model_validate(state.metadata["scenario"])
        run_id = f"inspect/{scenario.id}/{state.epoch}"
        outcome, changes = await _scored_on_server(
            server, scenario, run_id, lambda client: inner.solve(scenario, client, run_id=run_id)
        )
        state.metadata["medagent"] = {
            "answer": outcome.answer,
            "status": outcome.status,
            "changes": changes,
            "error": outcome.error,
        }
        state.output.completion = "" if outcome.answer is None else str(outcome.answer)
        state.completed = True
        return state

    return solve


REACT_INSTRUCTIONS = (
    "You assist a clinician in an electronic health record, through FHIR tools. The time now is {now}; "
    "read dates relative to it. {patient}Use the tools to read the chart and, where the task asks for it, to "
    "write to it. When done, call {submit}() with the answer only: a value, yes or no, a date, a list, or "
    "'none'."
)


def inspect_tools(registry: Registry, names: list[str], ctx: ToolContext) -> list[ToolDef]:
    """medagent's tools as inspect tools: each call goes through ``registry.call`` with the task's context
    (argument validation, the context's write approval, the token budget, the audit), as the agent's do."""

    def as_inspect(item: Tool) -> ToolDef:
        async def execute(**arguments: Any) -> str:
            result = await registry.call(item.name, arguments, ctx)
            return result.text

        return ToolDef(
            execute,
            name=item.name,
            description=item.description,
            parameters=ToolParams.model_validate(item.parameters()),
        )

    return [as_inspect(item) for item in registry.select(names)]


@solver
def medagent_tools_solver(tools: str = "all", fhir_url: str | None = None, attempts: int = 1) -> Any:
    """inspect's own ReAct agent (``inspect_ai.agent.react``, on the eval's model) with medagent's tools
    (``tools``: a named set or tool names, see ``bench run --tools``); writes approved as in every
    benchmark run, graded by the server diff."""
    from inspect_ai.agent import as_solver, react

    from medagent.tools.approval import APPROVE_WRITES
    from medagent.tools.registry import default_registry
    from medagent.tools.tool_sets import tool_names
    from medagent.vocabulary import parse_instant

    registry = default_registry()
    names = tool_names(tools)
    server = _SERVERS.setdefault(fhir_url or "embedded", _Server(fhir_url))

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        scenario = Scenario.model_validate(state.metadata["scenario"])
        run_id = f"inspect/{scenario.id}/{state.epoch}"

        async def run_agent(client: FhirClient) -> TaskState:
            ctx = ToolContext(
                client=client,
                now=parse_instant(scenario.now),
                approval=APPROVE_WRITES,
                actor="inspect/react",
                run_id=run_id,
                patient=scenario.patient_context,
            )
            patient = (
                f"The patient in context is Patient/{scenario.patient_context}. " if scenario.patient_context else ""
            )
            agent = react(
                prompt=REACT_INSTRUCTIONS.format(now=scenario.now, patient=patient, submit="{submit}"),
                tools=inspect_tools(registry, names, ctx),
                attempts=attempts,
            )
            return await as_solver(agent)(state, generate)

        state, changes = await _scored_on_server(server, scenario, run_id, run_agent)
        answer = state.output.completion.strip() if state.output and state.output.completion else None
        state.metadata["medagent"] = {
            "answer": answer,
            "status": "answered" if answer else "no_answer",
            "changes": changes,
            "error": None,
        }
        return state

    return solve


@scorer(metrics=[accuracy(), stderr()])
def medagent_scorer() -> Any:
    """medagent's graders: the answer and the server diff the solver recorded."""

    async def score(state: TaskState, target: Target) -> Score:
        scenario = Scenario.model_validate(state.metadata["scenario"])
        ran = state.metadata.get("medagent")
        if ran is None:
            return Score(value=INCORRECT, explanation="the solver was not medagent_solver: no server diff recorded")
        verdict = grade(scenario, ran["answer"], ran["changes"])
        passed = verdict.passed and ran["status"] == "answered"
        return Score(
            value=CORRECT if passed else INCORRECT,
            answer=str(ran["answer"]),
            explanation=f"{verdict.failure_cause or 'passed'}; status {ran['status']}",
            metadata={"verdict": verdict.model_dump(mode="json")},
        )

    return score


@task
def medagent_suite(
    scenario_set: str = "v2",
    suite: str = "all",
    split: str = "test",
    tier: str = "all",
    limit: int | None = None,
    agent: str = "agent",
    model_url: str | None = None,
    model_name: str | None = None,
    fhir_url: str | None = None,
    solver: str = "medagent",
    tools: str = "all",
) -> Task:
    """A medagent suite as an inspect_ai Task. ``solver``: ``medagent`` (medagent's own solver for ``agent``)
    or ``tools`` (inspect's ReAct agent on the eval's model with medagent's ``tools``)."""
    if solver == "medagent":
        chosen = medagent_solver(agent, model_url, model_name, fhir_url)
    elif solver == "tools":
        chosen = medagent_tools_solver(tools, fhir_url)
    else:
        raise ValueError(f"solver={solver!r}: choose medagent or tools")
    return Task(
        dataset=scenario_samples(scenario_set, suite, split, tier, limit), solver=chosen, scorer=medagent_scorer()
    )


def stop_servers() -> None:
    """Stop the embedded servers the solvers started (also at interpreter exit)."""
    for server in _SERVERS.values():
        if server.embedded is not None:
            server.embedded.stop()
    _SERVERS.clear()


atexit.register(stop_servers)
