"""Null baselines: the chart-blind prior (learned from dev only), the "none"-answerer, and the targets.

The targets of issue #11 are checked on the whole v2 test split by grading each baseline's fixed
answer (these policies read nothing and write nothing, so the grader sees an empty diff, as the
runner would); the runner path itself is checked on a stratified subset and by the CLI on a tiny set.
The v1 figures show that the prior is competent: on v1 it exploits the entity asked about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medagent.bench.cli import bench_app
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import load_scenarios
from medagent.bench.solvers.chart_blind import AnswerPrior, ChartBlindSolver, answer_text
from medagent.bench.solvers.wrong import NoneAnswererSolver
from medagent.scenarios.build import build_scenarios
from medagent.scenarios.grading import grade
from medagent.scenarios.models import ExpectedAnswer, Scenario

SETS = Path(__file__).resolve().parents[2] / "scenarios"


def hand_made(sid: str, split: str, entity: str, value: bool, form: str = "condition") -> Scenario:
    return Scenario(id=sid, suite="ehrqa", split=split, category="condition_existence", patient="p",  # type: ignore[arg-type]
                    now="2020-01-01T00:00:00+00:00", question="q", answer=ExpectedAnswer(type="boolean", value=value),
                    meta={"form": form, "key": ["x", entity], "entity": entity})


def test_prior_answers_the_majority_by_entity_then_by_form() -> None:
    dev = [hand_made("a", "dev", "X", True), hand_made("b", "dev", "X", True), hand_made("c", "dev", "X", False),
           hand_made("d", "dev", "Y", False), hand_made("e", "dev", "Z", False)]
    prior = AnswerPrior(dev)
    assert prior.guess(hand_made("t1", "test", "X", False)) == "yes"  # X was mostly yes in dev
    assert prior.guess(hand_made("t2", "test", "Y", True)) == "no"
    assert prior.guess(hand_made("t3", "test", "unseen", True)) == "no"  # the form's majority (3 no : 2 yes)
    assert prior.guess(hand_made("t4", "test", "X", True, form="other")) == "yes"  # nothing known: "yes"


def test_prior_refuses_to_learn_from_test_answers() -> None:
    with pytest.raises(ValueError, match="learns from dev only"):
        AnswerPrior([hand_made("a", "test", "X", True)])


def test_answer_text_writes_each_answer_shape() -> None:
    assert answer_text(ExpectedAnswer(type="date", value=None)) == "none"
    assert answer_text(ExpectedAnswer(type="names", value=["A", "B"])) == "A; B"
    assert answer_text(ExpectedAnswer(type="number", value=5.5, unit="mg/dL")) == "5.5 mg/dL"
    record = ExpectedAnswer(type="record", fields={"value": ExpectedAnswer(type="number", value=7.0),
                                                   "date": ExpectedAnswer(type="date", value="2020-01-02")})
    assert json.loads(answer_text(record)) == {"value": 7.0, "date": "2020-01-02"}


def _rates(scenarios: list[Scenario], answers: dict[str, str]) -> dict[tuple[str, bool], float]:
    out: dict[tuple[str, bool], list[bool]] = {}
    for s in scenarios:
        out.setdefault((s.suite, s.answer.type == "boolean"), []).append(grade(s, answers[s.id], []).passed)
        out.setdefault((s.suite, None), []).append(grade(s, answers[s.id], []).passed)  # type: ignore[arg-type]
    return {key: 100.0 * sum(v) / len(v) for key, v in out.items()}


@pytest.fixture(scope="module")
def v2_test() -> list[Scenario]:
    return load_scenarios(SETS / "v2", "all", "test")


def test_v2_meets_the_floor_targets(v2_test: list[Scenario]) -> None:
    blind = ChartBlindSolver(SETS / "v2")
    guesses = {s.id: blind.prior.guess(s) for s in v2_test}
    rates = _rates(v2_test, guesses)
    assert rates[("ehrqa", True)] <= 55.0  # yes/no: chance is 50%
    for suite in ("ehrqa", "agentic"):
        assert rates[(suite, False)] <= 10.0, suite
    for fixed in ("none", ""):  # the "none"-answerer and do-nothing
        fixed_rates = _rates(v2_test, {s.id: fixed for s in v2_test})
        for suite in ("ehrqa", "agentic"):
            assert fixed_rates[(suite, None)] <= 10.0, (fixed, suite)  # type: ignore[index]


def test_on_v1_the_same_prior_beats_chance_from_the_entity_alone() -> None:
    v1_test = load_scenarios(SETS / "v1", "all", "test")
    blind = ChartBlindSolver(SETS / "v1")
    rates = _rates(v1_test, {s.id: blind.prior.guess(s) for s in v1_test})
    assert rates[("ehrqa", True)] >= 65.0  # v1's flaw (issue #11: 72%); v2 removes it
    none_rates = _rates(v1_test, {s.id: "none" for s in v1_test})
    assert none_rates[("agentic", None)] >= 15.0  # type: ignore[index]


def test_the_prior_never_reads_the_test_scenarios_answers(v2_test: list[Scenario]) -> None:
    blind = ChartBlindSolver(SETS / "v2")
    for s in v2_test:
        stripped = s.model_copy(update={"answer": ExpectedAnswer(type="none"), "expected_writes": [], "provenance": []})
        assert blind.prior.guess(stripped) == blind.prior.guess(s), s.id


async def test_baselines_through_the_runner_read_and_write_nothing(v2_test: list[Scenario], bench_home: Path,
                                                                    tmp_path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    subset = []
    for s in v2_test:  # one scenario per suite x category x answer type
        if (s.category, s.answer.type) not in seen:
            seen.add((s.category, s.answer.type))
            subset.append(s)
    for policy in (ChartBlindSolver(SETS / "v2"), NoneAnswererSolver()):
        records: list[Any] = []
        await run_benchmark(subset, policy, out_dir=tmp_path / policy.name, home=bench_home, concurrency=2,
                            show_progress=False, on_record=records.append)
        assert len(records) == len(subset)
        by_id = {s.id: s for s in subset}
        for record in records:
            assert record.outcome.tool_calls == 0 and not record.changes, record.scenario_id
            assert record.passed == grade(by_id[record.scenario_id], record.outcome.answer, []).passed


def test_cli_baselines_writes_one_table(tmp_path: Path, bench_home: Path) -> None:
    folder = tmp_path / "set"
    build_scenarios(seed=5, patients=3, out_dir=folder, hard=False)
    out = tmp_path / "baselines"
    result = CliRunner().invoke(bench_app, ["baselines", "--scenarios", str(folder), "--split", "test",
                                            "--out", str(out), "--policies", "do-nothing,chart-blind"],
                                env={"MEDAGENT_HOME": str(bench_home)})
    assert result.exit_code == 0, result.output
    data = json.loads((out / "baselines.json").read_text())
    assert set(data["table"]) == {"do-nothing", "chart-blind"}
    overall = {p: next(r for r in rows if r["suite"] == "*") for p, rows in data["table"].items()}
    assert overall["do-nothing"]["accuracy"] == 0.0
    assert overall["do-nothing"]["n"] == len(load_scenarios(folder, "all", "test")) > 0
    markdown = (out / "baselines.md").read_text()
    assert "| ehrqa | core |" in markdown and "| agentic | core |" in markdown
    assert "chart-blind yes/no" in markdown and "chart-blind other" in markdown
    recorded = json.loads((out / "chart-blind" / "scenario_set.json").read_text())
    assert recorded["set"] == "v2" and recorded["content_hash"] == data["content_hash"]


def test_cli_baselines_runs_one_tier_only(tmp_path: Path, bench_home: Path) -> None:
    """--tier reaches the set's loader: an unknown tier is refused before any policy runs."""
    out = tmp_path / "baselines"
    result = CliRunner().invoke(bench_app, ["baselines", "--scenarios", str(SETS / "v3"), "--tier", "easy",
                                            "--out", str(out), "--policies", "do-nothing"],
                                env={"MEDAGENT_HOME": str(bench_home)})
    assert result.exit_code == 2 and "tier" in result.output, result.output
    assert not (out / "do-nothing").exists()


def test_cli_baselines_runs_only_the_categories_asked(tmp_path: Path, bench_home: Path) -> None:
    folder = tmp_path / "set"
    build_scenarios(seed=5, patients=3, out_dir=folder, hard=False)
    test = load_scenarios(folder, "all", "test")
    asked = sorted({s.category for s in test})[:2]
    out = tmp_path / "baselines"
    env = {"MEDAGENT_HOME": str(bench_home)}
    result = CliRunner().invoke(bench_app, ["baselines", "--scenarios", str(folder), "--split", "test", "--out",
                                            str(out), "--policies", "do-nothing", "--categories", ",".join(asked)],
                                env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "baselines.json").read_text())["table"]["do-nothing"]
    assert {r["category"] for r in rows if r["category"] not in ("*", "")} == set(asked), rows
    overall = next(r for r in rows if r["suite"] == "*")
    assert overall["n"] == sum(s.category in asked for s in test) < len(test)
    wrong = CliRunner().invoke(bench_app, ["baselines", "--scenarios", str(folder), "--split", "test", "--out",
                                           str(tmp_path / "other"), "--policies", "do-nothing", "--categories",
                                           "no_such_category"], env=env)
    assert wrong.exit_code == 2 and "no_such_category" in wrong.output
