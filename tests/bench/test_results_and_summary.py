"""Results log (atomic lines, torn-line tolerance) and the summary's pass^k and failure causes."""

from __future__ import annotations

from pathlib import Path

from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.summary import failure_cause, pass_hat_k, summarize


def _record(scenario: str, trial: int, passed: bool, **extra: object) -> TaskRecord:
    fields = {"suite": "ehrqa", "category": "condition_existence", "split": "test", "agent": "x", "status": "answered"}
    return TaskRecord(scenario_id=scenario, trial=trial, passed=passed, **{**fields, **extra})  # type: ignore[arg-type]


def test_torn_last_line_is_skipped_and_repaired(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append(_record("a", 0, True))
    log.append(_record("b", 0, False))
    with log.path.open("ab") as handle:
        handle.write(_record("c", 0, True).model_dump_json().encode()[:40])
    assert [r.scenario_id for r in log.load()] == ["a", "b"]
    assert log.skipped_lines == [3]
    log.repair()
    log.append(_record("c", 0, True))
    assert [r.scenario_id for r in log.load()] == ["a", "b", "c"]
    assert log.finished_keys() == {("a", 0), ("b", 0), ("c", 0)}


def test_pass_hat_k_matches_tau_bench_definition() -> None:
    # task 1: 3 of 4 trials pass; task 2: 4 of 4; pass^2 = mean(C(3,2)/C(4,2), 1) = mean(0.5, 1)
    assert pass_hat_k([(4, 3), (4, 4)], 1) == (0.75 + 1.0) / 2
    assert pass_hat_k([(4, 3), (4, 4)], 2) == (3 / 6 + 1.0) / 2
    assert pass_hat_k([(4, 3), (4, 4)], 4) == (0.0 + 1.0) / 2
    assert pass_hat_k([(1, 1)], 2) is None


def test_summary_groups_and_failure_causes() -> None:
    records = [
        _record("a", 0, True, steps=2, prompt_tokens=100, latency_s=1.0),
        _record("a", 1, False, status="step_limit", steps=12, latency_s=3.0),
        _record("b", 0, False, failure_cause="wrong_answer", category="immunization_date", latency_s=2.0),
        _record("b", 1, False, status="timeout", category="immunization_date", latency_s=9.0),
    ]
    summary = summarize(records)
    assert summary["overall"]["n"] == 4
    assert summary["overall"]["accuracy"] == 25.0
    assert summary["overall"]["pass_hat_k"] == {"1": 25.0, "2": 0.0}
    assert summary["overall"]["failures"] == {"budget": 1, "wrong_answer": 1, "timeout": 1}
    assert set(summary["by_category"]) == {"ehrqa/condition_existence", "ehrqa/immunization_date"}
    assert summary["by_category"]["ehrqa/condition_existence"]["accuracy"] == 50.0
    assert failure_cause(records[0]) is None
