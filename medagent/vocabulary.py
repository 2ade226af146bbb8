"""The FHIR vocabulary shared by the tools, the scenarios and the agent: code systems, per-type dates, instants.

A neutral module (it imports nothing from medagent), so the scenario generators and graders may use it
without reaching the FHIR, tool or agent layers. The server's search-parameter table is tied to
:data:`CLINICAL_DATES` by a test (``tests/tools/test_vocabulary.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# ---------- code systems ----------

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
NDC = "http://hl7.org/fhir/sid/ndc"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE_DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"

# ---------- the audit trail of writes (tools stamp it; the server keeps it across later writes) ----------

ACTOR_SYSTEM = "urn:medagent:actor"  # meta.tag: who wrote (the run context's actor)
RUN_SYSTEM = "urn:medagent:run"  # meta.tag: the run that wrote
AUDIT_TAG_SYSTEMS = (ACTOR_SYSTEM, RUN_SYSTEM)
AUDIT_EXTENSION_URL = "urn:medagent:audit"  # extension: actor, tool, run, time and reason of the write

SYSTEM_LABELS: dict[str, str] = {
    LOINC: "LOINC",
    SNOMED: "SNOMED",
    RXNORM: "RxNorm",
    CVX: "CVX",
    NDC: "NDC",
    ICD10CM: "ICD-10-CM",
    ICD10: "ICD-10",
    UCUM: "UCUM",
    ACT_CODE: "ActCode",
}
"""The short name tool rows print before a code (``LOINC 4548-4``)."""

SYSTEM_ALIASES: dict[str, str] = {
    **{label.lower(): url for url, label in SYSTEM_LABELS.items()},
    "sct": SNOMED,
    "snomed-ct": SNOMED,
    "snomedct": SNOMED,
    "rx": RXNORM,
}
"""What a model may write before a code (``loinc|4548-4``), lower case, to the system URL."""


# ---------- the date of each clinical resource type ----------


@dataclass(frozen=True)
class TypeDates:
    """Which search parameter filters a type by its clinical date, and where that date is in the JSON.

    ``paths`` are tried in order (dotted, e.g. ``period.start``); the first is the element the search
    parameter indexes, the others are fallbacks for rows that lack it.
    """

    search_param: str | None
    paths: tuple[str, ...]


CLINICAL_DATES: dict[str, TypeDates] = {
    "Observation": TypeDates("date", ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued")),
    "Condition": TypeDates("onset-date", ("onsetDateTime", "onsetPeriod.start", "recordedDate")),
    "MedicationRequest": TypeDates("authoredon", ("authoredOn",)),
    "MedicationAdministration": TypeDates("effective-time", ("effectiveDateTime", "effectivePeriod.start")),
    "Immunization": TypeDates("date", ("occurrenceDateTime", "recorded")),
    "Procedure": TypeDates("date", ("performedDateTime", "performedPeriod.start")),
    "Encounter": TypeDates("date", ("period.start",)),
    "DiagnosticReport": TypeDates("date", ("effectiveDateTime", "effectivePeriod.start", "issued")),
    "AllergyIntolerance": TypeDates("date", ("recordedDate", "onsetDateTime")),
    "ServiceRequest": TypeDates("authored", ("authoredOn", "occurrenceDateTime")),
    "DocumentReference": TypeDates("date", ("date",)),
    "Composition": TypeDates("date", ("date",)),
    "CarePlan": TypeDates("date", ("period.start", "created")),
    "ImagingStudy": TypeDates("started", ("started",)),
    "Claim": TypeDates("created", ("created", "billablePeriod.start")),
    "ExplanationOfBenefit": TypeDates("created", ("created", "billablePeriod.start")),
    "Goal": TypeDates(None, ("startDate", "statusDate")),
    "Communication": TypeDates(None, ("sent",)),
}


def date_search_param(resource_type: str) -> str | None:
    """The date search parameter that hides a type's records dated after now (None: the type has none)."""
    dates = CLINICAL_DATES.get(resource_type)
    return dates.search_param if dates else None


# ---------- instants ----------

PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")  # FHIR date: year, year-month, full date


def parse_instant(value: str) -> datetime:
    """A FHIR date, dateTime or instant (or a run's "now") as an aware datetime.

    Partial dates (``2020``, ``2020-05``, ``2020-05-01``) are their first moment; ``Z`` and naive
    values are UTC. Anything else raises ValueError naming the value.
    """
    text = value.strip()
    match = PARTIAL_DATE.match(text)
    if match:
        year, month, day = match.groups()
        return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a FHIR date or date-time (e.g. 2020-06-01 or 2020-06-01T10:15:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


SNOMED_SEMANTIC_TAGS = (" (disorder)", " (finding)", " (situation)", " (morphologic abnormality)")


def condition_label(display: str) -> str:
    """'Viral sinusitis (disorder)' -> 'Viral sinusitis': the semantic tag is not part of the name (questions
    and task texts name a condition this way)."""
    text = display
    for tag in SNOMED_SEMANTIC_TAGS:
        text = text.replace(tag, "")
    return text


def readable_number(value: Any) -> str:
    """A number as the tools display it: at most 2 decimals (3 below 1), no trailing zeros (what an agent reads
    and copies; the oracle writes an unrounded number the same way)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    digits = 3 if abs(value) < 1 else 2
    text = f"{round(float(value), digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
