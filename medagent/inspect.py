"""medagent's suites as inspect_ai tasks (the optional extra ``medagent[inspect]``).

``inspect eval medagent/inspect.py@medagent_suite -T scenario_set=v2 -T suite=agentic -T limit=20 \\
    -T agent=agent -T model_url=http://vllm:8000/v1`` (or ``-T agent=oracle`` for a code policy):

- dataset: the frozen scenario set (one Sample per scenario; the scenario itself in the metadata);
- solver ``medagent_solver``: medagent's own solver (the LangGraph agent on a model endpoint, or a code
  policy) on a real FHIR server; the task's setup, diff and reset go through the runner's scoring
  (the embedded fast path on a server it starts, or ``fhir_url``: a standard FHIR server, history and tags);
- scorer ``medagent_scorer``: medagent's graders on the answer and the server diff.

Samples share one server and run one at a time on it (a lock), as in ``bench run``.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

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

from medagent.bench.scenario_sets import open_set, set_dir
from medagent.bench.scoring import EmbeddedScoring, Scoring, StandardScoring
from medagent.bench.servers import template_db
from medagent.config import get_settings
from medagent.fhir.client import FhirClient
from medagent.fhir.server.process import EmbeddedServer
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario

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
            db = folder / "fhir.sqlite"
            await asyncio.to_thread(shutil.copyfile, template_db(get_settings().home), db)
            self.embedded = await asyncio.to_thread(EmbeddedServer(db, allow_reset=True).start)
        return self.embedded.base_url

    async def scoring(self, client: FhirClient, run_id: str) -> Scoring:
        if self.fhir_url:
            return StandardScoring(client, run_id)
        if self.clean is None:
            self.clean = await client.snapshot()
        return EmbeddedScoring(client, self.clean)


def scenario_samples(scenario_set: str = "v2", suite: str = "all", split: str = "test", tier: str = "all",
                     limit: int | None = None) -> MemoryDataset:
    chosen = open_set(set_dir(scenario_set))
    return MemoryDataset([
        Sample(id=s.id, input=s.question, target=str(s.answer), metadata={"scenario": s.model_dump(mode="json")})
        for s in chosen.load(suite, split, tier, limit)], name=f"medagent-{chosen.name}")


@solver
def medagent_solver(agent: str = "agent", model_url: str | None = None, model_name: str | None = None,
                    fhir_url: str | None = None, max_steps: int | None = None) -> Any:
    """medagent's solver for ``agent`` (see ``bench run --agent``) on a FHIR server, with the server diff kept."""
    from medagent.bench.cli import make_solver

    settings = get_settings(model=model_url, model_name=model_name)
    inner = make_solver(agent, settings.model, settings.model_name, max_steps)
    server = _SERVERS.setdefault(fhir_url or "embedded", _Server(fhir_url))

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        scenario = Scenario.model_validate(state.metadata["scenario"])
        run_id = f"inspect/{scenario.id}/{state.epoch}"
        async with server.lock():
            async with FhirClient(await server.base_url(), timeout=60) as client:
                scoring = await server.scoring(client, run_id)
                await scoring.begin(scenario)
                try:
                    outcome = await inner.solve(scenario, client, run_id=run_id)
                    changes = await scoring.changes()
                finally:
                    await scoring.end()
        state.metadata["medagent"] = {"answer": outcome.answer, "status": outcome.status, "changes": changes,
                                      "error": outcome.error}
        state.output.completion = "" if outcome.answer is None else str(outcome.answer)
        state.completed = True
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
        return Score(value=CORRECT if passed else INCORRECT, answer=str(ran["answer"]),
                     explanation=f"{verdict.failure_cause or 'passed'}; status {ran['status']}",
                     metadata={"verdict": verdict.model_dump(mode="json")})

    return score


@task
def medagent_suite(scenario_set: str = "v2", suite: str = "all", split: str = "test", tier: str = "all",
                   limit: int | None = None, agent: str = "agent", model_url: str | None = None,
                   model_name: str | None = None, fhir_url: str | None = None) -> Task:
    """A medagent suite as an inspect_ai Task."""
    return Task(dataset=scenario_samples(scenario_set, suite, split, tier, limit),
                solver=medagent_solver(agent, model_url, model_name, fhir_url), scorer=medagent_scorer())


def stop_servers() -> None:
    """Stop the embedded servers the solvers started (also at interpreter exit)."""
    for server in _SERVERS.values():
        if server.embedded is not None:
            server.embedded.stop()
    _SERVERS.clear()


atexit.register(stop_servers)
