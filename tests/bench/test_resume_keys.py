"""Resume bookkeeping in-process (no server: fast enough for mutation testing): which (scenario, trial)
pairs a resumed run still has to do, and the results log it reads them from."""

from __future__ import annotations

from pathlib import Path

from medagent.bench.results import ResultsLog
from medagent.bench.runner import pending_tasks
from medagent.scenarios.models import ExpectedAnswer, Scenario
from tests.bench.test_results_and_summary import _record


def scenario(sid: str) -> Scenario:
    return Scenario(id=sid, suite="ehrqa", category="condition_existence", split="test", patient="p",
                    now="2020-01-01T00:00:00+00:00", question="?", answer=ExpectedAnswer(type="boolean", value=True))


def test_pending_tasks_are_every_trial_not_in_the_log_trial_by_trial() -> None:
    a, b, c = scenario("a"), scenario("b"), scenario("c")
    todo = pending_tasks([a, b, c], 2, {("a", 0), ("b", 1), ("c", 0)})
    assert [(s.id, t) for s, t in todo] == [("b", 0), ("a", 1), ("c", 1)]
    assert pending_tasks([a, b], 1, {("a", 0), ("b", 0)}) == []
    # a finished trial 0 does not count for trial 1 (and the other way round)
    assert [(s.id, t) for s, t in pending_tasks([a], 3, {("a", 1)})] == [("a", 0), ("a", 2)]


def test_finished_keys_hold_the_trial(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append(_record("a", 1, True))
    log.append(_record("a", 0, False))
    assert log.finished_keys() == {("a", 1), ("a", 0)}   # a failed task is finished too


def test_repair_keeps_every_whole_line_and_its_newline(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append(_record("a", 0, True))
    whole = log.path.read_bytes()
    assert whole.endswith(b"\n") and whole.count(b"\n") == 1
    log.repair()                                   # nothing torn: nothing changes
    assert log.path.read_bytes() == whole
    with log.path.open("ab") as handle:
        handle.write(b'{"scenario_id": "b", "tri')
    log.repair()
    assert log.path.read_bytes() == whole          # only the torn tail goes, the newline stays
    log.append(_record("b", 0, True))
    assert [r.scenario_id for r in log.load()] == ["a", "b"] and log.skipped_lines == []


def test_an_invalid_whole_line_is_skipped_and_noted(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append(_record("a", 0, True))
    with log.path.open("ab") as handle:
        handle.write(b'{"not": "a record"}\n')
    log.append(_record("b", 0, True))
    assert [r.scenario_id for r in log.load()] == ["a", "b"]
    assert log.skipped_lines == [2]
    assert ResultsLog(tmp_path / "missing.jsonl").load() == []
