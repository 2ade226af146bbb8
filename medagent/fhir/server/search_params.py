"""Which search parameters each resource type supports, and the index values a resource yields.

Definitions follow the FHIR R4 search parameter registry (names, types, element paths) for the
parameters agents and graders need. A path is dotted; choice types are listed as alternatives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from medagent.fhir.paths import values_at
from medagent.fhir.server.values import date_range, normalize_string

Kind = Literal["token", "reference", "date", "string", "quantity", "number"]


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: Kind
    paths: tuple[str, ...]
    targets: tuple[str, ...] = field(default=())
    description: str = ""


def _p(name: str, kind: Kind, *paths: str, targets: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name, kind, paths, targets)


_SUBJECT = ("subject",)
_PATIENT_BY_SUBJECT = (
    _p("patient", "reference", "subject", targets=("Patient",)),
    _p("subject", "reference", "subject"),
    _p("encounter", "reference", "encounter", targets=("Encounter",)),
)

PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Patient": (
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("birthdate", "date", "birthDate"),
        _p("death-date", "date", "deceasedDateTime"),
        _p("gender", "token", "gender"),
        _p("identifier", "token", "identifier"),
        _p("address-city", "string", "address.city"),
        _p("address-postalcode", "string", "address.postalCode"),
        _p("general-practitioner", "reference", "generalPractitioner"),
    ),
    "Observation": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("date", "date", "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
        _p("status", "token", "status"),
        _p("value-quantity", "quantity", "valueQuantity"),
        _p("value-concept", "token", "valueCodeableConcept"),
        _p("component-code", "token", "component.code"),
        _p("component-value-quantity", "quantity", "component.valueQuantity"),
        _p("combo-code", "token", "code", "component.code"),
        _p("combo-value-quantity", "quantity", "valueQuantity", "component.valueQuantity"),
        _p("identifier", "token", "identifier"),
        _p("based-on", "reference", "basedOn"),
    ),
    "Condition": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("onset-date", "date", "onsetDateTime", "onsetPeriod"),
        _p("abatement-date", "date", "abatementDateTime", "abatementPeriod"),
        _p("recorded-date", "date", "recordedDate"),
        _p("identifier", "token", "identifier"),
    ),
    "MedicationRequest": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "medicationCodeableConcept"),
        _p("medication", "reference", "medicationReference", targets=("Medication",)),
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("authoredon", "date", "authoredOn"),
        _p("requester", "reference", "requester"),
        _p("identifier", "token", "identifier"),
        _p("category", "token", "category"),
    ),
    "Medication": (
        _p("code", "token", "code"),
        _p("identifier", "token", "identifier"),
    ),
    "MedicationAdministration": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "medicationCodeableConcept"),
        _p("status", "token", "status"),
        _p("effective-time", "date", "effectiveDateTime", "effectivePeriod"),
        _p("identifier", "token", "identifier"),
    ),
    "Immunization": (
        _p("patient", "reference", "patient", targets=("Patient",)),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
        _p("vaccine-code", "token", "vaccineCode"),
        _p("date", "date", "occurrenceDateTime"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
    ),
    "Procedure": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "code"),
        _p("date", "date", "performedDateTime", "performedPeriod"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
    ),
    "Encounter": (
        _p("patient", "reference", "subject", targets=("Patient",)),
        _p("subject", "reference", "subject"),
        _p("class", "token", "class"),
        _p("type", "token", "type"),
        _p("date", "date", "period"),
        _p("status", "token", "status"),
        _p("participant", "reference", "participant.individual"),
        _p("practitioner", "reference", "participant.individual", targets=("Practitioner",)),
        _p("service-provider", "reference", "serviceProvider", targets=("Organization",)),
        _p("reason-code", "token", "reasonCode"),
        _p("identifier", "token", "identifier"),
    ),
    "DiagnosticReport": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("date", "date", "effectiveDateTime", "effectivePeriod"),
        _p("issued", "date", "issued"),
        _p("status", "token", "status"),
        _p("result", "reference", "result", targets=("Observation",)),
        _p("identifier", "token", "identifier"),
    ),
    "AllergyIntolerance": (
        _p("patient", "reference", "patient", targets=("Patient",)),
        _p("code", "token", "code"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("category", "token", "category"),
        _p("criticality", "token", "criticality"),
        _p("type", "token", "type"),
        _p("date", "date", "recordedDate"),
        _p("identifier", "token", "identifier"),
    ),
    "CarePlan": (
        *_PATIENT_BY_SUBJECT,
        _p("category", "token", "category"),
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("date", "date", "period"),
        _p("condition", "reference", "addresses", targets=("Condition",)),
        _p("activity-code", "token", "activity.detail.code"),
        _p("identifier", "token", "identifier"),
    ),
    "ServiceRequest": (
        *_PATIENT_BY_SUBJECT,
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("authored", "date", "authoredOn"),
        _p("occurrence", "date", "occurrenceDateTime", "occurrencePeriod"),
        _p("requester", "reference", "requester"),
        _p("identifier", "token", "identifier"),
    ),
    "DocumentReference": (
        _p("patient", "reference", "subject", targets=("Patient",)),
        _p("subject", "reference", "subject"),
        _p("type", "token", "type"),
        _p("category", "token", "category"),
        _p("date", "date", "date"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
    ),
    "Composition": (
        _p("patient", "reference", "subject", targets=("Patient",)),
        _p("subject", "reference", "subject"),
        _p("type", "token", "type"),
        _p("category", "token", "category"),
        _p("date", "date", "date"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
        _p("title", "string", "title"),
        _p("section", "token", "section.code"),
        _p("entry", "reference", "section.entry"),
    ),
    "Practitioner": (
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("identifier", "token", "identifier"),
    ),
    "Organization": (
        _p("name", "string", "name"),
        _p("identifier", "token", "identifier"),
        _p("type", "token", "type"),
    ),
    "Goal": (
        _p("patient", "reference", "subject", targets=("Patient",)),
        _p("subject", "reference", "subject"),
        _p("lifecycle-status", "token", "lifecycleStatus"),
    ),
    "ImagingStudy": (
        _p("patient", "reference", "subject", targets=("Patient",)),
        _p("subject", "reference", "subject"),
        _p("started", "date", "started"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
    ),
    "Claim": (
        _p("patient", "reference", "patient", targets=("Patient",)),
        _p("created", "date", "created"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
    ),
    "ExplanationOfBenefit": (
        _p("patient", "reference", "patient", targets=("Patient",)),
        _p("created", "date", "created"),
        _p("status", "token", "status"),
        _p("identifier", "token", "identifier"),
    ),
}

COMMON_PARAMS = ("_id", "_lastUpdated")
RESULT_PARAMS = (
    "_sort",
    "_count",
    "_offset",
    "_summary",
    "_total",
    "_include",
    "_revinclude",
    "_elements",
    "_format",
    "_pretty",
)


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return {p.name: p for p in PARAMS.get(resource_type, ())}


@dataclass
class IndexRows:
    """Index rows of one resource, ready for executemany."""

    token: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    reference: list[tuple[str, str]] = field(default_factory=list)
    date: list[tuple[str, float, float]] = field(default_factory=list)
    string: list[tuple[str, str, str]] = field(default_factory=list)
    quantity: list[tuple[str, float, str | None, str | None, str | None]] = field(default_factory=list)


def index_resource(resource: dict[str, Any]) -> IndexRows:
    """Compute every index row a resource contributes, per its type's search parameters."""
    rows = IndexRows()
    for param in PARAMS.get(resource["resourceType"], ()):
        for path in param.paths:
            for value in values_at(resource, path):
                _add(rows, param, value)
    return rows


def _add(rows: IndexRows, param: SearchParam, value: Any) -> None:
    name = param.name
    if param.kind == "token":
        rows.token.extend((name, s, c, t) for s, c, t in token_values(value))
    elif param.kind == "reference":
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            rows.reference.append((name, normalize_reference(value["reference"])))
    elif param.kind == "date":
        span = _date_span(value)
        if span is not None:
            rows.date.append((name, *span))
    elif param.kind == "string":
        for text in _string_values(value):
            rows.string.append((name, normalize_string(text), text))
    elif param.kind == "quantity":
        if isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
            rows.quantity.append(
                (name, float(value["value"]), value.get("system"), value.get("code"), value.get("unit"))
            )


def token_values(value: Any) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, text) triples of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str):
        yield None, value, None
    elif isinstance(value, dict):
        if "coding" in value or "text" in value and "value" not in value:
            text = value.get("text")
            for coding in value.get("coding", []):
                yield coding.get("system"), coding.get("code"), coding.get("display") or text
            if text and not value.get("coding"):
                yield None, None, text
        elif "value" in value and "code" not in value:
            type_text = (value.get("type") or {}).get("text")
            yield value.get("system"), value.get("value"), type_text
        else:
            yield value.get("system"), value.get("code"), value.get("display")


def normalize_reference(reference: str, local_base: str | None = None) -> str:
    """``Patient/1/_history/2`` -> ``Patient/1``; an absolute URL keeps its base (a resource on another
    server is not the local one of the same id) unless it is ``local_base``, this server's base URL."""
    plain = reference.split("/_history/")[0].rstrip("/")
    if _ABSOLUTE.match(plain):
        if local_base and plain.startswith(local_base.rstrip("/") + "/"):
            plain = plain[len(local_base.rstrip("/")) + 1 :]
        else:
            return plain
    parts = plain.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _date_span(value: Any) -> tuple[float, float] | None:
    try:
        if isinstance(value, str):
            return date_range(value)
        if isinstance(value, dict) and ("start" in value or "end" in value):
            lo = date_range(value["start"])[0] if value.get("start") else -math.inf
            hi = date_range(value["end"])[1] if value.get("end") else math.inf
            return lo, hi
    except (ValueError, OverflowError):
        return None
    return None


def _string_values(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in (
            "text",
            "family",
            "given",
            "prefix",
            "suffix",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ):
            item = value.get(key)
            if isinstance(item, str):
                yield item
            elif isinstance(item, list):
                yield from (v for v in item if isinstance(v, str))
