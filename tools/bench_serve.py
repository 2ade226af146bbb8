#!/usr/bin/env python3
"""Service overhead of ``medagent serve``: what HTTP, the SSE stream and checkpoint notifications add to a run.

Drives the real service (uvicorn, SQLite checkpointer, real tools) over a real embedded FHIR server with
ScriptedPolicy (a zero-latency TEST POLICY, not a model): each run makes N read calls, then answers.
Prints p50/p95 of: POST /api/runs, GET /api/runs/{id}, time from POST to the first streamed step, and the
wall time per step from POST to the `done` event minus the time inside model and tool calls.

    python tools/bench_serve.py [--runs 20] [--steps 4]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from medagent.bench.servers import template_db
from medagent.config import get_settings
from medagent.fhir.server.process import EmbeddedServer
from medagent.models.base import ModelRequest
from medagent.models.scripted import ScriptedPolicy
from medagent.serve.server import ServiceConfig, ServiceThread

PATIENT = "ba18818d-faef-44cd-9744-b12d8973d402"


def reads_then_answer(steps: int) -> Callable[[ModelRequest], dict]:
    """A ScriptedPolicy script: ``steps`` reads of the patient's HbA1c, then a final answer."""

    def reply(request: ModelRequest) -> dict:
        done = sum(1 for m in request.messages if m.role == "user" and m.content.startswith("[result of "))
        if done < steps:
            return {"tool": "search_observations", "arguments": {"patient": PATIENT, "code": "4548-4", "latest": done + 1}}
        return {"tool": "final_answer", "arguments": {"answer": "x", "citations": []}}

    return reply


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_run(http: httpx.Client, steps: int) -> dict[str, float]:
    started = time.perf_counter()
    posted = http.post("/api/runs", json={"question": "q", "patient": PATIENT, "now": "2020-06-01"})
    post_ms = (time.perf_counter() - started) * 1000
    run_id = posted.raise_for_status().json()["run_id"]
    first_step = None
    done: dict = {}
    with http.stream("GET", f"/api/runs/{run_id}/events") as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if event == "step" and first_step is None:
                    first_step = (time.perf_counter() - started) * 1000
                if event == "done":
                    done = orjson.loads(line[5:])
                    break
    wall = time.perf_counter() - started
    inside = sum((s.get("model_s") or 0) + (s.get("tool_s") or 0) for s in done["steps"])
    get_started = time.perf_counter()
    http.get(f"/api/runs/{run_id}").raise_for_status()
    return {"post_ms": post_ms, "get_ms": (time.perf_counter() - get_started) * 1000,
            "first_step_ms": first_step or 0.0, "overhead_ms_per_step": (wall - inside) / (steps + 1) * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fhir.sqlite"
        shutil.copyfile(template_db(get_settings().home), db)
        with EmbeddedServer(db) as fhir:
            config = ServiceConfig(fhir_url=fhir.base_url, checkpoints=Path(tmp) / "checkpoints.sqlite", port=0,
                                   approval="refuse", max_steps=args.steps + 1)
            with ServiceThread(config, ScriptedPolicy(reads_then_answer(args.steps))) as service, \
                    httpx.Client(base_url=service.url, timeout=60) as http:
                results = [one_run(http, args.steps) for _ in range(args.runs + 1)][1:]  # the first run warms up
    print(f"medagent serve, ScriptedPolicy (zero-latency TEST POLICY), {args.steps} reads + answer, {args.runs} runs")
    print(f"{'measure':<34} {'p50':>9} {'p95':>9}")
    for key, label in (("post_ms", "POST /api/runs (ms)"), ("get_ms", "GET /api/runs/{id} (ms)"),
                       ("first_step_ms", "POST -> first streamed step (ms)"),
                       ("overhead_ms_per_step", "service+harness ms per step")):
        values = [r[key] for r in results]
        print(f"{label:<34} {statistics.median(values):>9.2f} {percentile(values, 0.95):>9.2f}")
    print("(outside model and tool time; includes the agent harness, SQLite checkpoints, HTTP and SSE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
