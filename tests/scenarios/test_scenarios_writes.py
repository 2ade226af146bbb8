"""Write grading on hand-made diffs: the right write passes; missing, duplicated, wrong patient,
wrong code, wrong unit or dose, wrong time, and any write in a read-only task fail."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from medagent.scenarios.agentic.common import magnesium_order, potassium_followup, potassium_order
from medagent.scenarios.grading import diff_changes, grade
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance, Verdict, WriteSpec

PATIENT = "pat-1"
NOW = datetime(2020, 5, 1, 10, 15, tzinfo=UTC)
FIXTURE = {"resourceType": "Observation", "id": "fixture-k", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "6298-4"}]},
           "subject": {"reference": f"Patient/{PATIENT}"}, "effectiveDateTime": "2020-05-01T06:00:00+00:00",
           "valueQuantity": {"value": 3.1, "unit": "mmol/L"}}


def potassium_scenario() -> Scenario:
    return Scenario(
        id="k-act", suite="agentic", category="potassium_replacement", patient=PATIENT, now=NOW.isoformat(),
        question="...", answer=ExpectedAnswer(type="number", value=3.1, unit="mmol/L", tolerance=Tolerance(abs=0.05)),
        expected_writes=[potassium_order(PATIENT, NOW, 40.0), potassium_followup(PATIENT, NOW)], read_only=False,
        branch="act", setup=[FIXTURE],
    )


def medication_request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": "mr-1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "40032-917-01"}]},
        "subject": {"reference": f"Patient/{PATIENT}"}, "authoredOn": "2020-05-01T10:15:00+00:00",
        "dosageInstruction": [{"route": {"text": "oral"},
                               "doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mEq"}}]}],
    }
    resource.update(changes)
    return resource


def service_request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": f"Patient/{PATIENT}"}, "authoredOn": "2020-05-01T10:15:00+00:00",
        "occurrenceDateTime": "2020-05-02T08:00:00+00:00",
    }
    resource.update(changes)
    return resource


def create(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": resource["resourceType"], "id": resource["id"], "action": "create", "before": None,
            "after": resource}


def right_diff() -> list[dict[str, Any]]:
    return [create(FIXTURE), create(medication_request()), create(service_request())]


def verdict(diff: list[dict[str, Any]], answer: str = "3.1", scenario: Scenario | None = None) -> Verdict:
    return grade(scenario or potassium_scenario(), answer, diff)


def test_right_writes_pass() -> None:
    result = verdict(right_diff())
    assert result.passed and result.score == 1.0 and result.failure_cause is None


def test_order_and_ids_do_not_matter() -> None:
    diff = list(reversed(right_diff()))
    diff[0]["id"] = diff[0]["after"]["id"] = "anything-else"
    assert verdict(diff).passed


def test_setup_fixture_creation_is_not_an_agent_write() -> None:
    assert verdict(right_diff()).passed
    assert verdict(right_diff()[1:]).passed  # a runner that snapshots after setup has no fixture in the diff


def test_missing_write_fails() -> None:
    result = verdict(right_diff()[:2])
    assert not result.passed and result.failure_cause == "missing_write"


def test_no_writes_at_all_fail() -> None:
    result = verdict([create(FIXTURE)])
    assert not result.passed and result.failure_cause == "missing_write"


def test_duplicate_write_fails() -> None:
    twice = right_diff() + [create(medication_request(id="mr-2"))]
    result = verdict(twice)
    assert not result.passed and result.failure_cause == "forbidden_write"


def test_wrong_patient_fails() -> None:
    other = {"reference": "Patient/someone-else"}
    diff = [create(FIXTURE), create(medication_request(subject=other)), create(service_request())]
    result = verdict(diff)
    assert not result.passed and result.failure_cause == "wrong_write"
    assert any("subject" in (c.detail or "") for c in result.checks)


def test_wrong_code_fails() -> None:
    code = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "40032-917-01"}]}
    result = verdict([create(FIXTURE), create(medication_request(medicationCodeableConcept=code)),
                      create(service_request())])
    assert not result.passed and result.failure_cause == "wrong_write"


def test_wrong_dose_or_unit_fails() -> None:
    for dose in ({"value": 30, "unit": "mEq"}, {"value": 40, "unit": "mg"}, {"value": 40}):
        resource = medication_request()
        resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = dose
        assert not verdict([create(FIXTURE), create(resource), create(service_request())]).passed, dose


def test_equivalent_unit_passes() -> None:
    resource = medication_request()
    resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 40, "unit": "mmol",
                                                                           "code": "mmol"}
    resource["dosageInstruction"][0]["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": "26643006",
                                                             "display": "Oral route"}]}
    assert verdict([create(FIXTURE), create(resource), create(service_request())]).passed


def test_wrong_route_fails() -> None:
    resource = medication_request()
    resource["dosageInstruction"][0]["route"] = {"text": "IV"}
    assert not verdict([create(FIXTURE), create(resource), create(service_request())]).passed


def test_follow_up_timing() -> None:
    for good in ("2020-05-02T08:00:00+00:00", "2020-05-02T07:30:00Z", "2020-05-02T09:59:00+00:00"):
        assert verdict([create(FIXTURE), create(medication_request()),
                        create(service_request(occurrenceDateTime=good))]).passed, good
    for bad in ("2020-05-01T08:00:00+00:00", "2020-05-03T08:00:00+00:00", "2020-05-02T14:00:00+00:00",
                "2026-05-02T08:00:00+00:00"):
        assert not verdict([create(FIXTURE), create(medication_request()),
                            create(service_request(occurrenceDateTime=bad))]).passed, bad


def test_authored_on_wall_clock_fails() -> None:
    """A tool that stamps today's date instead of the scenario's now is caught."""
    result = verdict([create(FIXTURE), create(medication_request(authoredOn="2026-11-23T09:00:00+00:00")),
                      create(service_request())])
    assert not result.passed
    assert verdict([create(FIXTURE), create(medication_request(authoredOn="2020-05-01")),
                    create(service_request())]).passed  # a date-only authoredOn on the right day is fine


def test_wrong_answer_with_right_writes() -> None:
    result = verdict(right_diff(), answer="3.4")
    assert not result.passed and result.failure_cause == "wrong_answer"
    assert 0 < result.score < 1


def read_only_scenario() -> Scenario:
    return Scenario(id="ro", suite="agentic", category="latest_glucose", patient=PATIENT, now=NOW.isoformat(),
                    question="...", answer=ExpectedAnswer(type="number", value=83.0, unit="mg/dL",
                                                          tolerance=Tolerance(abs=1)))


def test_any_write_in_read_only_task_fails() -> None:
    scenario = read_only_scenario()
    assert grade(scenario, "83", []).passed
    for change in (create(service_request()), create(FIXTURE),
                   {"resourceType": "Patient", "id": PATIENT, "action": "update", "before": {}, "after": {}},
                   {"resourceType": "Observation", "id": "x", "action": "delete", "before": {}, "after": None}):
        result = grade(scenario, "83", [change])
        assert not result.passed and result.failure_cause == "forbidden_write"


def test_no_action_branch_fails_on_any_write() -> None:
    scenario = potassium_scenario().model_copy(update={"expected_writes": [], "read_only": True,
                                                       "branch": "no-action"})
    assert grade(scenario, "3.1", [create(FIXTURE)]).passed
    assert not grade(scenario, "3.1", right_diff()).passed
    assert not grade(scenario, "", [create(FIXTURE)]).passed  # a silent finish does not pass


def stop_scenario() -> Scenario:
    spec = WriteSpec(name="stop", resource_type="MedicationRequest", action="update", target="MedicationRequest/mr-9",
                     status=["stopped", "cancelled"], unchanged=["medicationCodeableConcept", "subject"])
    return Scenario(id="stop", suite="agentic", category="discontinue_medication", patient=PATIENT,
                    now=NOW.isoformat(), question="...", answer=ExpectedAnswer(type="date", value="2019-01-01"),
                    expected_writes=[spec], read_only=False, branch="act")


def test_discontinue_by_update() -> None:
    before = medication_request(id="mr-9")
    after = copy.deepcopy(before) | {"status": "stopped"}
    update = {"resourceType": "MedicationRequest", "id": "mr-9", "action": "update", "before": before, "after": after}
    assert grade(stop_scenario(), "2019-01-01", [update]).passed
    wrong_target = {**update, "id": "mr-8"}
    assert not grade(stop_scenario(), "2019-01-01", [wrong_target]).passed
    error = {**update, "after": before | {"status": "entered-in-error"}}
    assert not grade(stop_scenario(), "2019-01-01", [error]).passed
    swapped = {**update, "after": after | {"medicationCodeableConcept": {"coding": [{"code": "other"}]}}}
    assert not grade(stop_scenario(), "2019-01-01", [swapped]).passed
    deleted = {"resourceType": "MedicationRequest", "id": "mr-9", "action": "delete", "before": before, "after": None}
    result = grade(stop_scenario(), "2019-01-01", [deleted])
    assert not result.passed and result.failure_cause == "missing_write"


def test_magnesium_duration_encodings() -> None:
    spec = magnesium_order(PATIENT, NOW, 2.0, 2.0)
    scenario = potassium_scenario().model_copy(update={"expected_writes": [spec], "setup": []})
    base = medication_request()
    base["medicationCodeableConcept"] = {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0338-1715-40"}]}
    base["dosageInstruction"] = [{"route": {"text": "IV"}, "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "g"}}],
                                  "timing": {"repeat": {"duration": 2, "durationUnit": "h"}}}]
    assert grade(scenario, "3.1", [create(base)]).passed
    rate = copy.deepcopy(base)
    del rate["dosageInstruction"][0]["timing"]
    rate["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"] = {"value": 1, "unit": "g/h"}
    assert grade(scenario, "3.1", [create(rate)]).passed
    in_mg = copy.deepcopy(base)
    in_mg["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 2000, "unit": "mg"}
    assert grade(scenario, "3.1", [create(in_mg)]).passed
    too_fast = copy.deepcopy(base)
    too_fast["dosageInstruction"][0]["timing"]["repeat"]["duration"] = 1
    assert not grade(scenario, "3.1", [create(too_fast)]).passed
    no_duration = copy.deepcopy(base)
    del no_duration["dosageInstruction"][0]["timing"]
    assert not grade(scenario, "3.1", [create(no_duration)]).passed


def test_diff_body_accepted_whole() -> None:
    body = {"snapshot": "s1", "changes": right_diff()}
    assert verdict(diff_changes(body)).passed  # type: ignore[arg-type]
