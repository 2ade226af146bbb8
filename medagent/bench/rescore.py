"""Re-grading a saved run with the current graders: each record keeps its answer and server diff."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medagent.bench.results import RESULTS_FORMAT, ResultsLog, TaskRecord
from medagent.bench.runner import RESULTS_FILE, SUMMARY_FILE, RunDirError, write_json_atomic
from medagent.bench.scenario_sets import ScenarioSetError, load_scenarios
from medagent.bench.summary import summarize
from medagent.bench.task_run import checkpoint_counts
from medagent.bench.uncertainty import task_cluster
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario


def regrade(record: TaskRecord, scenario: Scenario) -> TaskRecord:
    if record.outcome.status == "error" and record.verdict is None:
        return record
    verdict = grade(scenario, record.outcome.answer, record.changes)
    return record.model_copy(
        update={
            "passed": verdict.passed and record.outcome.status == "answered",
            "score": verdict.score,
            "failure_cause": verdict.failure_cause,
            "verdict": verdict,
            "format_version": RESULTS_FORMAT,
            "tier": scenario.tier,
            **checkpoint_counts(verdict, scenario),
        }
    )


def rescore_run(run_dir: Path, scenarios_dir: Path) -> tuple[dict[str, Any], int]:
    """Rewrite results.jsonl and summary.json with current verdicts; returns (summary, verdicts changed)."""
    log = ResultsLog(run_dir / RESULTS_FILE)
    if not log.path.exists():
        raise RunDirError(f"{run_dir} holds no {RESULTS_FILE}")
    by_id = {s.id: s for s in load_scenarios(scenarios_dir, "all", "all")}
    records = log.load()
    updated, changed = [], 0
    for record in records:
        scenario = by_id.get(record.scenario_id)
        if scenario is None:
            raise ScenarioSetError(f"scenario {record.scenario_id!r} of this run is not in {scenarios_dir}")
        new = regrade(record, scenario).model_copy(update={"cluster": task_cluster(scenario)})
        changed += new.passed != record.passed
        updated.append(new)
    tmp = log.path.with_suffix(".rescore.tmp")
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in updated))
    os.replace(tmp, log.path)
    summary = summarize(updated)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    return summary, changed
