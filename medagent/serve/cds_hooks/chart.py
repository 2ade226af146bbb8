"""The part of a patient's chart a hook reads (from prefetch or the CDS client's FHIR server), with the few
readings the rules share: active records, the latest result of a set of codes, numeric values, ages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medagent.tools.compact import number
from medagent.vocabulary import parse_instant

Resource = dict[str, Any]
INACTIVE_VERIFICATION = ("refuted", "entered-in-error")


@dataclass
class Chart:
    patient_id: str
    patient: Resource | None = None
    conditions: list[Resource] = field(default_factory=list)
    observations: list[Resource] = field(default_factory=list)
    medication_requests: list[Resource] = field(default_factory=list)
    allergies: list[Resource] = field(default_factory=list)
    medications: dict[str, Resource] = field(default_factory=dict)  # "Medication/id" -> Medication


@dataclass(frozen=True)
class Reading:
    """One numeric result: the Observation it came from (cited as ``reference``), code, value, unit, time."""

    reference: str
    code: str
    label: str
    value: float
    unit: str
    when: datetime
    observation: Resource


def reference(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def coded(concept: dict[str, Any] | None) -> str:
    """A CodeableConcept as text for a card: its text or first display, else its first code."""
    if not concept:
        return "(not coded)"
    codings = concept.get("coding") or []
    return (
        concept.get("text")
        or next((c["display"] for c in codings if c.get("display")), None)
        or next((c["code"] for c in codings if c.get("code")), "(not coded)")
    )


def status_code(resource: Resource, element: str) -> str | None:
    value = resource.get(element)
    if isinstance(value, dict):
        return next((c.get("code") for c in value.get("coding") or [] if c.get("code")), None)
    return value if isinstance(value, str) else None


def is_active(resource: Resource) -> bool:
    """An active Condition or AllergyIntolerance (clinicalStatus absent counts as active), not refuted or an error."""
    if status_code(resource, "verificationStatus") in INACTIVE_VERIFICATION:
        return False
    return status_code(resource, "clinicalStatus") in (None, "active", "recurrence", "relapse")


def is_active_order(resource: Resource) -> bool:
    return resource.get("status") in ("active", "on-hold")


def effective(resource: Resource) -> datetime | None:
    for key in ("effectiveDateTime", "effectiveInstant", "issued"):
        if isinstance(resource.get(key), str):
            return _instant(resource[key])
    period = resource.get("effectivePeriod") or {}
    return _instant(period["start"]) if isinstance(period.get("start"), str) else None


def onset(resource: Resource) -> datetime | None:
    for key in ("onsetDateTime", "recordedDate"):
        if isinstance(resource.get(key), str):
            return _instant(resource[key])
    period = resource.get("onsetPeriod") or {}
    return _instant(period["start"]) if isinstance(period.get("start"), str) else None


def _instant(text: str) -> datetime | None:
    try:
        return parse_instant(text)
    except ValueError:
        return None


def readings(observations: Iterable[Resource], codes: Iterable[str]) -> list[Reading]:
    """Numeric results of the given LOINC codes (top-level or component), newest first; final/amended/corrected."""
    wanted = set(codes)
    found = []
    for obs in observations:
        if obs.get("status") not in (None, "final", "amended", "corrected", "preliminary"):
            continue
        when = effective(obs)
        if when is None:
            continue
        parts = [obs, *(obs.get("component") or [])]
        for part in parts:
            code = next(
                (c["code"] for c in (part.get("code") or {}).get("coding") or [] if c.get("code") in wanted), None
            )
            quantity = part.get("valueQuantity") or {}
            if code is None or not isinstance(quantity.get("value"), (int, float)):
                continue
            found.append(
                Reading(
                    reference(obs),
                    code,
                    coded(part.get("code")),
                    float(quantity["value"]),
                    quantity.get("unit") or quantity.get("code") or "",
                    when,
                    obs,
                )
            )
    return sorted(found, key=lambda r: r.when, reverse=True)


def latest(observations: Iterable[Resource], codes: Iterable[str]) -> Reading | None:
    found = readings(observations, codes)
    return found[0] if found else None


def age_on(patient: Resource | None, moment: datetime) -> int | None:
    birth = _instant(patient.get("birthDate", "")) if patient else None
    if birth is None:
        return None
    return moment.year - birth.year - ((moment.month, moment.day) < (birth.month, birth.day))


def short_date(moment: datetime) -> str:
    return moment.date().isoformat()


def describe(reading: Reading) -> str:
    """'Creatinine 1.09 mg/dL on 2021-03-12 (Observation/x)'."""
    return f"{reading.label} {number(reading.value)} {reading.unit} on {short_date(reading.when)} ({reading.reference})"
