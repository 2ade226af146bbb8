"""Resume with trials > 1: a run that died during its second trial finishes exactly the missing
(scenario, trial) pairs, keeps what was written byte for byte, and never reruns a finished pair."""

from __future__ import annotations

import json
from pathlib import Path

from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.catalog import make_code_solver

TASKS = 4
TRIALS = 2


def keys(path: Path) -> list[tuple[str, int]]:
    return [(json.loads(line)["scenario_id"], json.loads(line)["trial"]) for line in path.read_text().splitlines()]


async def test_resume_finishes_the_second_trial(tmp_path: Path, bench_home: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=TASKS)
    wanted = {(s.id, t) for s in scenarios for t in range(TRIALS)}
    out = tmp_path / "run"
    await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=out, home=bench_home, trials=TRIALS,
                        show_progress=False)
    results = out / "results.jsonl"
    full = results.read_bytes().splitlines(keepends=True)
    assert set(keys(results)) == wanted and len(full) == TASKS * TRIALS

    # the process died during trial 1: the log holds all of trial 0, one line of trial 1 and half a line
    by_trial = {t: [line for line in full if json.loads(line)["trial"] == t] for t in range(TRIALS)}
    kept = by_trial[0] + by_trial[1][:1]
    results.write_bytes(b"".join(kept) + by_trial[1][1][: len(by_trial[1][1]) // 2])

    summary = await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=out, home=bench_home, trials=TRIALS,
                                  resume=True, show_progress=False)
    after = results.read_bytes().splitlines(keepends=True)
    assert after[: len(kept)] == kept, "finished results are kept byte for byte"
    got = keys(results)
    assert len(got) == len(set(got)) == TASKS * TRIALS, "every (scenario, trial) exactly once"
    assert set(got) == wanted
    assert {key for key in got[len(kept):]} == wanted - set(keys_of(kept))
    assert summary["timing"]["tasks_run"] == TASKS * TRIALS - len(kept)


async def test_resume_of_a_finished_multi_trial_run_runs_nothing(tmp_path: Path, bench_home: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=2)
    out = tmp_path / "run"
    await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=out, home=bench_home, trials=3, show_progress=False)
    before = (out / "results.jsonl").read_bytes()
    summary = await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=out, home=bench_home, trials=3,
                                  resume=True, show_progress=False)
    assert (out / "results.jsonl").read_bytes() == before
    assert summary["timing"]["tasks_run"] == 0
    assert sorted(keys(out / "results.jsonl")) == sorted((s.id, t) for s in scenarios for t in range(3))


def keys_of(lines: list[bytes]) -> list[tuple[str, int]]:
    return [(json.loads(line)["scenario_id"], json.loads(line)["trial"]) for line in lines]
