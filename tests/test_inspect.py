"""medagent's suites as inspect_ai tasks, run by inspect's own ``eval`` with its mock model provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.required import required

if required():  # CI installs the extra (tools/run_tests.sh): there a missing inspect_ai fails collection
    import inspect_ai
else:
    inspect_ai = pytest.importorskip("inspect_ai", reason="the optional extra medagent[inspect]")

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from medagent.inspect_tasks import (
    medagent_scorer,
    medagent_suite,
    medagent_tools_solver,
    scenario_samples,
    stop_servers,
)
from medagent.scenarios.models import Scenario


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


def _age_task() -> Sample:
    [sample] = [s for s in scenario_samples("v2", "agentic", "test", "core", limit=40)
                if s.metadata["scenario"]["category"] == "age"][:1]
    return sample


def _react_eval(sample: Sample, outputs: list[ModelOutput], tmp_path: Path) -> Any:
    task = Task(dataset=MemoryDataset([sample]), solver=medagent_tools_solver(), scorer=medagent_scorer())
    model = get_model("mockllm/model", custom_outputs=outputs)
    [log] = inspect_ai.eval(task, model=model, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    [done] = log.samples
    return done


def _call(tool: str, **arguments: Any) -> ModelOutput:
    output = ModelOutput.for_tool_call(model="mockllm/model", tool_name=tool, tool_arguments=arguments)
    output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else mockllm counts with tiktoken,
    return output  # whose encoding is downloaded (no network here)


def test_inspects_react_agent_reads_through_medagents_tools(tmp_path: Path) -> None:
    sample = _age_task()
    scenario = sample.metadata["scenario"]
    patient = Scenario.model_validate(scenario).patient_context
    expected = scenario["answer"]["value"]  # ground truth, computed from the bundle
    try:
        done = _react_eval(sample, [_call("get_patient", patient=patient), _call("submit", answer=f"{expected:g}")],
                           tmp_path)
        [read] = [m for m in done.messages if m.role == "tool" and m.function == "get_patient"]
        assert patient in read.text and not read.text.startswith("ERROR"), read.text
        assert next(iter(done.scores.values())).value == "C"
        assert done.metadata["medagent"]["changes"] == []

        wrong = _react_eval(sample, [_call("submit", answer=f"{expected + 7:g}")], tmp_path)
        assert next(iter(wrong.scores.values())).value == "I"
    finally:
        stop_servers()


def test_inspects_react_agent_writes_through_the_approval_path(tmp_path: Path) -> None:
    """A note on a read-only task: the write is approved as in every benchmark run, reaches the server
    (the diff holds it, so the graders fail the task), and the server is reset after the sample."""
    sample = _age_task()
    scenario = sample.metadata["scenario"]
    patient = Scenario.model_validate(scenario).patient_context
    expected = scenario["answer"]["value"]
    try:
        done = _react_eval(sample, [_call("add_note", patient=patient, text="Age confirmed with the patient.",
                                          reason="inspect test"),
                                    _call("submit", answer=f"{expected:g}")], tmp_path)
        [wrote] = [m for m in done.messages if m.role == "tool" and m.function == "add_note"]
        assert not wrote.text.startswith("ERROR"), wrote.text
        changes = done.metadata["medagent"]["changes"]
        assert [c["resourceType"] for c in changes] == ["DocumentReference"]
        assert next(iter(done.scores.values())).value == "I"

        again = _react_eval(sample, [_call("submit", answer=f"{expected:g}")], tmp_path)
        assert again.metadata["medagent"]["changes"] == []  # the note was undone after the first sample
        assert next(iter(again.scores.values())).value == "C"
    finally:
        stop_servers()
