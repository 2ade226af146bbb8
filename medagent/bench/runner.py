"""The scored run: each task on a freshly reset server, graded by answer and server diff, streamed to JSONL.

Resumable (finished ``(scenario, trial)`` pairs are skipped), concurrent (one embedded server
per worker), repeated trials for pass^k, and every failure recorded rather than raised.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from medagent.bench.model_check import ModelUnreachable, check_model_reachable
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.scoring import EmbeddedScoring, Scoring, StandardScoring
from medagent.bench.servers import ExternalServers, ServerPool
from medagent.bench.solvers import Solver
from medagent.bench.summary import summarize
from medagent.config import UserError
from medagent.fhir.client import FhirClient
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario
from medagent.trajectory import RunOutcome

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"


class RunDirError(UserError):
    """The output folder would mix runs, or holds no run."""


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


async def run_task(scenario: Scenario, trial: int, solver: Solver, client: FhirClient,
                   set_hash: str | None, *, scoring: Scoring) -> TaskRecord:
    """Set up (``scoring.begin``), solve, diff and grade one task, then undo it (``scoring.end``);
    failures become records, never exceptions."""
    started = time.perf_counter()
    outcome = RunOutcome(status="error")
    changes: list[dict[str, Any]] = []
    verdict = None
    try:
        await scoring.begin(scenario)
        outcome = await solver.solve(scenario, client, run_id=task_run_id(scenario, trial))
        changes = await scoring.changes()
        verdict = grade(scenario, outcome.answer, changes)
    except Exception as exc:  # a broken task must not end the run: it is recorded as an error
        outcome = outcome.model_copy(update={"status": "error", "error": f"{type(exc).__name__}: {exc}"})
    try:
        await scoring.end()
    except Exception as exc:  # the server keeps what could not be undone: the record says so
        outcome = outcome.model_copy(update={"status": "error", "error": f"reset failed: {type(exc).__name__}: {exc}"})
        verdict = None
    latency = time.perf_counter() - started
    return TaskRecord(
        scenario_id=scenario.id, trial=trial, suite=scenario.suite, category=scenario.category, split=scenario.split,
        agent=solver.name, model=solver.model, outcome=outcome,
        passed=bool(verdict and verdict.passed and outcome.status == "answered"),
        score=verdict.score if verdict else 0.0,
        failure_cause="error" if outcome.status in ("model_error", "error") else verdict.failure_cause if verdict else None,
        verdict=verdict.model_dump(mode="json") if verdict else None, changes=changes, latency_s=latency,
        scenario_set_hash=set_hash,
    )


def task_run_id(scenario: Scenario, trial: int) -> str:
    """The run id of one trial of a task (tags its writes; trials of a task never share a checkpoint thread)."""
    return scenario.id if trial == 0 else f"{scenario.id}/trial-{trial}"


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
) -> dict[str, Any]:
    """Run (or finish) a scored run in ``out_dir``; returns the summary also written to summary.json.

    ``fhir_urls``: standard FHIR servers to score on (one task at a time each, through history and tags)
    instead of a pool of embedded servers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(out_dir / RESULTS_FILE)
    if log.path.exists() and not resume:
        raise RunDirError(f"{out_dir} already holds a run; pass --resume to finish it or choose a new --out")
    log.repair()
    done = log.finished_keys()
    run_info = {"agent": solver.name, "model": solver.model, "scenario_set_hash": set_hash, "trials": trials,
                "tasks": len(scenarios), "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if not (out_dir / RUN_FILE).exists():
        write_json_atomic(out_dir / RUN_FILE, run_info)
    todo = [(s, t) for t in range(trials) for s in scenarios if (s.id, t) not in done]
    timing = {"servers_start_s": 0.0, "tasks_wall_s": 0.0, "tasks_run": len(todo), "concurrency": concurrency}
    if todo:
        try:
            await check_model_reachable(solver)  # issue 17: fail fast, before any task, on a dead model
        except ModelUnreachable as exc:
            write_json_atomic(out_dir / RUN_FILE, {**run_info, "error": str(exc)})
            raise
        await _run_all(todo, solver, log, out_dir, home, concurrency, set_hash, show_progress, on_record, timing,
                       fhir_urls)
    summary = summarize(log.load())
    summary["run"] = run_info
    summary["timing"] = timing
    write_json_atomic(out_dir / SUMMARY_FILE, summary)
    return summary


async def _run_all(todo: list[tuple[Scenario, int]], solver: Solver, log: ResultsLog, out_dir: Path, home: Path,
                   concurrency: int, set_hash: str | None, show_progress: bool,
                   on_record: Callable[[TaskRecord], None] | None, timing: dict[str, Any],
                   fhir_urls: list[str] | None = None) -> None:
    workers = max(1, min(len(fhir_urls) if fhir_urls else concurrency, len(todo)))
    queue: asyncio.Queue[tuple[Scenario, int]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    passed = finished = tokens = 0
    started = time.perf_counter()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        disable=not show_progress, transient=False)
    bar = progress.add_task(f"{solver.name}", total=len(todo), stats="")

    clean: dict[str, int] = {}  # server -> the snapshot taken before its first task (the loaded database)

    async def scoring_for(client: FhirClient, scenario: Scenario, trial: int) -> Scoring:
        if fhir_urls:
            return StandardScoring(client, task_run_id(scenario, trial))
        if client.base_url not in clean:
            clean[client.base_url] = await client.snapshot()
        return EmbeddedScoring(client, clean[client.base_url])

    async def worker(pool: ServerPool | ExternalServers) -> None:
        nonlocal passed, finished, tokens
        while not queue.empty():
            scenario, trial = queue.get_nowait()
            async with pool.acquire() as client:
                record = await run_task(scenario, trial, solver, client, set_hash,
                                        scoring=await scoring_for(client, scenario, trial))
            log.append(record)
            finished += 1
            passed += record.passed
            tokens += record.outcome.prompt_tokens + record.outcome.completion_tokens
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            progress.update(bar, advance=1, stats=f"acc {100 * passed / finished:5.1f}%  {rate:,.0f} tok/s")
            if on_record:
                on_record(record)

    with progress:
        pool_started = time.perf_counter()
        servers = ExternalServers(fhir_urls) if fhir_urls else ServerPool(workers, out_dir / "servers", home)
        async with servers as pool:
            timing["servers_start_s"] = round(time.perf_counter() - pool_started, 2)
            started = time.perf_counter()
            await asyncio.gather(*(worker(pool) for _ in range(workers)))
            timing["tasks_wall_s"] = round(time.perf_counter() - started, 3)
