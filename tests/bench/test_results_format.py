"""The results log is typed (verdict, changes) and versioned; runs written in the older formats still load, rescore
and render: version 1 (the same fields, no ``format_version``) and the oldest lines (outcome fields at the top)."""

from __future__ import annotations

import json
from pathlib import Path

from medagent.bench.report import write_report
from medagent.bench.rescore import rescore_run
from medagent.bench.results import LEGACY_OUTCOME_FIELDS, RESULTS_FORMAT, ResultsLog
from medagent.bench.runner import RESULTS_FILE, SUMMARY_FILE, run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.oracle import OracleSolver
from medagent.bench.summary import SUMMARY_FORMAT, read_summary
from medagent.scenarios.models import Change, Verdict


def as_version_1(line: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in line.items() if k != "format_version"}


def as_flat_legacy(line: dict) -> dict:  # type: ignore[type-arg]
    flat = as_version_1(line)
    outcome = flat.pop("outcome")
    flat.update({k: outcome[k] for k in LEGACY_OUTCOME_FIELDS if k in outcome})
    return flat


async def test_old_results_logs_load_rescore_and_render(bench_home: Path, tmp_path: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "agentic", "test")
    chosen = [next(s for s in scenarios if s.category == name) for name in ("record_bp", "find_mrn", "age")]
    run = tmp_path / "run"
    await run_benchmark(chosen, OracleSolver(), out_dir=run, home=bench_home, concurrency=1, show_progress=False)
    lines = [json.loads(raw) for raw in (run / RESULTS_FILE).read_text().splitlines()]
    assert [line["format_version"] for line in lines] == [RESULTS_FORMAT] * 3
    fresh = ResultsLog(run / RESULTS_FILE).load()
    written = next(r for r in fresh if r.category == "record_bp")
    assert isinstance(written.verdict, Verdict) and written.verdict.passed
    assert [type(c) for c in written.changes] == [Change] and written.changes[0].action == "create"
    assert read_summary(run / SUMMARY_FILE).format_version == SUMMARY_FORMAT

    # the same run as an old run folder: one line of each older format
    old = tmp_path / "old-run"
    old.mkdir()
    old_lines = [as_version_1(lines[0]), as_flat_legacy(lines[1]), as_version_1(lines[2])]
    (old / RESULTS_FILE).write_text("".join(json.dumps(line) + "\n" for line in old_lines))
    loaded = ResultsLog(old / RESULTS_FILE).load()
    assert [r.format_version for r in loaded] == [1, 1, 1] and len(loaded) == 3
    assert [r.model_dump(exclude={"format_version"}) for r in loaded] == [
        r.model_dump(exclude={"format_version"}) for r in fresh]  # nothing lost in the old formats

    summary, changed = rescore_run(old, default_scenarios_dir())
    assert changed == 0 and summary["overall"]["accuracy"] == 100.0
    rewritten = [json.loads(raw) for raw in (old / RESULTS_FILE).read_text().splitlines()]
    assert [line["format_version"] for line in rewritten] == [RESULTS_FORMAT] * 3
    report = write_report([old]).read_text(encoding="utf-8")
    assert all(s.id in report for s in chosen) and "write: blood pressure observation" in report
