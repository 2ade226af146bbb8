#!/usr/bin/env python3
"""Benchmark of the runner's own overhead, with a MODEL STAND-IN of fixed latency (not a model).

The stand-in answers every call after a fixed sleep (default 200 ms): one `get_patient` tool call,
then a final answer. Everything else is real: embedded FHIR servers (one per worker), snapshot
reset, the LangGraph agent, the tool, the server diff, grading and the JSONL log. So

    ideal wall = ceil(tasks / concurrency) * calls per task * latency
    harness overhead = 1 - ideal / measured wall

    python tools/bench_runner.py [--tasks 200] [--latency 0.2] [--levels 1,8,32]
    python tools/bench_runner.py --server-start [--repeats 5]   # lean server entry vs the full CLI
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
from pathlib import Path

from medagent.bench.results import ResultsLog
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers import AgentSolver
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


async def measure(tasks: int, latency: float, concurrency: int, home: Path) -> dict[str, float]:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "all", limit=tasks)
    solver = AgentSolver(FixedLatencyStandIn(latency), model="fixed-latency-stand-in")
    with tempfile.TemporaryDirectory() as tmp:
        summary = await run_benchmark(scenarios, solver, out_dir=Path(tmp) / "run", home=home,
                                      concurrency=concurrency, show_progress=False)
        records = ResultsLog(Path(tmp) / "run" / "results.jsonl").load()
    task_time = sum(r.latency_s for r in records)
    work_time = sum(r.model_s + r.tool_s for r in records)
    wall = summary["timing"]["tasks_wall_s"]
    ideal = math.ceil(len(scenarios) / concurrency) * CALLS_PER_TASK * latency
    errors = summary["overall"]["failures"].get("error", 0)
    return {"tasks": len(scenarios), "wall": wall, "ideal": ideal, "overhead": 1 - ideal / wall,
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
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2, help="stand-in seconds per model call")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--server-start", action="store_true", help="time server start (lean entry vs CLI) only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = get_settings().home
    if args.server_start:
        server_start(home, args.repeats)
        return 0
    levels = [int(x) for x in args.levels.split(",")]
    print(f"model stand-in: fixed {args.latency * 1000:.0f} ms per call, {CALLS_PER_TASK} calls per task "
          "(NOT a model); everything else real")
    print(f"{'conc':>5} {'tasks':>6} {'wall s':>8} {'ideal s':>8} {'vs ideal':>9} {'harness':>8} {'speedup':>8} "
          f"{'efficiency':>10} {'errors':>6} {'servers start s':>15}")
    base_wall = None
    for level in levels:
        row = asyncio.run(measure(args.tasks, args.latency, level, home))
        base_wall = base_wall or row["wall"] * levels[0]
        speedup = base_wall / row["wall"]
        print(f"{level:>5} {row['tasks']:>6} {row['wall']:>8.2f} {row['ideal']:>8.2f} {100 * row['overhead']:>8.1f}% "
              f"{100 * row['harness_share']:>7.1f}% {speedup:>8.2f} {100 * speedup / level:>9.1f}% {row['errors']:>6} {row['servers_start']:>15.1f}")
    print("vs ideal: 1 - ideal/wall, where ideal counts only the stand-in's latency (tool calls count as overhead);")
    print("harness: share of task time outside model and tool calls (reset, setup, snapshot, diff, grading, log)")
    print("target: harness overhead <= 5% of wall time; near-linear scaling until the FHIR servers saturate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
