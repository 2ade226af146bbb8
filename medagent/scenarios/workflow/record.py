"""A workflow task's record as a clinician reads it: the Synthea chart plus the resources the task's setup adds.

Ground truth of the workflow tier. Built from the chart (the bundle) and the setup's FHIR resources by code
that imports neither the client nor the tools. The clinician's reading rules live here once: a result
entered in error is no result; the same result from a second feed counts once; a result in other units is
converted; a result under a laboratory's local code (text only) is still that test; a cancelled or stopped
order is not a current medication; a refuted or entered-in-error diagnosis is no diagnosis; what only a note
says is read from the note.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medagent.scenarios.chart import Chart
from medagent.scenarios.clock import parse_instant
from medagent.scenarios.codes import LABS

INVALID_RESULT = ("entered-in-error", "cancelled")
NOT_DIAGNOSED = ("refuted", "entered-in-error")
LOCAL_LAB = "urn:oid:2.16.840.1.113883.19.5.99999.2"  # a laboratory's own code system (an example OID arc)
SECOND_FEED = "urn:oid:2.16.840.1.113883.19.5.99999.7"  # the identifier system of the reference laboratory's feed

# The local laboratory's catalogue: local code -> (LOINC it means, the text it carries, its unit)
LOCAL_CODES: dict[str, tuple[str, str, str]] = {
    "POC-A1C": ("4548-4", "Hemoglobin A1c, point of care", "%"),
    "EGFR-CKDEPI": ("33914-3", "eGFR (CKD-EPI), serum", "mL/min/{1.73_m2}"),
    "CREAT-S": ("38483-4", "Creatinine, serum", "umol/L"),
    "HGB-POC": ("718-7", "Hemoglobin, point of care", "g/dL"),
    "INR-POC": ("6301-6", "INR, point of care (fingerstick)", "{INR}"),
    "K-S": ("6298-4", "Potassium, serum", "mmol/L"),
    "FIT-STOOL": ("57905-2", "Fecal immunochemical test (FIT)", "{presence}"),
    "LDL-CALC": ("18262-6", "LDL cholesterol, calculated", "mg/dL"),
}

EXTRA_UNITS: dict[str, dict[str, float]] = {  # canonical unit factors for tests outside codes.LABS
    "6301-6": {"{INR}": 1.0, "INR": 1.0, "": 1.0},
    "14959-1": {"mg/g": 1.0, "mg/g{creat}": 1.0},
    "10230-1": {"%": 1.0},
    "33762-6": {"pg/mL": 1.0},
}


def canonical(code: str, value: float, unit: str) -> float | None:
    """The value in the test's canonical unit (codes.LABS), or None when the unit is not one we convert."""
    info = LABS.get(code)
    if info is None:
        factors = EXTRA_UNITS.get(code, {})
        factor = factors.get(unit)
        return None if factor is None else value * factor
    if unit == info.unit or unit.replace(" ", "") == info.unit.replace(" ", ""):
        return value
    factors = {u.lower(): f for u, f in info.unit_factors.items()}
    factor = factors.get(unit.lower())
    return None if factor is None else value * factor


@dataclass(frozen=True)
class Result:
    """One numeric result as recorded (status and unit as written)."""

    ref: str
    code: str  # the LOINC it means (a local code's LOINC from the catalogue)
    text: str
    when: datetime
    value: float
    unit: str
    status: str = "final"
    local: str | None = None  # the laboratory's local code when that is all the record carries

    @property
    def valid(self) -> bool:
        return self.status not in INVALID_RESULT


@dataclass(frozen=True)
class Reading:
    """One result as a clinician counts it: canonical value, and every record holding it (a second feed's copy)."""

    when: datetime
    value: float
    refs: tuple[str, ...]

    @property
    def ref(self) -> str:
        return self.refs[0]


@dataclass(frozen=True)
class Order:
    """A medication order."""

    ref: str
    code: str
    display: str
    status: str
    authored: datetime
    dosage: str = ""


@dataclass(frozen=True)
class ServiceOrder:
    ref: str
    code: str
    display: str
    status: str
    authored: datetime


@dataclass(frozen=True)
class Problem:
    ref: str
    code: str
    display: str
    onset: datetime
    abatement: datetime | None = None
    verification: str = "confirmed"


@dataclass(frozen=True)
class Note:
    ref: str
    when: datetime
    title: str
    text: str


@dataclass(frozen=True)
class Allergy:
    ref: str
    code: str
    display: str
    category: tuple[str, ...]
    verification: str = "confirmed"
    clinical: str = "active"

    @property
    def active_drug_allergy(self) -> bool:
        return "medication" in self.category and self.clinical == "active" and self.verification not in NOT_DIAGNOSED


@dataclass(frozen=True)
class Event:
    """A procedure or an immunization (status as recorded)."""

    ref: str
    code: str
    display: str
    when: datetime
    status: str = "completed"


@dataclass
class Record:
    """Everything a workflow task rests on, chart and setup together."""

    chart: Chart
    results: list[Result] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    service_orders: list[ServiceOrder] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    procedures: list[Event] = field(default_factory=list)
    immunizations: list[Event] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    coded: list[Result] = field(default_factory=list)  # results whose value is a coded finding (value 0)

    # ---------- the clinician's reading rules ----------

    def readings(self, code: str, until: datetime, since: datetime | None = None) -> list[Reading]:
        """Valid results of a test (its LOINC, a blood-pressure component, or a local code meaning it) up to
        ``until``, in the canonical unit, oldest first; a second feed's copy (same moment, same value) counts once."""
        groups: dict[tuple[datetime, float], list[str]] = {}
        for result in self.results:
            if result.code != code or not result.valid or result.when > until:
                continue
            if since is not None and result.when < since:
                continue
            value = canonical(code, result.value, result.unit)
            if value is None:
                raise ValueError(f"{result.ref}: unit {result.unit!r} of {code} is not convertible")
            key = (result.when, round(value, 3))
            groups.setdefault(key, []).append(result.ref)
        return [Reading(when, value, tuple(refs)) for (when, value), refs in sorted(groups.items())]

    def latest(self, code: str, until: datetime) -> Reading | None:
        found = self.readings(code, until)
        return found[-1] if found else None

    def active_orders(self, codes: Iterable[str], at: datetime) -> list[Order]:
        """Orders of these codes with status active, written by ``at``."""
        wanted = set(codes)
        return sorted(
            (o for o in self.orders if o.code in wanted and o.status == "active" and o.authored <= at),
            key=lambda o: (o.authored, o.ref),
        )

    def all_active_orders(self, at: datetime) -> list[Order]:
        return sorted(
            (o for o in self.orders if o.status == "active" and o.authored <= at), key=lambda o: (o.authored, o.ref)
        )

    def diagnoses(self, codes: Iterable[str], at: datetime) -> list[Problem]:
        """Diagnoses of these codes in force at ``at``: onset by then, not abated by then, not refuted."""
        wanted = set(codes)
        return [
            p
            for p in self.problems
            if p.code in wanted
            and p.onset <= at
            and (p.abatement is None or p.abatement > at)
            and p.verification not in NOT_DIAGNOSED
        ]

    def ever_diagnosed(self, codes: Iterable[str], at: datetime) -> list[Problem]:
        """Diagnoses of these codes recorded by ``at`` (resolved ones too), not refuted or entered in error."""
        wanted = set(codes)
        return [p for p in self.problems if p.code in wanted and p.onset <= at and p.verification not in NOT_DIAGNOSED]

    def problem_list(self, at: datetime) -> list[Problem]:
        """Every diagnosis in force at ``at`` (the active problem list)."""
        return sorted(
            (
                p
                for p in self.problems
                if p.onset <= at and (p.abatement is None or p.abatement > at) and p.verification not in NOT_DIAGNOSED
            ),
            key=lambda p: (p.onset, p.ref),
        )

    def drug_allergies(self) -> list[Allergy]:
        return [a for a in self.allergies if a.active_drug_allergy]

    def notes_until(self, at: datetime) -> list[Note]:
        return sorted((n for n in self.notes if n.when <= at), key=lambda n: n.when)

    def events(self, kind: str, codes: Iterable[str], until: datetime) -> list[Event]:
        """Completed procedures or immunizations of these codes up to ``until``, oldest first."""
        wanted = set(codes)
        pool = self.procedures if kind == "procedure" else self.immunizations
        return sorted(
            (e for e in pool if e.code in wanted and e.status == "completed" and e.when <= until), key=lambda e: e.when
        )


# ---------- building a record ----------


def record_of(chart: Chart, setup: Iterable[dict[str, Any]] = ()) -> Record:
    """The chart's facts, then the setup's resources parsed into the same facts."""
    record = Record(chart=chart)
    for fact in chart.observations:
        record.results.append(
            Result(f"Observation/{fact.id}", fact.code, fact.display, fact.when, fact.value, fact.unit)
        )
    for med in chart.medications:
        record.orders.append(
            Order(f"MedicationRequest/{med.id}", med.code.code, med.code.display, med.status, med.authored)
        )
    for condition in chart.conditions:
        record.problems.append(
            Problem(
                f"Condition/{condition.id}",
                condition.code.code,
                condition.code.display,
                condition.onset,
                condition.abatement,
            )
        )
    for procedure in chart.procedures:
        record.procedures.append(
            Event(f"Procedure/{procedure.id}", procedure.code.code, procedure.code.display, procedure.when)
        )
    for shot in chart.immunizations:
        record.immunizations.append(Event(f"Immunization/{shot.id}", shot.code.code, shot.code.display, shot.when))
    for allergy in chart.allergies:
        record.allergies.append(
            Allergy(f"AllergyIntolerance/{allergy.id}", allergy.code.code, allergy.code.display, allergy.category)
        )
    for resource in setup:
        add_resource(record, resource)
    return record


def _coding(concept: dict[str, Any]) -> tuple[str, str, str]:
    coding = (concept.get("coding") or [{}])[0]
    return coding.get("system", ""), coding.get("code", ""), coding.get("display") or concept.get("text", "")


def _status(concept: dict[str, Any] | None, default: str) -> str:
    if not concept:
        return default
    return (concept.get("coding") or [{}])[0].get("code", default)


def add_resource(record: Record, resource: dict[str, Any]) -> None:
    """One setup resource into the record (the types the workflow setups add)."""
    kind, ref = resource["resourceType"], f"{resource['resourceType']}/{resource['id']}"
    if kind == "Observation":
        system, code, text = _coding(resource["code"])
        local = None
        if system == LOCAL_LAB:
            local, code = code, LOCAL_CODES[code][0]
        when = parse_instant(resource["effectiveDateTime"])
        if "valueCodeableConcept" in resource:
            record.coded.append(Result(ref, code, text, when, 0.0, "", resource["status"], local))
            return
        quantities = [(code, resource.get("valueQuantity"))] + [
            (_coding(c["code"])[1], c.get("valueQuantity")) for c in resource.get("component", [])
        ]
        for part_code, quantity in quantities:
            if quantity and "value" in quantity:
                record.results.append(
                    Result(
                        ref,
                        part_code,
                        text,
                        when,
                        float(quantity["value"]),
                        quantity.get("unit") or quantity.get("code", ""),
                        resource["status"],
                        local,
                    )
                )
    elif kind == "MedicationRequest":
        _, code, display = _coding(resource["medicationCodeableConcept"])
        dosage = " ".join(d.get("text", "") for d in resource.get("dosageInstruction", []))
        record.orders.append(
            Order(ref, code, display, resource["status"], parse_instant(resource["authoredOn"]), dosage)
        )
    elif kind == "ServiceRequest":
        _, code, display = _coding(resource["code"])
        record.service_orders.append(
            ServiceOrder(ref, code, display, resource["status"], parse_instant(resource["authoredOn"]))
        )
    elif kind == "Condition":
        _, code, display = _coding(resource["code"])
        abatement = resource.get("abatementDateTime")
        record.problems.append(
            Problem(
                ref,
                code,
                display,
                parse_instant(resource["onsetDateTime"]),
                parse_instant(abatement) if abatement else None,
                _status(resource.get("verificationStatus"), "confirmed"),
            )
        )
    elif kind == "DocumentReference":
        data = resource["content"][0]["attachment"]["data"]
        record.notes.append(
            Note(ref, parse_instant(resource["date"]), resource.get("description", ""), base64.b64decode(data).decode())
        )
    elif kind == "Procedure":
        _, code, display = _coding(resource["code"])
        record.procedures.append(
            Event(ref, code, display, parse_instant(resource["performedDateTime"]), resource["status"])
        )
    elif kind == "Immunization":
        _, code, display = _coding(resource["vaccineCode"])
        record.immunizations.append(
            Event(ref, code, display, parse_instant(resource["occurrenceDateTime"]), resource["status"])
        )
    elif kind == "AllergyIntolerance":
        _, code, display = _coding(resource["code"])
        record.allergies.append(
            Allergy(
                ref,
                code,
                display,
                tuple(resource.get("category", [])),
                _status(resource.get("verificationStatus"), "confirmed"),
                _status(resource.get("clinicalStatus"), "active"),
            )
        )
    elif kind != "Encounter":
        raise ValueError(f"a workflow setup adds no {kind}")
