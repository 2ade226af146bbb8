"""Setup resources of the v3 hard tier, shaped like the data around them, with deterministic ids.

Allergies carry clinical and verification status, criticality, type and reaction; orders any status; notes any
LOINC note type; blood pressures are panels like Synthea's; conditions and encounters for namesakes.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from medagent.scenarios.clock import iso
from medagent.scenarios.codes import DIASTOLIC, LOINC, NOTE_TYPES, OBSERVATION_CATEGORY, RXNORM, SNOMED, SYSTOLIC, UCUM
from medagent.scenarios.hard.fixtures import ALLERGY_CLINICAL, ALLERGY_VERIFICATION, NOTE_CATEGORY, NOTE_TEXT_LIMIT
from medagent.scenarios.identity import fixture_id

BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
ENCOUNTER_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def drug_allergy(
    sid: str,
    index: int,
    patient: str,
    *,
    system: str,
    code: str,
    display: str,
    clinical: str,
    verification: str,
    criticality: str,
    kind: str,
    recorded: datetime,
    reaction: str | None = None,
) -> dict[str, Any]:
    """An AllergyIntolerance to a drug (``kind`` allergy or intolerance), with its statuses and reaction."""
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": fixture_id(sid, index),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": verification}]},
        "type": kind,
        "category": ["medication"],
        "criticality": criticality,
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "patient": {"reference": f"Patient/{patient}"},
        "recordedDate": iso(recorded),
    }
    if clinical != "active":
        resource["lastOccurrence"] = iso(recorded)
    if reaction:
        resource["reaction"] = [{"manifestation": [{"text": reaction}]}]
    return resource


def other_allergy(
    sid: str, index: int, patient: str, code: str, display: str, category: str, recorded: datetime
) -> dict[str, Any]:
    """A confirmed, active, low-criticality environmental or food allergy (SNOMED), like Synthea's own."""
    return {
        "resourceType": "AllergyIntolerance",
        "id": fixture_id(sid, index),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]},
        "type": "allergy",
        "category": [category],
        "criticality": "low",
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "patient": {"reference": f"Patient/{patient}"},
        "recordedDate": iso(recorded),
    }


def medication_order(
    sid: str,
    index: int,
    patient: str,
    code: str,
    display: str,
    status: str,
    authored: datetime,
    dosage: str,
    reason: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": fixture_id(sid, index),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": iso(authored),
        "dosageInstruction": [{"text": dosage}],
    }
    if reason:
        resource["reasonCode"] = [{"text": reason}]
    return resource


def blood_pressure(
    sid: str, index: int, patient: str, systolic: float, diastolic: float, when: datetime
) -> dict[str, Any]:
    """A blood pressure panel (LOINC 85354-9) with systolic and diastolic components in mm[Hg]."""

    def part(code: str, name: str, value: float) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "id": fixture_id(sid, index),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]}], "text": "Blood pressure"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": iso(when),
        "issued": iso(when),
        "component": [
            part(SYSTOLIC, "Systolic blood pressure", systolic),
            part(DIASTOLIC, "Diastolic blood pressure", diastolic),
        ],
    }


def lab_result(
    sid: str,
    index: int,
    patient: str,
    code: str,
    display: str,
    value: float,
    unit: str,
    when: datetime,
    *,
    status: str = "final",
    category: str = "laboratory",
) -> dict[str, Any]:
    """A lab (or vital) Observation in any unit and status (entered-in-error, amended ...)."""
    return {
        "resourceType": "Observation",
        "id": fixture_id(sid, index),
        "status": status,
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category, "display": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": iso(when),
        "issued": iso(when),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def clinical_note(
    sid: str, index: int, patient: str, kind: str, text: str, when: datetime, author: str
) -> dict[str, Any]:
    """A plain-text note (progress, nursing or telephone) like the ones add_note writes; at most 200 characters."""
    if len(text) > NOTE_TEXT_LIMIT:
        raise ValueError(f"note text of {sid} is {len(text)} characters; the tools show {NOTE_TEXT_LIMIT}")
    code, name = NOTE_TYPES[kind]
    return {
        "resourceType": "DocumentReference",
        "id": fixture_id(sid, index),
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "category": [{"coding": [{"system": NOTE_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "date": iso(when),
        "author": [{"display": author}],
        "description": name,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "title": name,
                    "creation": iso(when),
                    "data": base64.b64encode(text.encode()).decode(),
                }
            }
        ],
    }


def condition(sid: str, index: int, patient: str, code: str, display: str, onset: datetime) -> dict[str, Any]:
    """An active, confirmed problem-list Condition (SNOMED)."""
    return {
        "resourceType": "Condition",
        "id": fixture_id(sid, index),
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "onsetDateTime": iso(onset),
        "recordedDate": iso(onset),
    }


def encounter(
    sid: str, index: int, patient: str, klass: str, code: str, display: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """A finished Encounter (class AMB, EMER or IMP; type SNOMED)."""
    return {
        "resourceType": "Encounter",
        "id": fixture_id(sid, index),
        "status": "finished",
        "class": {"system": ENCOUNTER_CLASS, "code": klass},
        "type": [{"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}],
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": iso(start), "end": iso(end)},
    }
