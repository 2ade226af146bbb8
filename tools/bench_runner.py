#!/usr/bin/env python3
"""Benchmark of the runner's own overhead, with a MODEL STAND-IN of fixed latency (not a model).

The stand-in answers every call after a fixed sleep (default 200 ms): one `get_patient` tool call,
then a final answer. Everything else is real: embedded FHIR servers (one per task in flight), snapshot
reset, the LangGraph agent, the tool, the server diff, grading and the JSONL log; with `--executors ray`
the same run on a local Ray cluster (actors with `--actor-slots` servers each). So

    ideal wall = ceil(tasks / concurrency) * calls per task * latency
    efficiency = ideal / measured wall

    python tools/bench_runner.py [--tasks 192] [--latency 0.2] [--levels 8,32,64] [--executors local,ray]
    python tools/bench_runner.py --server-start [--repeats 5]   # lean server entry vs the full CLI
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import sys
import tempfile
from pathlib import Path

from medagent.bench.executors import Executor, LocalExecutor, RayExecutor
from medagent.bench.results import ResultsLog
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.agent import AgentSolver
from medagent.config import get_settings
from medagent.models.base import ModelReply, ModelRequest, Usage

CALLS_PER_TASK = 2


class FixedLatencyStandIn:
    """A stand-in for a model: sleeps ``latency`` seconds, then replies from a fixed script."""

    name = "fixed-latency-stand-in"

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def complete(self, request: ModelRequest) -> ModelReply:
        await asyncio.sleep(self.latency)
        patient = request.messages[0].content.split("Patient/")[1].split(".")[0] if "Patient/" in request.messages[0].content else ""
        answered = any(m.content.startswith("[result of get_patient]") for m in request.messages)
        action = ({"tool": "final_answer", "arguments": {"answer": "unknown", "citations": []}} if answered
                  else {"tool": "get_patient", "arguments": {"patient": patient}})
        return ModelReply(text=str(action), parsed=action, usage=Usage(prompt_tokens=0, completion_tokens=0),
                          latency_s=self.latency)

    async def aclose(self) -> None:
        return None


def stand_in_solver(latency: float) -> AgentSolver:
    return AgentSolver(FixedLatencyStandIn(latency), model="fixed-latency-stand-in")


def make_executor(name: str, latency: float, actor_slots: int) -> Executor:
    if name == "local":
        return LocalExecutor()
    # each actor builds its own agent over its own stand-in (shipped by value: this script is __main__)
    return RayExecutor(solver_factory=functools.partial(stand_in_solver, latency), slots_per_actor=actor_slots)


async def measure(tasks: int, latency: float, concurrency: int, home: Path, executor: Executor) -> dict[str, float]:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "all", limit=tasks)
    with tempfile.TemporaryDirectory() as tmp:
        summary = await run_benchmark(scenarios, stand_in_solver(latency), out_dir=Path(tmp) / "run", home=home,
                                      concurrency=concurrency, show_progress=False, executor=executor)
        records = ResultsLog(Path(tmp) / "run" / "results.jsonl").load()
    task_time = sum(r.latency_s for r in records)
    work_time = sum(r.outcome.model_s + r.outcome.tool_s for r in records)
    wall = summary["timing"]["tasks_wall_s"]
    ideal = math.ceil(len(scenarios) / concurrency) * CALLS_PER_TASK * latency
    errors = summary["overall"]["failures"].get("error", 0)
    return {"tasks": len(scenarios), "wall": wall, "ideal": ideal, "efficiency": ideal / wall,
            "harness_share": 1 - work_time / task_time,
            "servers_start": summary["timing"]["servers_start_s"], "errors": errors}


def server_start(home: Path, repeats: int) -> None:
    """Seconds from spawn to the first /metadata answer: ``python -m medagent.fhir.server`` vs the CLI."""
    import shutil
    import statistics
    import time

    from medagent.bench.servers import template_db
    from medagent.fhir.server import process

    template = template_db(home)
    print(f"server start (spawn -> /metadata 200), {repeats} starts each, interleaved; on a loaded machine")
    times: dict[tuple[str, ...], list[float]] = {process.CLI_ENTRY: [], process.SERVER_ENTRY: []}
    lean = process.SERVER_ENTRY
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(repeats):
            for entry in times:
                db = Path(tmp) / f"{index}-{len(entry)}.sqlite"
                shutil.copyfile(template, db)
                process.SERVER_ENTRY = entry
                server = process.EmbeddedServer(db, allow_reset=True)
                started = time.perf_counter()
                server.start()
                times[entry].append(time.perf_counter() - started)
                server.stop()
    process.SERVER_ENTRY = lean
    for entry, seconds in times.items():
        print(f"  python {' '.join(entry):<28} median {statistics.median(seconds):5.2f} s  "
              f"min {min(seconds):5.2f} s  max {max(seconds):5.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=192)
    parser.add_argument("--latency", type=float, default=0.2, help="stand-in seconds per model call")
    parser.add_argument("--levels", default="8,32,64", help="comma-separated concurrency levels")
    parser.add_argument("--executors", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--actor-slots", type=int, default=8, help="ray: FHIR servers per actor")
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1, help="ray: CPUs of the local cluster")
    parser.add_argument("--server-start", action="store_true", help="time server start (lean entry vs CLI) only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = get_settings().home
    if args.server_start:
        server_start(home, args.repeats)
        return 0
    levels = [int(x) for x in args.levels.split(",")]
    executors = [x.strip() for x in args.executors.split(",")]
    if "ray" in executors:
        import ray

        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    print(f"model stand-in: fixed {args.latency * 1000:.0f} ms per call, {CALLS_PER_TASK} calls per task "
          f"(NOT a model); everything else real; {os.cpu_count()} cores; ray: {args.actor_slots} servers per actor")
    print(f"{'executor':>8} {'conc':>5} {'tasks':>6} {'wall s':>8} {'ideal s':>8} {'efficiency':>10} {'harness':>8} "
          f"{'errors':>6} {'servers start s':>15}")
    for name in executors:
        for level in levels:
            row = asyncio.run(measure(args.tasks, args.latency, level, home,
                                      make_executor(name, args.latency, args.actor_slots)))
            print(f"{name:>8} {level:>5} {row['tasks']:>6} {row['wall']:>8.2f} {row['ideal']:>8.2f} "
                  f"{100 * row['efficiency']:>9.1f}% {100 * row['harness_share']:>7.1f}% {row['errors']:>6} "
                  f"{row['servers_start']:>15.1f}", flush=True)
    print("efficiency: ideal/wall, where ideal counts only the stand-in's latency (tool calls count as overhead);")
    print("harness: share of task time outside model and tool calls (reset, setup, snapshot, diff, grading, log)")
    print("wall: tasks only (servers started before); measured under whatever else loads the machine: lower bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
