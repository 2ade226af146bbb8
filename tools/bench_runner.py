#!/usr/bin/env python3
"""Benchmark of the runner's own cost per task, with a MODEL STAND-IN of fixed latency (not a model).

The stand-in answers every call after a fixed sleep (default 200 ms): a `get_patient` call on the task's patient
(read from the scenario, as a model would read it from the task), then a final answer the agent's guards accept
(No to a yes/no question, else "unknown": never re-asked) (`--calls N`: N-1 tool calls, get_patient then patient
searches, then the answer). Each task makes exactly N model calls; a run where one made more or fewer is flagged
(the ideal below would not hold). Everything else is
real: one embedded FHIR server process serving a task database per task in flight, the reset to the template,
the scenario's setup, the LangGraph agent, the tool and its FHIR request, the server diff, grading and the
JSONL log; with `--executors ray` the same on a local Ray cluster (`--actor-slots` tasks in flight per actor).

    ideal wall   = ceil(tasks / tasks in flight) * calls per task * latency: the wall of a harness that costs
                   nothing (every task exactly `calls` sleeps of `latency`, N of them at once, waves back to
                   back); 192 tasks, 2 calls, 200 ms: 9.6 s at 8, 2.4 s at 32, 1.2 s at 64 in flight
    efficiency   = ideal / measured wall of the task phase (the servers are started before it); what is lost is
                   every delay a task meets beyond its model sleeps: the harness's own work on its path (reset,
                   setup, agent steps, the tool and its FHIR request, diff, grading, the log), the waits for a
                   CPU that other tasks' work holds (sleeps that overshoot count here: the event loop is busy),
                   and the last wave's tasks finishing unevenly
    harness      = share of task time outside the model and tool calls (reset, setup, diff, grading, log); a
                   model call that returns late (its sleep over, the event loop busy with other tasks) counts
                   as model time here, so this share understates what the harness costs a task in flight
    delay ms     = a task's mean time beyond its model sleeps: `late` (model calls returning after their sleep),
                   `tool` (tool calls, the FHIR request and the waits between), `rest` (everything else:
                   reset, setup, the agent's steps, diff, grading); efficiency is about
                   calls * latency / (calls * latency + delay) once the run is long against a task
    CPU budget   = at N in flight the ideal rate is N / (calls * latency) tasks/s; 100% needs each task's CPU
                   within cores / rate (12.5 ms at 64 in flight on 2 cores), and the runner process's own
                   part within 1 / rate of its one core (6.25 ms at 64)
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

from medagent.agent.answer_format import answer_pattern
from medagent.agent.guards import final_answer_problem
from medagent.bench.executors import Executor, LocalExecutor, RayExecutor
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.runner import run_async, run_benchmark
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


@dataclass(frozen=True)
class StandInTask:
    """What the stand-in reads from its task (as a model reads it from the question): the patient, and a final
    answer the agent's guards accept for the question (never re-asked: the task makes exactly ``calls`` calls)."""

    patient: str
    answer: str

    @classmethod
    def of(cls, scenario: Scenario) -> StandInTask:
        shape = answer_pattern(scenario.question)
        answer = next(a for a in ("unknown", "No") if final_answer_problem(a, scenario.question, shape) is None)
        return cls(patient=scenario.patient, answer=answer)


class FixedLatencyStandIn:
    """A stand-in for a model: sleeps ``latency`` seconds, then calls ``get_patient`` on the task's patient
    (``task``, set per task by :class:`StandInSolver` from the scenario) and, with ``calls`` > 2, patient
    searches, one reply each; the last reply is the answer."""

    name = "fixed-latency-stand-in"

    def __init__(self, latency: float, calls: int = CALLS_PER_TASK) -> None:
        self.latency = latency
        self.calls = calls
        self.task: ContextVar[StandInTask] = ContextVar("stand_in_task")  # made here: a ContextVar cannot be pickled

    async def complete(self, request: ModelRequest) -> ModelReply:
        await asyncio.sleep(self.latency)
        task = self.task.get()
        done = sum(1 for m in request.messages if m.content.startswith("[result of "))
        action = ({"tool": "final_answer", "arguments": {"answer": task.answer, "citations": []}}
                  if done >= self.calls - 1 else
                  {"tool": TOOLS[done % len(TOOLS)], "arguments": {"patient": f"Patient/{task.patient}"}})
        return ModelReply(text=str(action), parsed=action, usage=Usage(prompt_tokens=0, completion_tokens=0),
                          latency_s=self.latency)

    async def aclose(self) -> None:
        return None


class StandInSolver(AgentSolver):
    """The agent over the stand-in, told each task's patient and answer (from the scenario) for the stand-in."""

    backend: FixedLatencyStandIn

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        token = self.backend.task.set(StandInTask.of(scenario))
        try:
            return await super().solve(scenario, client, run_id=run_id)
        finally:
            self.backend.task.reset(token)


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
    off_calls: int
    delay_ms: dict[str, float]  # a task's mean time beyond its model sleeps, by where it went (see task_delays)
    causes: Counter[str]
    load_before: str
    load_after: str
    kept: Path | None

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s if self.wall_s else 0.0


def off_calls(records: list[TaskRecord], calls: int) -> int:
    """Tasks that made other than ``calls`` model calls (a re-asked answer, a refused step): the ideal wall
    assumes exactly ``calls`` per task, so a run with any is flagged."""
    return sum(1 for r in records if len(r.outcome.trace) != calls)


def task_delays(records: list[TaskRecord], latency: float) -> dict[str, float]:
    """A task's mean milliseconds beyond its model sleeps (``calls * latency``), by where they went: ``late``
    (model calls that returned after their sleep: the event loop was busy with other tasks' work), ``tool``
    (tool calls: the tool, its FHIR request, the server's answer, and waits for the loop between them),
    ``rest`` (everything else on the task's path: reset, setup, the agent's steps, diff, grading)."""
    if not records:
        return {"total": 0.0, "late": 0.0, "tool": 0.0, "rest": 0.0}
    n = len(records)
    sleeps = sum(len(r.outcome.trace) for r in records) * latency
    late = sum(r.outcome.model_s for r in records) - sleeps
    tool = sum(r.outcome.tool_s for r in records)
    total = sum(r.latency_s for r in records) - sleeps
    return {k: 1000 * v / n for k, v in {"total": total, "late": late, "tool": tool, "rest": total - late - tool}.items()}


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
        summary, probe, records = run_async(measure(scenarios, args.latency, args.calls, level, home,
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
            off_calls=off_calls(records, args.calls), delay_ms=task_delays(records, args.latency),
            causes=causes, load_before=before, load_after=after, kept=kept)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

HEAD = (f"{'executor':>8} {'conc':>4} {'run':>3} {'tasks':>5} {'wall s':>7} {'ideal s':>7} {'effic.':>7} "
        f"{'harness':>7} {'CPU ms/task':>11} {'(runner)':>8} {'mem MB':>7} {'start s':>7} {'errors':>6} {'tool err':>8} {'off calls':>9} "
        f"{'delay ms: total':>15} {'late':>5} {'tool':>5} {'rest':>5}")


def row(f: RunFigures) -> str:
    return (f"{f.executor:>8} {f.level:>4} {f.run:>3} {f.tasks:>5} {f.wall_s:>7.2f} {f.ideal_s:>7.2f} "
            f"{100 * f.efficiency:>6.1f}% {100 * f.harness_share:>6.1f}% {f.cpu_ms_per_task:>11.1f} "
            f"{f.runner_cpu_ms_per_task:>8.1f} "
            f"{f.memory_mb:>7.0f} {f.servers_start_s:>7.2f} {f.errors:>6} {f.tool_errors:>8} {f.off_calls:>9} "
            f"{f.delay_ms['total']:>15.1f} {f.delay_ms['late']:>5.1f} {f.delay_ms['tool']:>5.1f} {f.delay_ms['rest']:>5.1f}")


def cpu_budget(level: int, runs: list[RunFigures], *, cores: int) -> str:
    """The CPU a task may cost for the level's efficiency to reach 100%: at ``level`` tasks in flight the ideal
    is ``level / (calls * latency)`` tasks per second, and the machine's cores (the runner's one core, for what the
    runner process does) must do each task's work in ``1 / rate`` of their time; against the run's median."""
    first = runs[0]
    rate = first.tasks / first.ideal_s if first.ideal_s else 0.0  # tasks per second at the ideal wall
    if not rate:
        return "CPU budget: no ideal rate"
    cpu = statistics.median(f.cpu_ms_per_task for f in runs)
    runner = statistics.median(f.runner_cpu_ms_per_task for f in runs)
    return (f"CPU budget at the ideal {rate:.0f} tasks/s: {cores * 1000 / rate:.1f} ms/task on {cores} cores "
            f"(measured {cpu:.1f}: {100 * cpu * rate / (cores * 1000):.0f}% of them), {1000 / rate:.1f} ms/task "
            f"in the runner's one process (measured {runner:.1f}: {100 * runner * rate / 1000:.0f}% of a core)")


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
            lines.append("  " + cpu_budget(level, runs, cores=os.cpu_count() or 1))
            delay = {k: statistics.median(f.delay_ms[k] for f in runs) for k in runs[0].delay_ms}
            lines.append(f"  a task's delay beyond its model sleeps, median {delay['total']:.0f} ms: late wake-ups "
                         f"{delay['late']:.0f}, tool calls {delay['tool']:.0f}, the rest {delay['rest']:.0f}")
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
            if any(f.off_calls for f in runs):
                lines.append(f"  OFF CALLS: tasks made other than {calls} model calls, the ideal wall does not hold")
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
