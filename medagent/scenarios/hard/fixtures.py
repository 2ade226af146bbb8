"""Setup resources of the hard tier: a namesake patient, allergies, prior orders, vitals and clinical notes.

Shaped like the data around them (Synthea's identifiers, the write tools' DocumentReference notes) and
with deterministic ids (``identity.fixture_id``); the runner PUTs them before the agent starts.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from medagent.scenarios.chart import Chart
from medagent.scenarios.clock import iso
from medagent.scenarios.codes import LOINC, OBSERVATION_CATEGORY, RXNORM, SNOMED, UCUM
from medagent.scenarios.identity import fixture_id

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN_SYSTEM = "http://hospital.smarthealthit.org"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
NOTE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
PROGRESS_NOTE = ("11506-3", "Progress note")
NOTE_TEXT_LIMIT = 200  # the tools show a note's first 200 characters


def decoy_mrn(scenario: str) -> str:
    """The namesake's MRN: UUID-shaped like Synthea's, derived from the scenario id."""
    return fixture_id(scenario, 99)


def namesake_patient(scenario: str, chart: Chart, birth_date: str) -> dict[str, Any]:
    """Another patient with the same given and family name, another birth date and MRN."""
    return {
        "resourceType": "Patient",
        "id": fixture_id(scenario, 0),
        "identifier": [
            {
                "type": {
                    "coding": [{"system": V2_0203, "code": "MR", "display": "Medical Record Number"}],
                    "text": "Medical Record Number",
                },
                "system": MRN_SYSTEM,
                "value": decoy_mrn(scenario),
            }
        ],
        "name": [{"use": "official", "family": chart.family, "given": chart.given.split()}],
        "gender": chart.gender,
        "birthDate": birth_date,
    }


def weight_observation(scenario: str, index: int, patient: str, kg: float, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": fixture_id(scenario, index),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body Weight"}], "text": "Body Weight"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": iso(when),
        "issued": iso(when),
        "valueQuantity": {"value": kg, "unit": "kg", "system": UCUM, "code": "kg"},
    }


def allergy(
    scenario: str, index: int, patient: str, code: str, display: str, category: str, recorded: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": fixture_id(scenario, index),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]},
        "type": "allergy",
        "category": [category],
        "criticality": "high" if category == "medication" else "low",
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "patient": {"reference": f"Patient/{patient}"},
        "recordedDate": iso(recorded),
    }


def medication_request(
    scenario: str, index: int, patient: str, code: str, display: str, status: str, authored: datetime, dosage: str
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": fixture_id(scenario, index),
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


def progress_note(scenario: str, index: int, patient: str, text: str, when: datetime, author: str) -> dict[str, Any]:
    """A plain-text progress note like the ones add_note writes (the tools show its first 200 characters)."""
    if len(text) > NOTE_TEXT_LIMIT:
        raise ValueError(f"note text of {scenario} is {len(text)} characters; the tools show {NOTE_TEXT_LIMIT}")
    code, name = PROGRESS_NOTE
    return {
        "resourceType": "DocumentReference",
        "id": fixture_id(scenario, index),
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
