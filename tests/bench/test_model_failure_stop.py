"""Issue 25, item 4: a benchmark stops when its model fails, instead of scoring a dead model.

The reproductions, with a real OpenAI-compatible stand-in server (tests/bench/openai_stand_in.py, a test
double of a model server, not a model) and the real CLI, embedded FHIR servers and scenario set:
- a model that dies after a few answers: the run ended "overall accuracy: 0.0%" with exit 0 and no error;
- a model that accepts and never answers: each task waited the whole 600 s run timeout.
Now the run stops after ``--max-model-errors`` consecutive model errors or at the first call with no answer
within ``--model-timeout``, leaves the remaining tasks not run (not scored), exits non-zero saying why, and
``--resume`` finishes it once the model is back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.bench.openai_stand_in import OpenAIStandIn

TASKS = 6


def bench_run(out: Path, home: Path, model: str, *extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDAGENT_")}
    environment.update({"MEDAGENT_HOME": str(home), "PYTHONPATH": os.getcwd()})
    return subprocess.run(
        [sys.executable, "-m", "medagent", "bench", "run", "--suite", "ehrqa", "--tier", "core", "--limit", str(TASKS),
         "--model", model, "--out", str(out), "--no-report", *extra],
        env=environment, capture_output=True, text=True, timeout=600)


def records(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_a_model_that_dies_stops_the_run_and_resume_finishes_it(tmp_path: Path, bench_home: Path) -> None:
    out = tmp_path / "run"
    with OpenAIStandIn(die_after=3) as dying:  # task 1: two answers; task 2: one answer, then nothing listens
        port = dying.port
        done = bench_run(out, bench_home, dying.base_url)  # the default: 3 consecutive model errors stop a run
    assert done.returncode == 3, (done.returncode, done.stdout[-3000:])  # stopped (1: failed by --max-error-share)
    assert "stopped" in done.stderr and "3 consecutive model errors" in done.stderr, done.stderr[-3000:]
    assert "not run" in done.stderr and "--resume" in done.stderr
    scored = records(out)
    assert [r["outcome"]["status"] for r in scored] == ["answered"], [r["outcome"]["status"] for r in scored]
    run = json.loads((out / "run.json").read_text())
    assert run["stopped"]["not_run"] == TASKS - 1 and "consecutive model errors" in run["stopped"]["reason"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["n"] == 1 and summary["stopped"]["not_run"] == TASKS - 1
    assert summary["status"] == "stopped" and "failed" not in summary

    with OpenAIStandIn(port=port) as back:  # the same URL answers again
        resumed = bench_run(out, bench_home, back.base_url, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finished = records(out)
    assert sorted(r["scenario_id"] for r in finished) == sorted({r["scenario_id"] for r in finished})
    assert len(finished) == TASKS and {r["outcome"]["status"] for r in finished} == {"answered"}
    assert "stopped" not in json.loads((out / "run.json").read_text())
    assert json.loads((out / "summary.json").read_text())["overall"]["n"] == TASKS
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"


def test_a_model_that_never_answers_stops_the_run_at_the_per_call_timeout(tmp_path: Path, bench_home: Path) -> None:
    out = tmp_path / "run"
    with OpenAIStandIn(hang=True) as silent:
        done = bench_run(out, bench_home, silent.base_url, "--model-timeout", "2")
        asked = silent.chat_requests
    assert done.returncode == 3, (done.returncode, done.stdout[-3000:])
    assert "did not answer within 2 s" in done.stderr and "not run" in done.stderr, done.stderr[-3000:]
    assert asked == 1  # the first call that timed out stopped the run: no other task asked it
    assert records(out) == []
    assert json.loads((out / "run.json").read_text())["stopped"]["not_run"] == TASKS
