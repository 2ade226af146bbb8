"""Setup resources of the workflow tier: the record noise and the context a task's setup adds to the chart.

Shaped like the data around them and like what a real EHR receives (a laboratory's second feed, a
point-of-care device with local codes, an outside report, an order cancelled before it was filled), with
deterministic ids (``identity.fixture_id``). The base charts stay Synthea's: the runner PUTs these after the
reset and before the agent starts.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from medagent.scenarios.clock import iso
from medagent.scenarios.codes import CVX, LOINC, OBSERVATION_CATEGORY, RXNORM, SNOMED, UCUM
from medagent.scenarios.identity import fixture_id
from medagent.scenarios.workflow.record import LOCAL_CODES, LOCAL_LAB, SECOND_FEED

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
NOTE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
NOTE_TYPES = {
    "progress": ("11506-3", "Progress note"),
    "consult": ("11488-4", "Consult note"),
    "discharge": ("18842-5", "Discharge summary"),
    "outside": ("34133-9", "Summary of episode note"),
}


def _patient(patient: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient}"}


def lab_result(
    scenario: str,
    index: int,
    patient: str,
    code: str,
    display: str,
    value: float,
    unit: str,
    when: datetime,
    *,
    status: str = "final",
    local: bool = False,
    feed: bool = False,
    category: str = "laboratory",
) -> dict[str, Any]:
    """A numeric result. ``local``: coded only with the laboratory's local code (text, no display, no LOINC);
    ``feed``: the reference laboratory's copy of a result (its own identifier)."""
    if local:
        local_code = next(k for k, (loinc, _, _) in LOCAL_CODES.items() if loinc == code)
        concept: dict[str, Any] = {
            "coding": [{"system": LOCAL_LAB, "code": local_code}],
            "text": LOCAL_CODES[local_code][1],
        }
    else:
        concept = {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": fixture_id(scenario, index),
        "status": status,
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category, "display": category}]}],
        "code": concept,
        "subject": _patient(patient),
        "effectiveDateTime": iso(when),
        "issued": iso(when),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if feed:
        resource["identifier"] = [{"system": SECOND_FEED, "value": fixture_id(scenario, 1000 + index)[:13]}]
    return resource


def coded_result(
    scenario: str,
    index: int,
    patient: str,
    code: str,
    answer: str,
    when: datetime,
    *,
    local: bool = False,
    status: str = "final",
) -> dict[str, Any]:
    """A result whose value is a coded finding (e.g. a negative FIT), LOINC-coded or under the local code."""
    resource = lab_result(scenario, index, patient, code, code, 0.0, "", when, local=local, status=status)
    del resource["valueQuantity"]
    resource["valueCodeableConcept"] = {
        "coding": [{"system": SNOMED, "code": "260385009" if answer == "Negative" else "10828004", "display": answer}],
        "text": answer,
    }
    return resource


def blood_pressure(
    scenario: str,
    index: int,
    patient: str,
    systolic: float,
    diastolic: float,
    when: datetime,
    *,
    status: str = "final",
    feed: bool = False,
) -> dict[str, Any]:
    """A blood-pressure panel (LOINC 85354-9) with its two components, like the write tool records it."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": fixture_id(scenario, index),
        "status": status,
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "vital-signs"}]}],
        "code": {
            "coding": [
                {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional"}
            ],
            "text": "Blood pressure",
        },
        "subject": _patient(patient),
        "effectiveDateTime": iso(when),
        "issued": iso(when),
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
                "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            }
            for code, name, value in (
                ("8480-6", "Systolic blood pressure", systolic),
                ("8462-4", "Diastolic blood pressure", diastolic),
            )
        ],
    }
    if feed:
        resource["identifier"] = [{"system": SECOND_FEED, "value": fixture_id(scenario, 1000 + index)[:13]}]
    return resource


def medication_order(
    scenario: str,
    index: int,
    patient: str,
    code: str,
    display: str,
    status: str,
    authored: datetime,
    dosage: str,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": fixture_id(scenario, index),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "subject": _patient(patient),
        "authoredOn": iso(authored),
        "dosageInstruction": [{"text": dosage}],
    }
    if reason:
        resource["statusReason"] = {"text": reason}
    return resource


def service_order(
    scenario: str,
    index: int,
    patient: str,
    code: str,
    display: str,
    status: str,
    authored: datetime,
    *,
    system: str = LOINC,
) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": fixture_id(scenario, index),
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": _patient(patient),
        "authoredOn": iso(authored),
    }


def condition(
    scenario: str,
    index: int,
    patient: str,
    code: str,
    display: str,
    onset: datetime,
    *,
    verification: str = "confirmed",
    abatement: datetime | None = None,
) -> dict[str, Any]:
    clinical = "resolved" if abatement is not None else "active"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": fixture_id(scenario, index),
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": verification}]},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": _patient(patient),
        "onsetDateTime": iso(onset),
        "recordedDate": iso(onset),
    }
    if abatement is not None:
        resource["abatementDateTime"] = iso(abatement)
    if verification == "entered-in-error":
        del resource["clinicalStatus"]  # con-5: no clinical status on a record entered in error
    return resource


def clinical_note(
    scenario: str,
    index: int,
    patient: str,
    text: str,
    when: datetime,
    author: str,
    *,
    kind: str = "progress",
    title: str | None = None,
) -> dict[str, Any]:
    """A plain-text note (DocumentReference, US Core clinical note): the whole text is in the attachment."""
    code, name = NOTE_TYPES[kind]
    return {
        "resourceType": "DocumentReference",
        "id": fixture_id(scenario, index),
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "category": [{"coding": [{"system": NOTE_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]}],
        "subject": _patient(patient),
        "date": iso(when),
        "author": [{"display": author}],
        "description": title or name,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "title": title or name,
                    "creation": iso(when),
                    "data": base64.b64encode(text.encode()).decode(),
                }
            }
        ],
    }


def immunization(
    scenario: str, index: int, patient: str, cvx: str, display: str, when: datetime, *, status: str = "completed"
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": fixture_id(scenario, index),
        "status": status,
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx, "display": display}], "text": display},
        "patient": _patient(patient),
        "occurrenceDateTime": iso(when),
        "primarySource": True,
    }
    if status == "not-done":
        resource["statusReason"] = {"text": "Patient declined"}
    return resource


def procedure(
    scenario: str, index: int, patient: str, code: str, display: str, when: datetime, *, status: str = "completed"
) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": fixture_id(scenario, index),
        "status": status,
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": _patient(patient),
        "performedDateTime": iso(when),
    }


ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def drug_allergy(
    scenario: str,
    index: int,
    patient: str,
    rxnorm_ingredient: str,
    name: str,
    recorded: datetime,
    *,
    verification: str = "confirmed",
    reaction: str = "hives",
) -> dict[str, Any]:
    """A drug allergy coded by its RxNorm ingredient (as US Core allows), with its reaction."""
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": fixture_id(scenario, index),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": verification}]},
        "type": "allergy",
        "category": ["medication"],
        "criticality": "low",
        "code": {"coding": [{"system": RXNORM, "code": rxnorm_ingredient, "display": name}], "text": name},
        "patient": _patient(patient),
        "recordedDate": iso(recorded),
        "reaction": [{"manifestation": [{"text": reaction}]}],
    }
    if verification == "entered-in-error":
        del resource["clinicalStatus"]
    return resource


# drug allergies a chart may carry: RxNorm ingredient, name, reaction
DRUG_ALLERGIES = [
    ("723", "amoxicillin", "hives"),
    ("2670", "codeine", "vomiting"),
    ("10180", "sulfamethoxazole", "rash"),
    ("7984", "penicillin V", "hives"),
]


def allergy_noise(scenario: str, index: int, patient: str, turn: int, now: datetime) -> list[dict[str, Any]]:
    """A drug allergy on a third of the tasks, a refuted one (a negative challenge) on another third."""
    code, name, reaction = DRUG_ALLERGIES[(turn // 3) % len(DRUG_ALLERGIES)]
    recorded = now - timedelta(days=400 + 37 * (turn % 20))
    if turn % 3 == 0:
        return [drug_allergy(scenario, index, patient, code, name, recorded, reaction=reaction)]
    if turn % 3 == 1:
        return [
            drug_allergy(
                scenario,
                index,
                patient,
                code,
                name,
                recorded,
                verification="refuted",
                reaction=f"{reaction} (later refuted: tolerated a supervised challenge)",
            )
        ]
    return []
