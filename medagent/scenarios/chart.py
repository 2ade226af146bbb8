"""A patient's chart read straight from the Synthea bundle JSON: the ground truth of every scenario.

Deliberately independent of the FHIR server, the client and the agent's tools (a test asserts
that importing the generators never loads ``medagent.fhir``, ``medagent.tools`` or
``medagent.agent``): if those layers had a bug, the ground truth must not share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from medagent.scenarios.clock import parse_instant


@dataclass(frozen=True)
class Coded:
    system: str
    code: str
    display: str


@dataclass(frozen=True)
class ConditionFact:
    id: str
    code: Coded
    onset: datetime
    abatement: datetime | None


@dataclass(frozen=True)
class MedicationFact:
    id: str
    code: Coded
    status: str
    authored: datetime
    requester: str | None
    reasons: tuple[str, ...]  # Condition ids


@dataclass(frozen=True)
class ImmunizationFact:
    id: str
    code: Coded
    when: datetime


@dataclass(frozen=True)
class ProcedureFact:
    id: str
    code: Coded
    when: datetime


@dataclass(frozen=True)
class EncounterFact:
    id: str
    klass: str  # AMB, EMER, IMP ...
    code: Coded
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class AllergyFact:
    id: str
    code: Coded
    category: tuple[str, ...]
    recorded: datetime | None


@dataclass(frozen=True)
class ObservationFact:
    """One numeric value; a blood-pressure panel yields one fact per component."""

    id: str
    code: str
    display: str
    when: datetime
    value: float
    unit: str
    panel: str | None = None


@dataclass
class Chart:
    patient_id: str
    mrn: str
    given: str
    family: str
    birth_date: date
    gender: str
    deceased: datetime | None
    conditions: list[ConditionFact] = field(default_factory=list)
    medications: list[MedicationFact] = field(default_factory=list)
    immunizations: list[ImmunizationFact] = field(default_factory=list)
    observations: list[ObservationFact] = field(default_factory=list)
    practitioners: dict[str, str] = field(default_factory=dict)  # id -> "Given Family"
    encounter_starts: list[datetime] = field(default_factory=list)
    procedures: list[ProcedureFact] = field(default_factory=list)
    encounters: list[EncounterFact] = field(default_factory=list)
    allergies: list[AllergyFact] = field(default_factory=list)
    record_end: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}"

    @property
    def reference(self) -> str:
        return f"Patient/{self.patient_id}"

    @property
    def record_start(self) -> datetime:
        return min(self.encounter_starts)

    def values(self, code: str) -> list[ObservationFact]:
        """Observations of one code, oldest first."""
        return sorted((o for o in self.observations if o.code == code), key=lambda o: (o.when, o.id))

    def condition(self, condition_id: str) -> ConditionFact | None:
        return next((c for c in self.conditions if c.id == condition_id), None)

    def orders_by_code(self) -> dict[str, list[MedicationFact]]:
        """Medication orders grouped by drug code (codes in order), each group oldest first."""
        grouped: dict[str, list[MedicationFact]] = {}
        for med in sorted(self.medications, key=lambda m: (m.authored, m.id)):
            grouped.setdefault(med.code.code, []).append(med)
        return dict(sorted(grouped.items()))


def ref_id(reference: str) -> str:
    """'urn:uuid:abc' or 'Patient/abc' -> 'abc'."""
    return reference.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def clean_display(text: str) -> str:
    """Synthea displays carry zero-width spaces in some LOINC names; strip them."""
    return " ".join(text.replace("\u200b", "").split())


def _first_coding(concept: dict[str, Any]) -> Coded:
    coding = concept["coding"][0]
    display = coding.get("display") or concept.get("text", "")
    return Coded(coding.get("system", ""), coding["code"], clean_display(display))


def _mrn(patient: dict[str, Any]) -> str:
    for identifier in patient.get("identifier", []):
        codes = {c.get("code") for c in identifier.get("type", {}).get("coding", [])}
        if "MR" in codes:
            return identifier["value"]
    return patient["id"]


def _person_name(resource: dict[str, Any]) -> tuple[str, str]:
    name = (resource.get("name") or [{}])[0]
    return " ".join(name.get("given", [])), name.get("family", "")


def _timestamps(resource: dict[str, Any]) -> Iterable[str]:
    for key in ("effectiveDateTime", "occurrenceDateTime", "authoredOn", "onsetDateTime", "recordedDate"):
        if key in resource:
            yield resource[key]
    for key in ("period", "performedPeriod", "billablePeriod"):
        span = resource.get(key) or {}
        yield from (span[k] for k in ("start", "end") if k in span)


def chart_from_bundle(bundle: dict[str, Any]) -> Chart:
    """Build the chart of the one patient in a Synthea transaction bundle."""
    resources = [entry["resource"] for entry in bundle.get("entry", [])]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    given, family = _person_name(patient)
    deceased = patient.get("deceasedDateTime")
    chart = Chart(
        patient_id=patient["id"],
        mrn=_mrn(patient),
        given=given,
        family=family,
        birth_date=date.fromisoformat(patient["birthDate"]),
        gender=patient.get("gender", "unknown"),
        deceased=parse_instant(deceased) if deceased else None,
    )
    latest: datetime | None = None
    for resource in resources:
        kind = resource["resourceType"]
        if kind in ("Claim", "ExplanationOfBenefit", "Patient", "Organization"):
            continue
        for stamp in _timestamps(resource):
            moment = parse_instant(stamp)
            latest = moment if latest is None or moment > latest else latest
        if kind == "Practitioner":
            first, last = _person_name(resource)
            chart.practitioners[resource["id"]] = f"{first} {last}".strip()
        elif kind == "Encounter":
            period = resource["period"]
            chart.encounter_starts.append(parse_instant(period["start"]))
            chart.encounters.append(
                EncounterFact(
                    resource["id"],
                    (resource.get("class") or {}).get("code", ""),
                    _first_coding(resource["type"][0]),
                    parse_instant(period["start"]),
                    parse_instant(period["end"]) if period.get("end") else None,
                )
            )
        elif kind == "Procedure":
            performed = resource.get("performedDateTime") or (resource.get("performedPeriod") or {}).get("start")
            if performed:
                chart.procedures.append(
                    ProcedureFact(resource["id"], _first_coding(resource["code"]), parse_instant(performed))
                )
        elif kind == "AllergyIntolerance":
            recorded = resource.get("recordedDate")
            chart.allergies.append(
                AllergyFact(
                    resource["id"],
                    _first_coding(resource["code"]),
                    tuple(resource.get("category", [])),
                    parse_instant(recorded) if recorded else None,
                )
            )
        elif kind == "Condition":
            abatement = resource.get("abatementDateTime")
            chart.conditions.append(
                ConditionFact(
                    resource["id"],
                    _first_coding(resource["code"]),
                    parse_instant(resource["onsetDateTime"]),
                    parse_instant(abatement) if abatement else None,
                )
            )
        elif kind == "MedicationRequest" and "medicationCodeableConcept" in resource:
            requester = resource.get("requester", {}).get("reference")
            chart.medications.append(
                MedicationFact(
                    resource["id"],
                    _first_coding(resource["medicationCodeableConcept"]),
                    resource["status"],
                    parse_instant(resource["authoredOn"]),
                    ref_id(requester) if requester else None,
                    tuple(ref_id(r["reference"]) for r in resource.get("reasonReference", [])),
                )
            )
        elif kind == "Immunization" and resource.get("status") == "completed":
            chart.immunizations.append(
                ImmunizationFact(
                    resource["id"],
                    _first_coding(resource["vaccineCode"]),
                    parse_instant(resource["occurrenceDateTime"]),
                )
            )
        elif kind == "Observation" and "effectiveDateTime" in resource:
            chart.observations.extend(_observation_facts(resource))
    chart.record_end = latest
    return chart


def _observation_facts(resource: dict[str, Any]) -> list[ObservationFact]:
    when = parse_instant(resource["effectiveDateTime"])
    code = _first_coding(resource["code"])
    facts = []
    quantity = resource.get("valueQuantity")
    if quantity and "value" in quantity:
        facts.append(
            ObservationFact(
                resource["id"],
                code.code,
                code.display,
                when,
                float(quantity["value"]),
                quantity.get("unit") or quantity.get("code", ""),
            )
        )
    for component in resource.get("component", []):
        quantity = component.get("valueQuantity")
        if quantity and "value" in quantity:
            part = _first_coding(component["code"])
            facts.append(
                ObservationFact(
                    resource["id"],
                    part.code,
                    part.display,
                    when,
                    float(quantity["value"]),
                    quantity.get("unit") or quantity.get("code", ""),
                    panel=code.code,
                )
            )
    return facts
