#!/usr/bin/env python3
"""Benchmark of the runner's own cost per task, with a MODEL STAND-IN of fixed latency (not a model).

The stand-in answers every call after a fixed sleep (default 200 ms): a `get_patient` call on the task's patient
(read from the scenario, as a model would read it from the task), then a final answer (`--calls N`: N-1 tool
calls, get_patient then patient searches, then the answer). Everything else is
real: one embedded FHIR server process serving a task database per task in flight, the reset to the template,
the scenario's setup, the LangGraph agent, the tool and its FHIR request, the server diff, grading and the
JSONL log; with `--executors ray` the same on a local Ray cluster (`--actor-slots` tasks in flight per actor).

    ideal wall   = ceil(tasks / tasks in flight) * calls per task * latency
    efficiency   = ideal / measured wall of the task phase (the servers are started before it)
    harness      = share of task time outside the model and tool calls (reset, setup, diff, grading, log)
    CPU ms/task  = CPU time of every process of the run (this one, the FHIR server, Ray's) in the task phase,
                   per task: the stand-in sleeps, so all of it is the harness's
    memory       = PSS of every process of the run when the last task has finished (servers still up);
                   per task in flight: (memory at N - memory at 1 in flight) / (N - 1)

    python tools/bench_runner.py                          # local and ray, 8/32/64 in flight, 5 runs each
    python tools/bench_runner.py --executors local --levels 64 --runs 5 --keep runs/bench   # keep the logs
    python tools/bench_runner.py --server-start           # server start: lean entry vs the full CLI

Each run's figures are printed as they come, with `uptime` before and after it (the machine may be shared),
then per level the median and every run against the targets. An errored task is listed with its phase,
type and message.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from medagent.bench.executors import Executor, LocalExecutor, RayExecutor
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.agent import AgentSolver
from medagent.config import get_settings
from medagent.fhir.client import FhirClient
from medagent.models.base import ModelReply, ModelRequest, Usage
from medagent.scenarios.models import Scenario
from medagent.trajectory import RunOutcome

CALLS_PER_TASK = 2  # the targets' setting: one tool call, then the answer
TOOLS = ("get_patient", "search_conditions", "search_medications", "search_encounters", "search_procedures",
         "search_immunizations", "search_allergies", "search_diagnostic_reports", "search_observations")
EFFICIENCY_TARGETS = {8: 0.90, 32: 0.75, 64: 0.60}  # tasks in flight -> least efficiency (issue 30)
CPU_MS_TARGET = 30.0  # harness CPU per task, all processes
MEMORY_MB_TARGET = 10.0  # memory per task in flight beyond the first
ERROR_RUNS_LEVEL = 64  # no errors in any run at this level (five consecutive runs by default)


class FixedLatencyStandIn:
    """A stand-in for a model: sleeps ``latency`` seconds, then calls ``get_patient`` on the task's patient
    (``patient``, set per task by :class:`StandInSolver` from the scenario) and, with ``calls`` > 2, patient
    searches, one reply each; the last reply is the answer."""

    name = "fixed-latency-stand-in"

    def __init__(self, latency: float, calls: int = CALLS_PER_TASK) -> None:
        self.latency = latency
        self.calls = calls
        self.patient: ContextVar[str] = ContextVar("stand_in_patient")  # made here: a ContextVar cannot be pickled

    async def complete(self, request: ModelRequest) -> ModelReply:
        await asyncio.sleep(self.latency)
        done = sum(1 for m in request.messages if m.content.startswith("[result of "))
        action = ({"tool": "final_answer", "arguments": {"answer": "unknown", "citations": []}}
                  if done >= self.calls - 1 else
                  {"tool": TOOLS[done % len(TOOLS)], "arguments": {"patient": f"Patient/{self.patient.get()}"}})
        return ModelReply(text=str(action), parsed=action, usage=Usage(prompt_tokens=0, completion_tokens=0),
                          latency_s=self.latency)

    async def aclose(self) -> None:
        return None


class StandInSolver(AgentSolver):
    """The agent over the stand-in, told each task's patient (from the scenario) for the stand-in to use."""

    backend: FixedLatencyStandIn

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        token = self.backend.patient.set(scenario.patient)
        try:
            return await super().solve(scenario, client, run_id=run_id)
        finally:
            self.backend.patient.reset(token)


def stand_in_solver(latency: float, calls: int = CALLS_PER_TASK) -> StandInSolver:
    return StandInSolver(FixedLatencyStandIn(latency, calls), model="fixed-latency-stand-in")


def make_executor(name: str, latency: float, calls: int, actor_slots: int) -> Executor:
    if name == "local":
        return LocalExecutor()
    # each actor builds its own agent over its own stand-in (shipped by value: this script is __main__)
    return RayExecutor(solver_factory=functools.partial(stand_in_solver, latency, calls), slots_per_actor=actor_slots)


# --------------------------------------------------------------------------------------------
# the run's processes: CPU and memory
# --------------------------------------------------------------------------------------------

def run_processes() -> list[psutil.Process]:
    """This process and all its descendants (the FHIR server; with Ray, its head and workers)."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def cpu_seconds() -> dict[int, float]:
    seconds = {}
    for process in run_processes():
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.Error:  # ended meanwhile
            pass
    return seconds


def memory_mb() -> float:
    """Proportional set size of all the run's processes (shared pages counted once in all), MB."""
    total = 0
    for process in run_processes():
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            pass
    return total / 1e6


@dataclass
class PhaseProbe:
    """``run_benchmark``'s ``on_phase``: CPU at the start of the task phase; CPU and memory at its end."""

    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_end: dict[int, float] = field(default_factory=dict)
    memory_mb: float = 0.0

    def __call__(self, phase: str) -> None:
        if phase == "tasks":
            self.cpu_start = cpu_seconds()
        elif phase == "done":
            self.cpu_end = cpu_seconds()
            self.memory_mb = memory_mb()

    @property
    def cpu_s(self) -> float:
        return sum(end - self.cpu_start.get(pid, 0.0) for pid, end in self.cpu_end.items())

    @property
    def runner_cpu_s(self) -> float:
        """This process's share (the runner: agent, client, scoring, log; with Ray: the driver)."""
        me = os.getpid()
        return self.cpu_end.get(me, 0.0) - self.cpu_start.get(me, 0.0)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------

@dataclass
class RunFigures:
    executor: str
    level: int
    run: int
    tasks: int
    wall_s: float
    ideal_s: float
    harness_share: float
    cpu_ms_per_task: float
    runner_cpu_ms_per_task: float
    memory_mb: float
    servers_start_s: float
    errors: int
    tool_errors: int
    causes: Counter[str]
    load_before: str
    load_after: str
    kept: Path | None

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s if self.wall_s else 0.0


def tool_errors(records: list[TaskRecord]) -> int:
    """Tool calls that came back as errors: the stand-in's calls must all succeed for the path to be real."""
    return sum(1 for r in records for step in r.outcome.trace if step.is_tool_call and step.error)


async def measure(scenarios: list[Scenario], latency: float, calls: int, level: int, home: Path, executor: Executor,
                  out_dir: Path) -> tuple[dict[str, Any], PhaseProbe, list[TaskRecord]]:
    probe = PhaseProbe()  # every error is counted and shown (max_error_share=1: the run never fails on them)
    summary = await run_benchmark(scenarios, stand_in_solver(latency, calls), out_dir=out_dir, home=home,
                                  concurrency=level, show_progress=False, executor=executor, on_phase=probe,
                                  max_error_share=1.0)
    return summary, probe, ResultsLog(out_dir / "results.jsonl").load()


def one_run(args: argparse.Namespace, name: str, level: int, run: int, tasks: int, home: Path,
            keep: Path | None) -> RunFigures:
    scenarios = load_scenarios(default_scenarios_dir(), args.suite, "all", limit=tasks)
    folder = Path(tempfile.mkdtemp(prefix=f"bench-runner-{name}-{level}-"))
    before = uptime()
    try:
        summary, probe, records = asyncio.run(measure(scenarios, args.latency, args.calls, level, home,
                                                      make_executor(name, args.latency, args.calls, args.actor_slots),
                                                      folder / "run"))
        after = uptime()
        errored = [r for r in records if r.outcome.status in ("error", "model_error")]
        causes = Counter(f"{r.task_error.phase}: {r.task_error.type}: {r.task_error.message[:160]}" if r.task_error
                         else f"{r.outcome.status}: {r.outcome.error}" for r in errored)
        kept = None
        if keep is not None or errored:  # a run with errors is always kept, to be read
            kept = (keep or Path(tempfile.gettempdir()) / "bench-runner-kept") / f"{name}-{level}-run{run}-{int(time.time())}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder / "run", kept, ignore=shutil.ignore_patterns("*.sqlite*"))
        task_time = sum(r.latency_s for r in records)
        work_time = sum(r.outcome.model_s + r.outcome.tool_s for r in records)
        timing = summary["timing"]
        return RunFigures(
            executor=name, level=level, run=run, tasks=len(records), wall_s=timing["tasks_wall_s"],
            ideal_s=math.ceil(len(scenarios) / level) * args.calls * args.latency,
            harness_share=1 - work_time / task_time if task_time else 0.0,
            cpu_ms_per_task=probe.cpu_s * 1000 / max(1, len(records)),
            runner_cpu_ms_per_task=probe.runner_cpu_s * 1000 / max(1, len(records)), memory_mb=probe.memory_mb,
            servers_start_s=timing["servers_start_s"], errors=len(errored), tool_errors=tool_errors(records),
            causes=causes, load_before=before, load_after=after, kept=kept)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

HEAD = (f"{'executor':>8} {'conc':>4} {'run':>3} {'tasks':>5} {'wall s':>7} {'ideal s':>7} {'effic.':>7} "
        f"{'harness':>7} {'CPU ms/task':>11} {'(runner)':>8} {'mem MB':>7} {'start s':>7} {'errors':>6} {'tool err':>8}")


def row(f: RunFigures) -> str:
    return (f"{f.executor:>8} {f.level:>4} {f.run:>3} {f.tasks:>5} {f.wall_s:>7.2f} {f.ideal_s:>7.2f} "
            f"{100 * f.efficiency:>6.1f}% {100 * f.harness_share:>6.1f}% {f.cpu_ms_per_task:>11.1f} "
            f"{f.runner_cpu_ms_per_task:>8.1f} "
            f"{f.memory_mb:>7.0f} {f.servers_start_s:>7.2f} {f.errors:>6} {f.tool_errors:>8}")


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def report(figures: list[RunFigures], levels: list[int], calls: int) -> bool:
    """Per executor and level: the median and every run against the targets; True when all are met."""
    all_met = True
    print()
    print("targets (issue 30; 2 cores, 200 ms stand-in, 2 calls per task): efficiency >= "
          + ", ".join(f"{100 * t:.0f}% at {n}" for n, t in EFFICIENCY_TARGETS.items())
          + f"; harness CPU <= {CPU_MS_TARGET:.0f} ms/task; memory <= {MEMORY_MB_TARGET:.0f} MB per task in flight "
          f"beyond the first; 0 errors in every run at {ERROR_RUNS_LEVEL}"
          + ("" if calls == CALLS_PER_TASK else f" (NOTE: this run has {calls} calls per task, the targets 2)"))
    for name in dict.fromkeys(f.executor for f in figures):
        mine = [f for f in figures if f.executor == name]
        base = [f.memory_mb for f in mine if f.level == 1]
        base_mb = statistics.median(base) if base else None
        for level in levels:
            runs = [f for f in mine if f.level == level]
            if not runs:
                continue
            eff = [f.efficiency for f in runs]
            cpu = [f.cpu_ms_per_task for f in runs]
            med_eff, med_cpu = statistics.median(eff), statistics.median(cpu)
            lines = [f"{name} @{level}: efficiency median {100 * med_eff:.1f}% (runs "
                     + ", ".join(f"{100 * e:.1f}" for e in eff) + ")"]
            checks = []
            if level in EFFICIENCY_TARGETS:
                checks.append(med_eff >= EFFICIENCY_TARGETS[level])
                lines[-1] += f" target >= {100 * EFFICIENCY_TARGETS[level]:.0f}%: {verdict(checks[-1])}"
            lines.append(f"  harness CPU median {med_cpu:.1f} ms/task (runs " + ", ".join(f"{c:.1f}" for c in cpu)
                         + f") target <= {CPU_MS_TARGET:.0f}: {verdict(med_cpu <= CPU_MS_TARGET)}")
            checks.append(med_cpu <= CPU_MS_TARGET)
            if base_mb is not None and level > 1:
                per_task = (statistics.median(f.memory_mb for f in runs) - base_mb) / (level - 1)
                checks.append(per_task <= MEMORY_MB_TARGET)
                lines.append(f"  memory {statistics.median(f.memory_mb for f in runs):.0f} MB, at 1 in flight "
                             f"{base_mb:.0f} MB: {per_task:.1f} MB per task in flight beyond the first, target <= "
                             f"{MEMORY_MB_TARGET:.0f}: {verdict(checks[-1])}")
            errors = [f.errors for f in runs]
            lines.append(f"  errors per run {errors}; harness share median "
                         f"{100 * statistics.median(f.harness_share for f in runs):.1f}%; server start median "
                         f"{statistics.median(f.servers_start_s for f in runs):.2f} s")
            if level == ERROR_RUNS_LEVEL:
                checks.append(not any(errors))
                lines[-1] += f"; 0 errors in all {len(runs)} runs: {verdict(checks[-1])}"
            if any(f.tool_errors for f in runs):
                lines.append("  TOOL ERRORS: the stand-in's calls failed, the figures do not measure the real path")
                checks.append(False)
            all_met = all_met and all(checks)
            print("\n".join(lines))
    return all_met


# --------------------------------------------------------------------------------------------
# server start: lean entry vs the CLI
# --------------------------------------------------------------------------------------------

def server_start(home: Path, repeats: int, slots: int) -> None:
    """Seconds from spawn to the first /metadata answer of a slot server: ``python -m medagent.fhir.server``
    vs the CLI, interleaved."""
    from medagent.bench.servers import template_db
    from medagent.fhir.server import process

    template = template_db(home)
    print(f"server start (spawn -> /metadata 200 on slot 0), {slots} slots, {repeats} starts each; {uptime()}")
    times: dict[tuple[str, ...], list[float]] = {process.CLI_ENTRY: [], process.SERVER_ENTRY: []}
    lean = process.SERVER_ENTRY
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(repeats):
            for entry, seconds in times.items():
                process.SERVER_ENTRY = entry
                server = process.EmbeddedServer(template, allow_reset=True, slots=slots,
                                                slots_dir=Path(tmp) / f"{index}-{len(entry)}")
                started = time.perf_counter()
                server.start()
                seconds.append(time.perf_counter() - started)
                server.stop()
    process.SERVER_ENTRY = lean
    for entry, seconds in times.items():
        print(f"  python {' '.join(entry):<28} median {statistics.median(seconds):5.2f} s  "
              f"min {min(seconds):5.2f} s  max {max(seconds):5.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=192, help="tasks per run (default 192: 3 waves at 64)")
    parser.add_argument("--latency", type=float, default=0.2, help="stand-in seconds per model call")
    parser.add_argument("--calls", type=int, default=CALLS_PER_TASK,
                        help="model calls per task (default 2: one tool call, then the answer; the targets' setting)")
    parser.add_argument("--levels", default="8,32,64", help="comma-separated tasks in flight")
    parser.add_argument("--runs", type=int, default=5, help="runs per level (default 5)")
    parser.add_argument("--executors", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--actor-slots", type=int, default=32, help="ray: tasks in flight per actor")
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1, help="ray: CPUs of the local cluster")
    parser.add_argument("--suite", default="ehrqa", help="scenario suite of the tasks (ehrqa, agentic, all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep every run's folder (results.jsonl) here")
    parser.add_argument("--server-start", action="store_true", help="time server start (lean entry vs CLI) only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args()
    home = get_settings().home
    if args.server_start:
        server_start(home, args.repeats, slots=64)
        return 0
    levels = [int(x) for x in args.levels.split(",")]
    executors = [x.strip() for x in args.executors.split(",")]
    if args.calls < 2:
        parser.error("--calls must be at least 2 (a tool call, then the answer)")
    print(f"model stand-in: fixed {args.latency * 1000:.0f} ms per call, {args.calls} calls per task (NOT a model); "
          f"everything else real; {os.cpu_count()} cores; {args.tasks} {args.suite} tasks per run, {args.runs} runs "
          f"per level; ray: {args.actor_slots} tasks in flight per actor")
    figures: list[RunFigures] = []
    for name in executors:
        if name == "ray":
            import ray

            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        print(f"\n{name}: 1 in flight first (the memory baseline), then each level; {uptime()}")
        print(HEAD)
        plan = [(1, 1, min(args.tasks, 8))] + [(level, run, args.tasks) for level in levels
                                               for run in range(1, args.runs + 1)]
        for level, run, tasks in plan:
            result = one_run(args, name, level, run, tasks, home, args.keep)
            figures.append(result)
            print(row(result), flush=True)
            print(f"{'':>14}before: {result.load_before}\n{'':>14}after:  {result.load_after}", flush=True)
            for cause, count in result.causes.most_common():
                print(f"{'':>14}{count} x {cause}")
            if result.kept:
                print(f"{'':>14}results kept in {result.kept}")
        if name == "ray":
            ray.shutdown()
    met = report(figures, levels, args.calls)
    print("\nwall: the task phase only (the servers are started before it); measured under whatever else loads "
          "the machine (see uptime), so efficiencies are lower bounds")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
