"""Whether a resource belongs to one patient, and whether a search is limited to one patient: the limits a
``patient/`` scope puts on an access token (SMART: a token for patient A never reaches patient B's data)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

# the resource types of the FHIR R4 Patient CompartmentDefinition: data about one patient, which must
# reference that patient (other types, e.g. Practitioner or Medication, are shared and reference none)
COMPARTMENT_TYPES = frozenset(
    {
        "Account",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "ChargeItem",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "Communication",
        "CommunicationRequest",
        "Composition",
        "Condition",
        "Consent",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "Encounter",
        "EnrollmentRequest",
        "EpisodeOfCare",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "Group",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "Invoice",
        "List",
        "MeasureReport",
        "Media",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "MolecularSequence",
        "NutritionOrder",
        "Observation",
        "Patient",
        "Person",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchSubject",
        "RiskAssessment",
        "Schedule",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "SupplyRequest",
        "VisionPrescription",
    }
)
# search parameters that name the patient a search is about
PATIENT_SEARCH_PARAMS = ("patient", "subject")
_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$")


def patient_references(resource: Any) -> Iterator[str]:
    """The ids of every ``Patient/<id>`` reference anywhere in a resource (contained and nested included)."""
    if isinstance(resource, dict):
        for key, value in resource.items():
            if key == "reference" and isinstance(value, str):
                match = _PATIENT_REFERENCE.search(value)
                if match:
                    yield match.group(1)
            elif isinstance(value, (dict, list)):
                yield from patient_references(value)
    elif isinstance(resource, list):
        for item in resource:
            yield from patient_references(item)


def outside_compartment(resource: dict[str, Any], patient_id: str) -> str | None:
    """None when the resource is this patient's (or shared data referencing no patient), else why not:
    the Patient itself must be this patient; every Patient reference must be to this patient; and a
    compartment type (an Observation, an Encounter, ...) must reference this patient."""
    resource_type = resource.get("resourceType")
    label = f"{resource_type}/{resource.get('id')}" if resource.get("id") else f"this {resource_type}"
    if resource_type == "Patient":
        return None if resource.get("id") == patient_id else f"{label} is not the patient in context"
    others = sorted(set(patient_references(resource)) - {patient_id})
    if others:
        return f"{label} refers to Patient/{others[0]}, not the patient in context"
    if resource_type in COMPARTMENT_TYPES and patient_id not in set(patient_references(resource)):
        return f"{label} does not refer to the patient in context"
    return None


def search_limited_to(resource_type: str, params: Sequence[tuple[str, str]], patient_id: str) -> bool:
    """Does the search select only this patient's data (``patient=`` or ``subject=`` naming only them; for
    Patient, ``_id``)? Other patients' resources are also checked in the answer; this refuses a broad search
    before it runs."""
    names = ("_id",) if resource_type == "Patient" else PATIENT_SEARCH_PARAMS
    for name, value in params:
        base = name.split(":", 1)[0]
        if (
            base in names
            and value
            and all(_names_patient(v, patient_id, bare_id=base == "_id") for v in value.split(","))
        ):
            return True
    return False


def _names_patient(value: str, patient_id: str, *, bare_id: bool) -> bool:
    if bare_id or "/" not in value:
        return value == patient_id
    match = _PATIENT_REFERENCE.search(value)
    return bool(match) and match.group(1) == patient_id  # type: ignore[union-attr]
