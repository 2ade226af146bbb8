"""The rule that stops a run whose model fails (``ModelFailureWatch``), in-process: N model errors in a row or
one model call that timed out stop it; the streak that stopped it is not logged (not run, not scored); an
isolated model error, or a streak a good task ends, is logged and scored as before. The end-to-end runs are
in tests/bench/test_model_failure_stop.py."""

from __future__ import annotations

import pytest

from medagent.bench.results import TaskRecord
from medagent.bench.runner import DEFAULT_MAX_MODEL_ERRORS, ModelFailureWatch
from medagent.trajectory import RunOutcome


def record(name: str, status: str = "answered", kind: str | None = None) -> TaskRecord:
    outcome = RunOutcome(status=status, error=f"{kind or 'x'} error of {name}" if status != "answered" else None,
                         error_kind=kind)
    return TaskRecord(scenario_id=name, suite="ehrqa", category="c", split="test", agent="agent", outcome=outcome)


def names(records: list[TaskRecord]) -> list[str]:
    return [r.scenario_id for r in records]


def test_n_model_errors_in_a_row_stop_and_are_not_logged() -> None:
    watch = ModelFailureWatch(3)
    assert names(watch.see(record("a"))) == ["a"]
    assert watch.see(record("b", "model_error", "connection")) == []
    assert watch.see(record("c", "model_error", "server")) == [] and watch.reason is None
    assert watch.see(record("d", "model_error", "connection")) == []
    assert watch.reason is not None and watch.reason.startswith("3 consecutive model errors")
    assert "error of d" in watch.reason
    assert names(watch.see(record("e"))) == ["e"]  # a task in flight that finished: logged, the streak is not
    assert watch.see(record("f", "model_error", "connection")) == [] and watch.finish() == []


def test_a_streak_a_good_task_ends_is_logged_in_order() -> None:
    watch = ModelFailureWatch(3)
    assert watch.see(record("a", "model_error", "server")) == []
    assert watch.see(record("b", "model_error", "server")) == []
    assert names(watch.see(record("c"))) == ["a", "b", "c"] and watch.reason is None
    assert watch.see(record("d", "model_error", "server")) == []
    assert names(watch.finish()) == ["d"]  # a run that ends with a short streak scores it
    assert names(watch.see(record("e", "invalid_output"))) == ["e"]  # not a model failure: no streak


def test_one_model_call_that_timed_out_stops_at_once() -> None:
    watch = ModelFailureWatch(DEFAULT_MAX_MODEL_ERRORS)
    assert watch.see(record("a", "model_error", "timeout")) == []
    assert watch.reason is not None and "did not answer in time" in watch.reason
    assert watch.finish() == []


def test_the_limit_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="^max_model_errors must be at least 1$"):
        ModelFailureWatch(0)
    watch = ModelFailureWatch(1)
    assert watch.see(record("a", "model_error", "server")) == [] and watch.reason is not None
