"""medagent's suites as inspect_ai tasks, run by inspect's own ``eval`` with its mock model provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.required import required

if required():  # CI installs the extra (tools/run_tests.sh): there a missing inspect_ai fails collection
    import inspect_ai
else:
    inspect_ai = pytest.importorskip("inspect_ai", reason="the optional extra medagent[inspect]")

from medagent.inspect import medagent_suite, scenario_samples, stop_servers  # noqa: E402


@pytest.fixture(autouse=True)
def _home(bench_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDAGENT_HOME", str(bench_home))


def _accuracy(log: object) -> float:
    return log.results.scores[0].metrics["accuracy"].value  # type: ignore[attr-defined]


def test_dataset_holds_the_scenarios() -> None:
    samples = scenario_samples("v2", "agentic", "test", "core", limit=5)
    assert len(samples) == 5
    assert all(s.metadata["scenario"]["id"] == s.id and s.input for s in samples)


def test_oracle_passes_and_do_nothing_fails_the_write_tasks(tmp_path: Path) -> None:
    try:
        task = medagent_suite(scenario_set="v2", suite="agentic", split="test", tier="core", limit=6, agent="oracle")
        [log] = inspect_ai.eval(task, model="mockllm/model", log_dir=str(tmp_path / "logs"), display="none")
        assert log.status == "success"
        assert _accuracy(log) == 1.0
        task = medagent_suite(scenario_set="v2", suite="agentic", split="test", tier="core", limit=6,
                              agent="do-nothing")
        [log] = inspect_ai.eval(task, model="mockllm/model", log_dir=str(tmp_path / "logs"), display="none")
        assert [s.id for s in log.samples if s.error] == []
        values = {s.id: next(iter(s.scores.values())).value for s in log.samples}
        assert set(values.values()) <= {"C", "I"}
        failed_writes = [s.id for s in log.samples if not s.metadata["scenario"]["read_only"] and values[s.id] == "I"]
        assert failed_writes and _accuracy(log) < 1.0  # a write the task needs was not made: the diff says so
    finally:
        stop_servers()
