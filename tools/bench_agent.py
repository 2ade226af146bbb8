#!/usr/bin/env python3
"""Harness overhead of the agent loop per step: wall time outside model calls and tool (FHIR) calls.

Drives the real LangGraph agent with ScriptedPolicy (a TEST POLICY with zero latency, not a model)
over the real tools and a real embedded FHIR server, so what remains is graph, state, prompt
building, action parsing, approval routing and checkpointing. Target: <= 5 ms per step.

    python tools/bench_agent.py [--runs 30] [--steps 6]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from medagent.agent.graph import Agent
from medagent.agent.state import Limits
from medagent.bench.servers import template_db
from medagent.config import get_settings
from medagent.fhir.client import FhirClient
from medagent.fhir.server.process import EmbeddedServer
from medagent.models.scripted import ScriptedPolicy
from medagent.tools.registry import default_registry

PATIENT = "ba18818d-faef-44cd-9744-b12d8973d402"


def script(steps: int) -> list[dict]:
    calls = [{"tool": "search_observations", "arguments": {"patient": PATIENT, "code": "4548-4", "latest": i + 1}}
             for i in range(steps)]
    return [*calls, {"tool": "final_answer", "arguments": {"answer": "x", "citations": []}}]


async def measure(base_url: str, runs: int, steps: int, checkpoints: Path | None) -> list[float]:
    registry = default_registry()
    per_step: list[float] = []
    async with FhirClient(base_url) as client:
        saver_cm = AsyncSqliteSaver.from_conn_string(str(checkpoints)) if checkpoints else None
        saver = await saver_cm.__aenter__() if saver_cm else None
        try:
            for run in range(runs + 1):
                agent = Agent(model=ScriptedPolicy(script(steps)), registry=registry, client=client,
                              limits=Limits(max_steps=steps + 1), checkpointer=saver)
                started = time.perf_counter()
                result = await agent.run("q", now="2020-06-01T00:00:00+00:00", patient=PATIENT, run_id=f"r{run}")
                wall = time.perf_counter() - started
                inside = result.model_s + result.tool_s
                if run:  # the first run warms caches
                    per_step.append((wall - inside) / (steps + 1) * 1000)
        finally:
            if saver_cm:
                await saver_cm.__aexit__(None, None, None)
    return per_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fhir.sqlite"
        shutil.copyfile(template_db(get_settings().home), db)
        with EmbeddedServer(db) as server:
            print(f"ScriptedPolicy (zero-latency TEST POLICY), {args.steps} tool steps + final answer, {args.runs} runs")
            print(f"{'checkpointer':<14} {'p50 ms/step':>12} {'p95 ms/step':>12}")
            for label, path in (("memory", None), ("sqlite", Path(tmp) / "checkpoints.sqlite")):
                values = sorted(asyncio.run(measure(server.base_url, args.runs, args.steps, path)))
                p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
                print(f"{label:<14} {statistics.median(values):>12.2f} {p95:>12.2f}")
    print("target: harness overhead <= 5 ms per step (time outside model and FHIR calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
