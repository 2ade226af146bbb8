"""One scored task on one server: reset, set up, solve, diff, grade, undo. Shared by every executor.

A failure never escapes: it becomes the task's record (status ``error``, and ``error``: the phase, the
exception's type and message, where it was raised).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any

from medagent.bench.results import TaskError, TaskPhase, TaskRecord
from medagent.bench.server_diff import EmbeddedServerDiff, ServerDiff, StandardServerDiff
from medagent.bench.solvers import Solver
from medagent.bench.uncertainty import task_cluster
from medagent.fhir.client import FhirClient
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario, Verdict
from medagent.trajectory import RunOutcome


def checkpoint_counts(verdict: Verdict | None, scenario: Scenario) -> dict[str, int | None]:
    """A workflow task's checkpoints passed and in all (a task that errored passes none of them)."""
    if not scenario.checkpoints:
        return {"checkpoints_passed": None, "checkpoints_total": None}
    passed = sum(c.passed for c in verdict.checkpoints) if verdict is not None else 0
    return {"checkpoints_passed": passed, "checkpoints_total": len(scenario.checkpoints)}


def task_run_id(scenario: Scenario, trial: int) -> str:
    """The run id of one trial of a task (tags its writes; trials of a task never share a checkpoint thread)."""
    return scenario.id if trial == 0 else f"{scenario.id}/trial-{trial}"


class ScoringChoice:
    """Which scoring a server gets: the embedded fast path (reset to the snapshot taken before its first
    task; one :class:`EmbeddedServerDiff` per server, which knows whether it was left clean), or, for standard
    FHIR servers, history and run tags."""

    def __init__(self, *, standard: bool) -> None:
        self.standard = standard
        self._embedded: dict[str, EmbeddedServerDiff] = {}  # server base URL -> its diff

    async def prepare(self, clients: list[FhirClient]) -> None:
        """Before the first task: the clean snapshot of every embedded server not yet seen, all at once (one
        request each), as part of starting the servers rather than ahead of the first tasks on each."""
        if self.standard:
            return
        fresh = [c for c in clients if c.base_url not in self._embedded]
        for client, snapshot in zip(fresh, await asyncio.gather(*(c.snapshot() for c in fresh)), strict=True):
            self._embedded[client.base_url] = EmbeddedServerDiff(client, snapshot, clean=True)

    async def scoring_for(self, client: FhirClient, scenario: Scenario, trial: int) -> ServerDiff:
        if self.standard:
            return StandardServerDiff(client, task_run_id(scenario, trial))
        scoring = self._embedded.get(client.base_url)
        if scoring is None:  # before its first task: the server holds the loaded database only
            scoring = self._embedded[client.base_url] = EmbeddedServerDiff(client, await client.snapshot(), clean=True)
        scoring.client = client
        return scoring


def error_record(phase: TaskPhase, exc: BaseException) -> TaskError:
    """The record of an exception raised in one phase of a task."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else None
    return TaskError(phase=phase, type=type(exc).__name__, message=str(exc) or repr(exc), where=where)


async def run_task(
    scenario: Scenario, trial: int, solver: Solver, client: FhirClient, set_hash: str | None, *, scoring: ServerDiff
) -> TaskRecord:
    """Reset and set up (``scoring``), solve, diff and grade one task, then undo it (``scoring.end``);
    failures become records (with the phase that failed), never exceptions."""
    started = time.perf_counter()
    outcome = RunOutcome(status="error")
    changes: list[dict[str, Any]] = []
    verdict = None
    error: TaskError | None = None
    phase: TaskPhase = "reset"
    try:
        await scoring.reset()
        phase = "setup"
        await scoring.setup(scenario)
        phase = "solver"
        outcome = await solver.solve(scenario, client, run_id=task_run_id(scenario, trial))
        phase = "diff"
        changes = await scoring.changes()
        phase = "grade"
        verdict = grade(scenario, outcome.answer, changes)
    except Exception as exc:  # a broken task must not end the run: it is recorded as an error
        error = error_record(phase, exc)
        outcome = outcome.model_copy(update={"status": "error", "error": f"{phase}: {error.type}: {error.message}"})
    if error is None and outcome.status in ("error", "model_error"):  # the solver ended its run in error itself
        error = TaskError(phase="solver", type=outcome.status, message=outcome.error or "(no message)")
    try:
        await scoring.end()
    except Exception as exc:  # the server keeps what could not be undone: the record says so
        error = error or error_record("reset", exc)
        outcome = outcome.model_copy(update={"status": "error", "error": f"reset failed: {type(exc).__name__}: {exc}"})
        verdict = None
    latency = time.perf_counter() - started
    return TaskRecord(
        scenario_id=scenario.id,
        trial=trial,
        suite=scenario.suite,
        category=scenario.category,
        split=scenario.split,
        tier=scenario.tier,
        **checkpoint_counts(verdict, scenario),
        agent=solver.name,
        model=solver.model,
        outcome=outcome,
        passed=bool(verdict and verdict.passed and outcome.status == "answered"),
        score=verdict.score if verdict else 0.0,
        failure_cause="error"
        if outcome.status in ("model_error", "error")
        else verdict.failure_cause
        if verdict
        else None,
        verdict=verdict,
        changes=changes,
        latency_s=latency,
        scenario_set_hash=set_hash,
        task_error=error,
        cluster=task_cluster(scenario),
    )
