"""The runner for real: a run killed mid-way resumes without losing or duplicating tasks; rescore
re-grades saved answers; the whole-record baseline counts what it cuts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from medagent.bench.rescore import rescore_run
from medagent.bench.results import ResultsLog
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.catalog import make_code_solver
from medagent.bench.solvers.whole_record import CHARS_PER_TOKEN, WholeRecordSolver, fit_record
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy

TASKS = 24


def _cli(out: Path, home: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "medagent", "bench", "run", "--agent", "oracle", "--suite", "ehrqa", "--split",
            "test", "--limit", str(TASKS), "--out", str(out), "--no-report", *extra]


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path: Path, bench_home: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "MEDAGENT_HOME": str(bench_home)}
    process = subprocess.Popen(_cli(out, bench_home), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if results.exists() and results.read_bytes().count(b"\n") >= 5:
            break
        assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and its FHIR servers die at once
    process.wait()
    before = [line for line in results.read_bytes().splitlines(keepends=True) if line.endswith(b"\n")]
    assert 5 <= len(before) < TASKS

    refused = subprocess.run(_cli(out, bench_home), env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never mixes runs silently

    resumed = subprocess.run(_cli(out, bench_home, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = results.read_bytes().splitlines(keepends=True)
    assert after[: len(before)] == before  # finished results kept byte for byte
    keys = [(json.loads(line)["scenario_id"], json.loads(line)["trial"]) for line in after]
    assert len(keys) == len(set(keys)) == TASKS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == {**summary["overall"], "n": TASKS, "accuracy": 100.0}


async def test_rescore_reproduces_saved_scores_and_regrades_changed_answers(tmp_path: Path, bench_home: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=10)
    out = tmp_path / "run"
    saved = await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=out, home=bench_home, show_progress=False)
    patients = {s.id: f"Patient/{s.patient}" for s in scenarios}
    assert saved["overall"]["intervals"]["clusters"] == len(set(patients.values()))  # the runner records each task's
    log = ResultsLog(out / "results.jsonl")
    log.path.write_text("".join(r.model_dump_json(exclude={"cluster"}) + "\n" for r in log.load()))  # an older run
    summary, changed = rescore_run(out, default_scenarios_dir())
    assert changed == 0
    assert summary["overall"]["accuracy"] == saved["overall"]["accuracy"] == 100.0
    assert {r.scenario_id: r.cluster for r in log.load()} == patients  # rescore fills in the clusters
    assert summary["overall"]["intervals"] == saved["overall"]["intervals"]

    records = log.load()
    boolean = next(r for r in records if r.outcome.answer and r.outcome.answer.lower() in ("yes", "no"))
    flipped = "no" if boolean.outcome.answer.lower() == "yes" else "yes"
    changed_outcome = boolean.outcome.model_copy(update={"answer": flipped})
    log.path.write_text("".join((r.model_copy(update={"outcome": changed_outcome}) if r is boolean else r)
                                .model_dump_json() + "\n" for r in records))
    summary, changed = rescore_run(out, default_scenarios_dir())
    assert changed == 1
    assert summary["overall"]["accuracy"] == 90.0


def test_fit_record_keeps_newest_first_and_counts_the_cut() -> None:
    resources = [{"resourceType": "Patient", "id": "p"}] + [
        {"resourceType": "Observation", "id": f"o{i}", "effectiveDateTime": f"20{10 + i}-01-01", "note": "x" * 200}
        for i in range(10)
    ]
    text, kept, cut = fit_record(resources, max_tokens=300)
    assert kept + cut == 11 and cut > 0
    lines = text.splitlines()
    assert '"Patient"' in lines[0] and '"o9"' in lines[1]  # patient first, then the newest


async def test_whole_record_baseline_puts_the_record_in_the_prompt(fhir_url: str) -> None:
    scenario = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=1)[0]
    policy = ScriptedPolicy([{"answer": "yes"}])
    solver = WholeRecordSolver(policy, model="scripted", context_tokens=4096)
    async with FhirClient(fhir_url) as client:
        outcome = await solver.solve(scenario, client)
    assert outcome.status == "answered" and outcome.answer == "yes"
    prompt = policy.requests[0].messages[0].content
    assert scenario.question in prompt and f'"id":"{scenario.patient}"' in prompt
    cut = outcome.trace[0].context
    assert cut is not None and cut.resources == cut.kept + cut.cut and cut.cut > 0
    assert len(prompt) / CHARS_PER_TOKEN <= 4096
