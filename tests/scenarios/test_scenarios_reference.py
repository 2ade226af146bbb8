"""The whole frozen set against reference and wrong policies, at the grader level.

Reference answers and diffs (derived from each scenario's spec) must pass 100% and be valid FHIR
R4; a silent finish must pass nothing; the other wrong policies must fail exactly where they
should. The oracle through the typed tools (bench) repeats this on the real server.
"""

from __future__ import annotations

from collections import Counter

import pytest
from fhir.resources.R4B import get_fhir_model_class

from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario
from medagent.scenarios.reference import WRONG_SOLUTIONS, reference_answer, reference_diff


def test_reference_passes_everything(frozen: list[Scenario]) -> None:
    """Everything but a workflow note's facts. Those are values and citations of chart records that only reading the
    chart yields, so a spec cannot render them: the workflow tier's reference is the oracle's run, which passes every
    checkpoint (tests/scenarios/test_workflow_set.py, tests/bench/test_workflow_policies.py). Here its reference
    must fail exactly its note facts and pass every other check (answer fields, orders, orders not placed, safety)."""
    failed = []
    for s in frozen:
        verdict = grade(s, reference_answer(s.answer), reference_diff(s))
        note_facts = {f"note: {fact.name}" for checkpoint in s.checkpoints for fact in checkpoint.note_facts}
        if s.tier == "workflow":
            assert note_facts, s.id
            if {c.name for c in verdict.checks if not c.passed} != note_facts:
                failed.append(s.id)
        elif not verdict.passed:
            failed.append(s.id)
    assert not failed, failed[:10]


def test_reference_writes_and_fixtures_are_valid_fhir_r4(frozen: list[Scenario]) -> None:
    checked = Counter()
    for scenario in frozen:
        for change in reference_diff(scenario):
            model = get_fhir_model_class(change["resourceType"])
            model.model_validate(change["after"])
            checked[change["resourceType"]] += 1
    assert {"Observation", "MedicationRequest", "ServiceRequest"} <= set(checked)
    if any(s.tier == "workflow" for s in frozen):
        assert checked["Composition"] >= len([s for s in frozen if s.tier == "workflow"])  # one note per task


def test_silent_finish_passes_nothing(frozen: list[Scenario]) -> None:
    policy = WRONG_SOLUTIONS["do-nothing"]
    passed = [s.id for s in frozen if grade(s, *policy(s)).passed]
    assert passed == []


def test_always_no_scores_half_of_yes_no_questions_and_nothing_else(frozen: list[Scenario]) -> None:
    policy = WRONG_SOLUTIONS["answer-no"]
    booleans = [s for s in frozen if s.answer.type == "boolean"]
    others = [s for s in frozen if s.answer.type not in ("boolean", "none")]
    passed_booleans = sum(grade(s, *policy(s)).passed for s in booleans)
    assert passed_booleans * 2 == len(booleans)
    assert not any(grade(s, *policy(s)).passed for s in others)


@pytest.mark.parametrize("policy", ["right-answer-no-writes", "write-twice", "wrong-patient"])
def test_write_policies_fail_every_write_task(frozen: list[Scenario], policy: str) -> None:
    write_tasks = [s for s in frozen if s.expected_writes]
    if policy != "right-answer-no-writes":
        write_tasks = [s for s in write_tasks if any(w.action == "create" for w in s.expected_writes)]
    assert write_tasks
    passed = [s.id for s in write_tasks if grade(s, *WRONG_SOLUTIONS[policy](s)).passed]
    assert passed == []


def test_any_write_fails_read_only_and_no_action_scenarios(frozen: list[Scenario]) -> None:
    """An always-act policy: the right answer plus an order it should not have placed."""
    stray = {"resourceType": "ServiceRequest", "id": "stray", "action": "create", "before": None,
             "after": {"resourceType": "ServiceRequest", "id": "stray", "status": "active", "intent": "order"}}
    quiet = [s for s in frozen if not s.expected_writes]
    assert any(s.branch == "no-action" for s in quiet)
    passed = [s.id for s in quiet if grade(s, reference_answer(s.answer), [*reference_diff(s), stray]).passed]
    assert passed == []


def test_wrong_policies_rates_overall(frozen: list[Scenario]) -> None:
    """The rates the report quotes: do-nothing <= 5% overall (here 0%)."""
    rates = {}
    for name, policy in WRONG_SOLUTIONS.items():
        rates[name] = sum(grade(s, *policy(s)).passed for s in frozen) / len(frozen)
    assert rates["do-nothing"] <= 0.05
    assert rates["answer-no"] < 0.35
