"""CDS Hooks 2.0 request bodies shaped like the specification's examples (Calling a CDS Service, the
patient-view / order-select / order-sign hook pages), and the Synthea facts the tests expect (from the bundles)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fhir.fhir_expect import dataset

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
USER = "Practitioner/example"

# patients of the packaged bundles (family name -> id), picked for what their charts hold
GRANT = "689892bd-dcbe-41fc-8651-38a1d0893854"  # 1965 F: hypertension, hyperlipidemia; no drug allergy
SCHIMMEL = "148f10e1-2182-4297-ac1f-39bb9eca6f1a"  # 1974 F: diabetes, an active metformin order
LARSON = "2a86d65b-06c7-4100-9d43-948921b49605"  # 1951 M: coronary heart disease, hyperlipidemia
MANTE = "54d0aacd-9b70-4a62-91ac-af86c9408ae8"  # 1954 M: hypertension, hyperlipidemia
CONN = "5f6d256f-fc32-4b10-ba9c-51aba830cfa4"  # 1942 F, deceased: diabetes, CKD-free

AMOXICILLIN = ("308182", "Amoxicillin 250 MG Oral Capsule")
METFORMIN_ER = ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet")
METFORMIN_IR = ("861007", "Metformin hydrochloride 500 MG Oral Tablet")
SIMVASTATIN = ("312961", "Simvastatin 20 MG Oral Tablet")


def hook_request(hook: str, context: dict[str, Any], *, fhir_server: str | None, token: str | None,
                 prefetch: dict[str, Any] | None = None) -> dict[str, Any]:
    """The specification's request example: hookInstance, fhirServer, hook, fhirAuthorization, context, prefetch."""
    body: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": hook, "context": context}
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if token is not None:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "user/Patient.read user/Observation.read user/Condition.read "
                                              "user/MedicationRequest.read user/AllergyIntolerance.read",
                                     "subject": "medagent-cds"}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def patient_view_context(patient: str) -> dict[str, Any]:
    return {"userId": USER, "patientId": patient, "encounterId": "89284"}


def draft_medication(patient: str, drug: tuple[str, str], draft_id: str | None = None) -> dict[str, Any]:
    """A MedicationRequest in draft status, as in the order-sign hook's R4 example."""
    code, display = drug
    return {"resourceType": "MedicationRequest", "id": draft_id or f"draft-{uuid.uuid4().hex[:8]}", "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}],
                                          "text": display},
            "subject": {"reference": f"Patient/{patient}"},
            "dosageInstruction": [{"text": "as directed"}]}


def order_context(patient: str, drafts: list[dict[str, Any]], selections: list[str] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": USER, "patientId": patient, "encounterId": "89284",
                               "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                               "entry": [{"resource": d} for d in drafts]}}
    if selections is not None:
        context["selections"] = selections
    return context


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")


def lab(patient: str, code: str, display: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def penicillin_allergy(patient: str) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "confirmed"}]},
            "type": "allergy", "category": ["medication"], "criticality": "high",
            "code": {"coding": [{"system": SNOMED, "code": "91936005", "display": "Allergy to penicillin"}],
                     "text": "Allergy to penicillin"},
            "patient": {"reference": f"Patient/{patient}"}, "recordedDate": "2015-03-02"}


# ---- facts from the bundles ------------------------------------------------------------------

def chart_of(patient: str, rtype: str) -> list[dict[str, Any]]:
    """A patient's resources of one type as a FHIR server holds them (bundle references resolved to Type/id)."""
    return dataset().of_type(rtype, patient)


def active_orders(patient: str) -> list[dict[str, Any]]:
    return [r for r in chart_of(patient, "MedicationRequest") if r["status"] == "active"]


def active_conditions(patient: str) -> list[dict[str, Any]]:
    return [r for r in chart_of(patient, "Condition")
            if r.get("clinicalStatus", {}).get("coding", [{}])[0].get("code") == "active"]


def latest_result(patient: str, code: str) -> dict[str, Any]:
    found = [r for r in chart_of(patient, "Observation") if r["code"]["coding"][0]["code"] == code]
    return max(found, key=lambda r: r["effectiveDateTime"])
