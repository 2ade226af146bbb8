"""What a clinician sees of a record's status, the tools show too: a refuted or erroneous diagnosis, a refuted
allergy, why an order was stopped, a result entered in error (each PUT on the shared server, then reset)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from tools_expect import PATIENT

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)
SNOMED = "http://snomed.info/sct"


def put(url: str, resource: dict[str, Any]) -> None:
    httpx.put(f"{url}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30).raise_for_status()


def condition(rid: str, verification: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "verificationStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]
        },
        "code": {"coding": [{"system": SNOMED, "code": "433144002", "display": "Chronic kidney disease stage 3"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "onsetDateTime": "2018-01-01T00:00:00+00:00",
    }
    if verification != "entered-in-error":
        resource["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        }
    return resource


async def test_a_refuted_or_erroneous_diagnosis_is_shown_so_and_not_active(run: Any, clean_fhir: str) -> None:
    put(clean_fhir, condition("ckd-refuted", "refuted"))
    put(clean_fhir, condition("ckd-error", "entered-in-error"))
    every = await run("search_conditions", NOW, patient=PATIENT, code="433144002")
    lines = {row["ref"]: row for row in every.rows}
    assert lines["Condition/ckd-refuted"]["verification"] == "refuted"
    assert "verification refuted" in every.text and "verification entered-in-error" in every.text
    active = await run("search_conditions", NOW, patient=PATIENT, code="433144002", status="active")
    assert active.rows == [], "a refuted diagnosis is not on the active problem list"


async def test_a_refuted_allergy_and_a_stop_reason_are_shown(run: Any, clean_fhir: str) -> None:
    put(
        clean_fhir,
        {
            "resourceType": "AllergyIntolerance",
            "id": "pen-refuted",
            "category": ["medication"],
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "refuted"}]},
            "code": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7984", "display": "penicillin V"}
                ]
            },
            "patient": {"reference": f"Patient/{PATIENT}"},
            "recordedDate": "2018-01-01",
        },
    )
    allergies = await run("search_allergies", NOW, patient=PATIENT)
    assert "penicillin V" in allergies.text and "verification refuted" in allergies.text
    put(
        clean_fhir,
        {
            "resourceType": "MedicationRequest",
            "id": "statin-stopped",
            "status": "stopped",
            "intent": "order",
            "statusReason": {"text": "myalgia"},
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "312961",
                        "display": "Simvastatin 20 MG Oral Tablet",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{PATIENT}"},
            "authoredOn": "2018-06-01T00:00:00+00:00",
        },
    )
    orders = await run("search_medications", NOW, patient=PATIENT, code="312961")
    assert "stopped (myalgia)" in orders.text


async def test_a_result_entered_in_error_says_so(run: Any, clean_fhir: str) -> None:
    put(
        clean_fhir,
        {
            "resourceType": "Observation",
            "id": "a1c-error",
            "status": "entered-in-error",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}], "text": "HbA1c"},
            "subject": {"reference": f"Patient/{PATIENT}"},
            "effectiveDateTime": "2019-05-01T08:00:00+00:00",
            "valueQuantity": {"value": 9.8, "unit": "%"},
        },
    )
    result = await run("search_observations", NOW, patient=PATIENT, code="4548-4", latest=1)
    assert result.rows[0]["status"] == "entered-in-error" and "entered-in-error" in result.text
