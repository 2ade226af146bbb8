"""Results log (atomic lines, torn-line tolerance) and the summary's pass^k and failure causes."""

from __future__ import annotations

from pathlib import Path

from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.summary import failure_cause, pass_hat_k, summarize
from medagent.trajectory import RunOutcome, Step


def _record(scenario: str, trial: int, passed: bool, *, status: str = "answered", steps: int = 0,
            prompt_tokens: int = 0, **extra: object) -> TaskRecord:
    fields = {"suite": "ehrqa", "category": "condition_existence", "split": "test", "agent": "x"}
    trace = [Step(step=1, tool="final_answer", prompt_tokens=prompt_tokens)] if prompt_tokens else []
    outcome = RunOutcome(status=status, steps=steps, trace=trace)  # type: ignore[arg-type]
    return TaskRecord(scenario_id=scenario, trial=trial, passed=passed, outcome=outcome,
                      **{**fields, **extra})  # type: ignore[arg-type]


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


def test_summary_counts_tokens_and_steps_from_the_outcomes() -> None:
    records = [_record("a", 0, True, steps=2, prompt_tokens=100), _record("b", 0, False, steps=4, prompt_tokens=300)]
    overall = summarize(records)["overall"]
    assert overall["prompt_tokens"] == 400 and overall["mean_prompt_tokens"] == 200.0 and overall["mean_steps"] == 3.0


# A line written by the previous version (flat fields, dict steps, whole-record counts as record_* keys)
LEGACY_LINE = (
    '{"scenario_id": "ehrqa-x-1", "trial": 0, "suite": "ehrqa", "category": "observation_value", "split": "test", '
    '"agent": "whole-record", "model": "m", "status": "answered", "answer": "7.1 %", "citations": [], '
    '"passed": true, "score": 1.0, "failure_cause": null, "verdict": null, "changes": [], '
    '"trace": [{"step": 1, "tool": null, "model_output": "{}", "record_resources": 40, "record_kept": 30, '
    '"record_cut": 10, "tool_s": 0.5, "model_s": 2.0, "prompt_tokens": 3000, "completion_tokens": 9}], '
    '"steps": 1, "tool_calls": 0, "prompt_tokens": 3000, "completion_tokens": 9, "latency_s": 2.6, "model_s": 2.0, '
    '"tool_s": 0.5, "error": null, "scenario_set_hash": "c641308c74682b47"}\n'
)


def test_results_written_by_the_previous_version_still_load(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    log.path.write_text(LEGACY_LINE)
    [record] = log.load()
    assert log.skipped_lines == []
    outcome = record.outcome
    assert (outcome.status, outcome.answer, outcome.steps) == ("answered", "7.1 %", 1)
    assert (outcome.prompt_tokens, outcome.completion_tokens, outcome.model_s, outcome.tool_s) == (3000, 9, 2.0, 0.5)
    assert outcome.trace[0].context is not None and outcome.trace[0].context.cut == 10
    assert record.scenario_set_hash == "c641308c74682b47" and record.passed
    again = TaskRecord.model_validate_json(record.model_dump_json())  # the new shape round-trips
    assert again == record


def test_a_record_names_what_is_missing() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="outcome"):
        TaskRecord.model_validate({"scenario_id": "x", "suite": "ehrqa", "category": "c", "split": "test", "agent": "a"})


def test_the_outcome_is_stated_once() -> None:
    """AgentResult extends the one RunOutcome; TaskRecord holds one and repeats none of its fields."""
    from medagent.agent.state import AgentResult

    outcome_fields = set(RunOutcome.model_fields) | set(RunOutcome.model_computed_fields)
    assert not outcome_fields & set(TaskRecord.model_fields)
    assert set(AgentResult.model_fields) - set(RunOutcome.model_fields) == {"run_id", "pending_approval"}
    outcome = RunOutcome(trace=[Step(step=1, tool="get_patient", tool_s=0.25, prompt_tokens=10),
                                Step(step=2, tool="final_answer", model_s=1.5, prompt_tokens=30, completion_tokens=4)])
    assert (outcome.tool_calls, outcome.prompt_tokens, outcome.completion_tokens) == (1, 40, 4)
    assert (outcome.tool_s, outcome.model_s) == (0.25, 1.5)


def test_the_checkpoint_rate_stands_beside_pass_at_one() -> None:
    records = [_record("a", 0, True), _record("b", 0, False), _record("c", 0, False)]
    records = [r.model_copy(update={"tier": "workflow", "checkpoints_passed": p, "checkpoints_total": 8})
               for r, p in zip(records, (8, 6, 0), strict=True)]
    summary = summarize([*records, _record("d", 0, True)])
    workflow = summary["by_tier"]["workflow"]
    assert workflow["accuracy"] == 33.33 and workflow["checkpoint_rate"] == round(100 * (1 + 0.75 + 0) / 3, 2)
    assert workflow["checkpoints"] == {"passed": 14, "total": 24}
    assert "checkpoint_rate" not in summary["by_tier"]["core"], "tasks without checkpoints have no rate"
