"""The scored run: each task on a freshly reset server, graded by answer and server diff, streamed to JSONL.

Resumable (finished ``(scenario, trial)`` pairs are skipped), concurrent (one FHIR server per task in
flight), repeated trials for pass^k, and every failure recorded rather than raised. Where the tasks run
(this process or a Ray cluster) is the executor's business (``bench.executors``); the log is this one.

A failing model stops the run instead of being scored (:class:`ModelFailureWatch`): after
``max_model_errors`` consecutive tasks ended by a model error, or at the first model call with no answer
within the per-call timeout, no further task starts; those tasks and every task not started are left out of
the log (not run, not scored: ``--resume`` runs them once the model answers), and run.json and summary.json
say why (``stopped``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from medagent.bench.executors import Executor, LocalExecutor, RunPlan
from medagent.bench.model_check import ModelUnreachable, check_model_reachable
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.solvers import Solver
from medagent.bench.summary import summarize
from medagent.bench.task_run import run_task, task_run_id
from medagent.config import UserError
from medagent.scenarios.models import Scenario

__all__ = [
    "DEFAULT_MAX_ERROR_SHARE",
    "DEFAULT_MAX_MODEL_ERRORS",
    "RESULTS_FILE",
    "RUN_FILE",
    "SUMMARY_FILE",
    "ModelFailureWatch",
    "RunDirError",
    "RunFailed",
    "run_async",
    "run_benchmark",
    "run_task",
    "task_run_id",
    "write_json_atomic",
]

DEFAULT_MAX_MODEL_ERRORS = 3

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
DEFAULT_MAX_ERROR_SHARE = 0.05  # more tasks than this ending in error: the run failed (no score is reported)


T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a scored run's coroutine to its end on uvloop's event loop where it is installed (``uvicorn[standard]``
    brings it on Linux and macOS), else on asyncio's. Every task in flight shares this one loop, and what each
    await, wake-up and socket read costs it is paid by all of them; uvloop's cost less."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class RunDirError(UserError):
    """The output folder would mix runs, or holds no run."""


class RunFailed(RuntimeError):
    """Too many tasks ended in error for the run's score to mean anything (summary.json says so too)."""

    def __init__(self, message: str, failed: dict[str, Any]) -> None:
        super().__init__(message)
        self.failed = failed


def error_share_failure(records: list[TaskRecord], max_share: float) -> dict[str, Any] | None:
    """Why the run failed, when more than ``max_share`` of its tasks ended in error (status ``error`` or
    ``model_error``): the count, the share, and the errors by phase and by type; else None."""
    errored = [r for r in records if r.outcome.status in ("error", "model_error")]
    if not records or len(errored) <= max_share * len(records):
        return None
    by_phase = Counter(r.task_error.phase if r.task_error else "solver" for r in errored)
    by_type = Counter(r.task_error.type if r.task_error else r.outcome.status for r in errored)
    first = next((r for r in errored if r.task_error), errored[0])
    example = (
        f"{first.task_error.phase}: {first.task_error.type}: {first.task_error.message}"
        if first.task_error
        else str(first.outcome.error)
    )
    return {
        "reason": f"{len(errored)} of {len(records)} tasks ended in error "
        f"({100 * len(errored) / len(records):.1f}%, more than the {100 * max_share:g}% allowed)",
        "errors": len(errored),
        "tasks": len(records),
        "max_error_share": max_share,
        "by_phase": dict(by_phase.most_common()),
        "by_type": dict(by_type.most_common()),
        "example": {"scenario_id": first.scenario_id, "trial": first.trial, "error": example[:500]},
    }


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


class ModelFailureWatch:
    """Stops a run whose model fails: holds back each streak of tasks ended by a model error (status
    ``model_error``) and stops the run at ``limit`` in a row, or at once for a model call that timed out
    (kind ``timeout``). Held-back records of a stopped run are never logged (not run, not scored); a task
    that finishes otherwise ends the streak and the held records are logged before it (an isolated model
    error is scored as before)."""

    def __init__(self, limit: int = DEFAULT_MAX_MODEL_ERRORS) -> None:
        if limit < 1:
            raise ValueError("max_model_errors must be at least 1")
        self.limit = limit
        self.held: list[TaskRecord] = []
        self.reason: str | None = None

    def see(self, record: TaskRecord) -> list[TaskRecord]:
        """The records to log now, in order (none while a streak of model errors is held back)."""
        if record.outcome.status != "model_error":
            flushed = [] if self.reason is not None else self.held
            self.held = []
            return [*flushed, record]
        self.held.append(record)
        if self.reason is None and record.outcome.error_kind == "timeout":
            self.reason = f"a model call did not answer in time: {record.outcome.error}"
        elif self.reason is None and len(self.held) >= self.limit:
            self.reason = f"{len(self.held)} consecutive model errors; the last: {record.outcome.error}"
        return []

    def finish(self) -> list[TaskRecord]:
        """At the end: a streak shorter than the limit is logged (scored as model errors); a stopped run's is not."""
        held, self.held = ([] if self.reason is not None else self.held), []
        return held


def pending_tasks(scenarios: list[Scenario], trials: int, done: set[tuple[str, int]]) -> list[tuple[Scenario, int]]:
    """The ``(scenario, trial)`` pairs a run still has to do, trial by trial: every trial of every scenario
    whose ``(scenario.id, trial)`` key is not in the results log (``done``)."""
    return [(s, t) for t in range(trials) for s in scenarios if (s.id, t) not in done]


async def run_benchmark(
    scenarios: list[Scenario],
    solver: Solver,
    *,
    out_dir: Path,
    home: Path,
    concurrency: int = 1,
    trials: int = 1,
    resume: bool = False,
    set_hash: str | None = None,
    show_progress: bool = True,
    on_record: Callable[[TaskRecord], None] | None = None,
    fhir_urls: list[str] | None = None,
    executor: Executor | None = None,
    max_model_errors: int = DEFAULT_MAX_MODEL_ERRORS,
    max_error_share: float = DEFAULT_MAX_ERROR_SHARE,
    on_phase: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or finish) a scored run in ``out_dir``; returns the summary also written to summary.json.

    ``fhir_urls``: standard FHIR servers to score on (one task at a time each, through history and tags)
    instead of a pool of embedded servers. ``executor``: where the tasks run (default: this process,
    :class:`~medagent.bench.executors.LocalExecutor`); every executor's records land in the same log.
    ``max_model_errors``: consecutive model errors that stop the run (:class:`ModelFailureWatch`); a stopped
    run's summary holds ``stopped`` {reason, not_run, tasks} (and is not judged by ``max_error_share``: its
    model-error streak was never logged, and ``--resume`` finishes it).
    ``max_error_share``: more of the run's tasks than this ending in error fails the run: summary.json is
    marked ``"status": "failed"`` with the reason and :class:`RunFailed` is raised instead of a score.
    ``on_phase``: called with ``"tasks"`` when the servers are up and the first task starts, and with
    ``"done"`` when the last one has finished (the servers still up), e.g. to measure the task phase."""
    watch = ModelFailureWatch(max_model_errors)
    executor = executor or LocalExecutor()
    out_dir.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(out_dir / RESULTS_FILE)
    if log.path.exists() and not resume:
        raise RunDirError(f"{out_dir} already holds a run; pass --resume to finish it or choose a new --out")
    log.repair()
    done = log.finished_keys()
    run_info: dict[str, Any] = {
        "agent": solver.name,
        "model": solver.model,
        "scenario_set_hash": set_hash,
        "trials": trials,
        "tasks": len(scenarios),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if (out_dir / RUN_FILE).exists():
        run_info = {k: v for k, v in json.loads((out_dir / RUN_FILE).read_text()).items() if k != "stopped"}
    write_json_atomic(out_dir / RUN_FILE, run_info)
    todo = pending_tasks(scenarios, trials, done)
    timing = {
        "servers_start_s": 0.0,
        "tasks_wall_s": 0.0,
        "tasks_run": len(todo),
        "concurrency": concurrency,
        "executor": executor.name,
    }
    if todo:
        try:
            await check_model_reachable(solver)  # issue 17: fail fast, before any task, on a dead model
        except ModelUnreachable as exc:
            write_json_atomic(out_dir / RUN_FILE, {**run_info, "error": str(exc)})
            raise
        plan = RunPlan(
            todo=todo,
            solver=solver,
            set_hash=set_hash,
            concurrency=concurrency,
            workdir=out_dir / "servers",
            home=home,
            fhir_urls=fhir_urls,
            on_phase=on_phase,
        )
        try:
            await _run_all(plan, executor, log, show_progress, on_record, timing, watch)
        finally:
            log.close()
    records = log.load()
    summary = summarize(records)
    if watch.reason is not None:
        logged = log.finished_keys()
        stopped = {
            "reason": watch.reason,
            "not_run": sum(1 for s, t in todo if (s.id, t) not in logged),
            "tasks": len(scenarios) * trials,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        run_info = {**run_info, "stopped": stopped}
        write_json_atomic(out_dir / RUN_FILE, run_info)
        summary["stopped"] = stopped
    summary["run"] = run_info
    summary["timing"] = timing
    failed = None if watch.reason is not None else error_share_failure(records, max_error_share)
    summary["status"] = "stopped" if watch.reason is not None else "failed" if failed else "complete"
    if failed:
        summary["failed"] = failed
    write_json_atomic(out_dir / SUMMARY_FILE, summary)
    if failed:
        raise RunFailed(
            f"the run failed: {failed['reason']}; by phase: "
            + ", ".join(f"{k} {v}" for k, v in failed["by_phase"].items())
            + f"; e.g. {failed['example']['error']} (records in {log.path})",
            failed,
        )
    return summary


async def _run_all(
    plan: RunPlan,
    executor: Executor,
    log: ResultsLog,
    show_progress: bool,
    on_record: Callable[[TaskRecord], None] | None,
    timing: dict[str, Any],
    watch: ModelFailureWatch,
) -> None:
    """Run the plan on the executor; each record it delivers is appended to the log as it arrives (a streak of
    model errors is held back by ``watch``, which stops the plan when the model fails)."""
    passed = finished = tokens = 0
    started = time.perf_counter()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show_progress,
        transient=False,
    )
    bar = progress.add_task(f"{plan.solver.name}", total=len(plan.todo), stats="")

    def deliver(record: TaskRecord) -> None:
        for ready in watch.see(record):
            log_one(ready)
        if watch.reason is not None:
            plan.stop.set()

    def log_one(record: TaskRecord) -> None:
        nonlocal passed, finished, tokens
        log.append(record)
        finished += 1
        passed += record.passed
        tokens += record.outcome.prompt_tokens + record.outcome.completion_tokens
        rate = tokens / max(time.perf_counter() - started, 1e-9)
        progress.update(bar, advance=1, stats=f"acc {100 * passed / finished:5.1f}%  {rate:,.0f} tok/s")
        if on_record:
            on_record(record)

    with progress:
        await executor.run(plan, deliver, timing)
        for ready in watch.finish():
            log_one(ready)
