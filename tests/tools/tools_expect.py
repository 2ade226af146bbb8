"""Expected tool results computed straight from the Synthea bundle JSON by plain dict walking.

Never through medagent.tools (nor medagent.scenarios): if the tools had a bug, these must not share it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from medagent.data import iter_bundles

PATIENT = "ba18818d-faef-44cd-9744-b12d8973d402"  # Adalberto Hartmann: conditions, meds with reasons, BP, HbA1c
LOINC = "http://loinc.org"


@lru_cache(maxsize=1)
def records() -> dict[str, list[dict[str, Any]]]:
    """Patient id -> every resource of that patient's bundle."""
    out = {}
    for _, bundle in iter_bundles():
        resources = [entry["resource"] for entry in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        out[patient["id"]] = resources
    return out


def patient(pid: str) -> dict[str, Any]:
    return next(r for r in records()[pid] if r["resourceType"] == "Patient")


def of_type(pid: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in records()[pid] if r["resourceType"] == kind]


def ref_id(reference: str) -> str:
    """'urn:uuid:abc' / 'Patient/abc' -> 'abc'."""
    return reference.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def instant(value: str) -> datetime:
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def code(concept: dict[str, Any]) -> str:
    return concept["coding"][0]["code"]


def display(concept: dict[str, Any]) -> str:
    return concept["coding"][0].get("display") or concept.get("text", "")


def record_end(pid: str) -> datetime:
    """The latest clinical timestamp in a patient's record (billing resources excluded)."""
    stamps = []
    for r in records()[pid]:
        if r["resourceType"] in ("Claim", "ExplanationOfBenefit", "Patient", "Organization", "Practitioner"):
            continue
        for key in ("effectiveDateTime", "onsetDateTime", "authoredOn", "occurrenceDateTime", "recordedDate"):
            if key in r:
                stamps.append(instant(r[key]))
        for key in ("period", "performedPeriod"):
            if key in r and "start" in r[key]:
                stamps.append(instant(r[key]["start"]))
    return max(stamps)


def record_start(pid: str) -> datetime:
    return min(instant(e["period"]["start"]) for e in of_type(pid, "Encounter"))


def midpoint(pid: str) -> datetime:
    start, end = record_start(pid), record_end(pid)
    return (start + (end - start) / 2).replace(microsecond=0)


def observation_values(pid: str, loinc: str) -> list[tuple[datetime, float, str]]:
    """(time, value, observation id) of a LOINC code, components of panels included, oldest first."""
    out = []
    for obs in of_type(pid, "Observation"):
        if "effectiveDateTime" not in obs:
            continue
        moment = instant(obs["effectiveDateTime"])
        if code(obs["code"]) == loinc and "valueQuantity" in obs:
            out.append((moment, float(obs["valueQuantity"]["value"]), obs["id"]))
        for component in obs.get("component", []):
            if code(component["code"]) == loinc and "valueQuantity" in component:
                out.append((moment, float(component["valueQuantity"]["value"]), obs["id"]))
    return sorted(out)


def age(born: str, on: date) -> int:
    b = date.fromisoformat(born)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def mrn(pid: str) -> str:
    for identifier in patient(pid).get("identifier", []):
        if any(c.get("code") == "MR" for c in identifier.get("type", {}).get("coding", [])):
            return identifier["value"]
    raise AssertionError("no MRN")


def practitioner_name(reference: str) -> str:
    """'Given Family' of a Practitioner referenced from any bundle."""
    wanted = ref_id(reference)
    for resources in records().values():
        for r in resources:
            if r["resourceType"] == "Practitioner" and r["id"] == wanted:
                name = r["name"][0]
                return " ".join([*name.get("given", []), name["family"]])
    raise AssertionError(f"no practitioner {reference}")


def sample_patients(count: int, *, needs: str | None = None) -> list[str]:
    """A deterministic spread of patients (every k-th id), optionally only those having a resource type."""
    ids = sorted(records())
    if needs:
        ids = [pid for pid in ids if of_type(pid, needs)]
    step = max(1, len(ids) // count)
    return ids[::step][:count]
