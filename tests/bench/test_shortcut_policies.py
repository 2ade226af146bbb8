"""The shortcut solvers (``medagent.bench.solvers.shortcuts``) through the real runner on v3, and the decision table.

Each shortcut is the one measured on v2's hard tier; on v3 it must fail: it passes no item (a decision shortcut only
where its guess was right and nothing else is asked) and misses decisions. Run on a small slice of v3's test split;
the rates over every item are asserted in ``tests/scenarios/test_v3_set.py`` and printed by
``medagent bench baselines --set v3`` (scenarios/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medagent.bench.decision_table import both_branches, decision_summary, decisions, render_decision_table
from medagent.bench.solvers.catalog import make_code_solver
from medagent.bench.results import TaskRecord
from medagent.bench.runner import run_benchmark
from medagent.bench.solvers.shortcuts import NearestDevSolver, SetupOnlySolver
from medagent.scenarios.models import Scenario
from medagent.scenarios.reference import reference_answer, reference_diff
from medagent.scenarios.scenario_files import open_set
from medagent.trajectory import RunOutcome

V3 = Path(__file__).resolve().parents[2] / "scenarios" / "v3"
PER_BRANCH = 3


@pytest.fixture(scope="module")
def v3_test() -> list[Scenario]:
    return open_set(V3).load("all", "test", "all")


def slice_of(scenarios: list[Scenario], categories: frozenset[str]) -> list[Scenario]:
    """Up to PER_BRANCH items of every branch (or 2 x PER_BRANCH items) of each category."""
    out: list[Scenario] = []
    for category in sorted(categories):
        items = [s for s in scenarios if s.category == category]
        for branch in ({s.branch for s in items} or {None}):
            out += [s for s in items if s.branch == branch][:PER_BRANCH if branch else 2 * PER_BRANCH]
    return out


@pytest.mark.parametrize("name", ["nearest-dev", "stated-number", "setup-only", "first-sentences",
                                  "lab-name-prior"])
async def test_each_shortcut_fails_v3(name: str, v3_test: list[Scenario], bench_home: Path, tmp_path: Path) -> None:
    policy = make_code_solver(name, V3)
    tasks = slice_of(v3_test, policy.categories)  # type: ignore[attr-defined]
    assert tasks and all(policy.applies(s) for s in tasks)  # type: ignore[attr-defined]
    records: list[TaskRecord] = []
    await run_benchmark(tasks, policy, out_dir=tmp_path / name, home=bench_home, concurrency=2,
                        show_progress=False, on_record=records.append)
    by_id = {s.id: s for s in tasks}
    mine = records  # v3's magnesium too: its renal check reads the chart's creatinine, which the setup never adds
    always = both_branches(v3_test)
    right = [d for r in mine for d in decisions(r, by_id[r.scenario_id], always)]
    if name in ("stated-number", "setup-only"):  # the rates on every item: test_v3_set.py and bench baselines
        assert len(right) >= 6 and not all(right), right
        # it passes only where its coin fell on the right side and the answer needs nothing else (potassium; a
        # magnesium hold for want of a creatinine)
        assert all(decisions(r, by_id[r.scenario_id], always) == [True] for r in mine if r.passed)
    else:
        assert not [r.scenario_id for r in mine if r.passed]
    for record in records:
        assert record.outcome.status == "answered", (record.scenario_id, record.outcome.error)


def test_setup_only_sees_only_the_setup(v3_test: list[Scenario]) -> None:
    policy = SetupOnlySolver()
    assert policy.applies(next(s for s in v3_test if s.category == "safety_gated_order"))
    assert not policy.applies(next(s for s in v3_test if s.category == "prompt_injection"))


def test_nearest_dev_copies_the_closest_dev_item(v3_test: list[Scenario]) -> None:
    cohort = [s for s in v3_test if s.category == "cohort_measure"]
    near = cohort[0].model_copy(update={"split": "dev", "id": "dev-near", "now": cohort[0].now})
    far = cohort[0].model_copy(update={"split": "dev", "id": "dev-far", "now": "2005-01-01T09:00:00+00:00",
                                       "answer": cohort[1].answer})
    policy = NearestDevSolver(examples=[far, near])
    assert policy.answer_for(cohort[0]) == "; ".join(cohort[0].answer.value or [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dev only"):
        NearestDevSolver(examples=[cohort[0]])


def _record(scenario: Scenario, answer: str, changes: list[dict]) -> TaskRecord:  # type: ignore[type-arg]
    from medagent.scenarios.grading import grade

    verdict = grade(scenario, answer, changes)
    return TaskRecord(scenario_id=scenario.id, trial=0, suite=scenario.suite, category=scenario.category,
                      split=scenario.split, agent="x", model=None, outcome=RunOutcome(status="answered", answer=answer),
                      passed=verdict.passed, score=verdict.score, verdict=verdict.model_dump(mode="json"),
                      changes=changes, latency_s=0.0)


def test_decisions_count_the_branch_and_each_abstention_field(v3_test: list[Scenario]) -> None:
    act = next(s for s in v3_test if s.category == "bp_workup_workflow" and s.branch == "act")
    held = next(s for s in v3_test if s.category == "bp_workup_workflow" and s.branch == "no-action")
    always = both_branches(v3_test)
    assert always["bp_workup_workflow"] == 1 and always["safety_gated_order"] == 0  # the reading; nothing
    right = _record(act, reference_answer(act.answer), reference_diff(act))
    wrong_answer = _record(act, json.dumps({"readings": 0}), reference_diff(act))
    no_order = _record(act, reference_answer(act.answer),
                       [c for c in reference_diff(act) if c["resourceType"] != "ServiceRequest"])
    nothing = _record(held, "", [])
    assert decisions(right, act, always) == [True] and decisions(wrong_answer, act, always) == [True]  # not the answer
    assert decisions(no_order, act, always) == [False]
    assert decisions(nothing, held, always) == [True]  # order nothing: right on no-action, though the item fails
    lab = next(s for s in v3_test if s.category == "abstention")
    truth = json.loads(reference_answer(lab.answer))
    flipped = {k: ("not recorded" if field.value is not None else 1.0) for k, field in lab.answer.fields.items()}
    assert decisions(_record(lab, json.dumps(truth), []), lab) == [True] * 3
    assert decisions(_record(lab, json.dumps(flipped), []), lab) == [False] * 3
    visit = next(s for s in v3_test if s.tier == "workflow" and s.branch == "act")  # several decisions: checkpoints
    assert visit.checkpoints and decisions(_record(visit, "", []), visit, always) == []
    summary = decision_summary({"p": [right, no_order]}, [act, held])
    assert summary["p"]["agentic/hard"] == {"n": 2, "pass": 50.0, "other_n": 0, "other_pass": None,
                                             "decision_n": 2, "decisions": 50.0}
    assert "| **agentic/hard** | - / 50.0 (n=2) |" in render_decision_table(summary, "t")
