"""The Patient compartment: which resources belong to a patient, for ``GET /Patient/{id}/{type}`` and
``$everything``.

Membership follows the FHIR R4 CompartmentDefinition ``patient``
(http://hl7.org/fhir/R4/compartmentdefinition-patient.html) for the resource types this server searches:
a resource is in Patient/x's compartment when one of the listed reference parameters points at Patient/x.
Only parameters this server indexes count (``PARAMS``); the others in the definition (recorder, asserter,
performer, payee, author) are listed in ``NOT_INDEXED`` so the CapabilityStatement can say so.
"""

from __future__ import annotations

from typing import Any

from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search_params import PARAMS, params_for

COMPARTMENT_DEFINITION = "http://hl7.org/fhir/CompartmentDefinition/patient"

# R4 CompartmentDefinition/patient, the resource types of PARAMS: type -> its inclusion parameters.
# Medication, Organization and Practitioner are not in the Patient compartment. Patient itself is in by
# ``link``; here Patient/x's compartment holds Patient x.
_DEFINITION: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "CarePlan": ("patient", "performer"),
    "Claim": ("patient", "payee"),
    "Condition": ("patient", "asserter"),
    "DiagnosticReport": ("subject",),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("patient",),
    "ExplanationOfBenefit": ("patient", "payee"),
    "Goal": ("patient",),
    "ImagingStudy": ("patient",),
    "Immunization": ("patient",),
    "MedicationAdministration": ("patient", "performer", "subject"),
    "MedicationRequest": ("subject",),
    "Observation": ("subject", "performer"),
    "Procedure": ("patient", "performer"),
    "ServiceRequest": ("subject", "performer", "requester"),
}

# type -> the inclusion parameters this server indexes (what membership is decided by here)
PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    rtype: tuple(name for name in names if name in params_for(rtype))
    for rtype, names in _DEFINITION.items()
    if rtype in PARAMS
}
NOT_INDEXED: dict[str, tuple[str, ...]] = {
    rtype: tuple(name for name in names if name not in PATIENT_COMPARTMENT[rtype])
    for rtype, names in _DEFINITION.items()
    if rtype in PATIENT_COMPARTMENT
}
# types a compartment resource may reference that are outside every patient's compartment
SHARED_TYPES = tuple(sorted(t for t in PARAMS if t not in PATIENT_COMPARTMENT and t != "Patient"))


def check_compartment(compartment: str) -> None:
    """A 400 unless ``compartment`` is one this server searches (Patient)."""
    if compartment != "Patient":
        raise FhirError(
            400, f"compartment searches are supported on Patient only (GET /Patient/<id>/<type>), not on {compartment}"
        )


def compartment_params(resource_type: str) -> tuple[str, ...]:
    """The parameters that put ``resource_type`` in the Patient compartment, or a 400 naming the types."""
    params = PATIENT_COMPARTMENT.get(resource_type)
    if not params:
        raise FhirError(
            400,
            f"{resource_type} is not in the Patient compartment of this server; compartment "
            f"types: {', '.join(sorted(['Patient', *PATIENT_COMPARTMENT]))}",
        )
    return params


def compartment_condition(resource_type: str, patient_id: str) -> tuple[str, list[Any]]:
    """SQL over ``resource r``: r is in Patient/<patient_id>'s compartment (``Patient``: r is that patient)."""
    if resource_type == "Patient":
        return "r.id = ?", [patient_id]
    params = compartment_params(resource_type)
    marks = ",".join("?" * len(params))
    return (
        f"r.rid IN (SELECT rid FROM idx_ref WHERE type = ? AND param IN ({marks}) AND ref = ?)",
        [resource_type, *params, f"Patient/{patient_id}"],
    )


def members_sql(patient_id: str | None) -> tuple[str, list[Any]]:
    """SQL selecting the row ids of one patient's compartment (every patient's, ``None``), Patients included."""
    parts = [
        "SELECT rid FROM resource WHERE type = 'Patient' AND deleted = 0"
        + (" AND id = ?" if patient_id is not None else "")
    ]
    args: list[Any] = [patient_id] if patient_id is not None else []
    for rtype, params in PATIENT_COMPARTMENT.items():
        marks = ",".join("?" * len(params))
        match = "ref = ?" if patient_id is not None else "ref LIKE 'Patient/%'"
        parts.append(f"SELECT rid FROM idx_ref WHERE type = ? AND param IN ({marks}) AND {match}")
        args += [rtype, *params, *([f"Patient/{patient_id}"] if patient_id is not None else [])]
    return " UNION ".join(parts), args
