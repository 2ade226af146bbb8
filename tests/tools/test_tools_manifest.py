"""record_manifest and lookup_codes, checked against the bundle files."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from tools_expect import PATIENT, code, display, instant, midpoint, of_type, record_end, records, sample_patients

LATE = datetime(2030, 1, 1, tzinfo=UTC)
DATES = {
    "Observation": lambda r: r.get("effectiveDateTime"),
    "Condition": lambda r: r.get("onsetDateTime"),
    "MedicationRequest": lambda r: r.get("authoredOn"),
    "Immunization": lambda r: r.get("occurrenceDateTime"),
    "Procedure": lambda r: (r.get("performedPeriod") or {}).get("start") or r.get("performedDateTime"),
    "Encounter": lambda r: r["period"]["start"],
    "DiagnosticReport": lambda r: r.get("effectiveDateTime"),
    "AllergyIntolerance": lambda r: r.get("recordedDate"),
    "CarePlan": lambda r: r["period"]["start"],
    "ImagingStudy": lambda r: r.get("started"),
}


async def test_manifest_counts_spans_and_top_codes(run: Any) -> None:
    for pid in sample_patients(20):
        for now in (midpoint(pid), record_end(pid)):
            result = await run("record_manifest", now, patient=pid)
            assert result.error is None
            rows = {row["type"]: row for row in result.rows}
            for kind, when in DATES.items():
                dated = [r for r in of_type(pid, kind) if when(r) and instant(when(r)) <= now]
                if not dated:
                    assert kind not in rows
                    continue
                row = rows[kind]
                assert row["count"] == len(dated), (pid, kind)
                assert row["first"] == min(when(r) for r in dated)[:10] and row["last"] == max(when(r) for r in dated)[:10]
                element = {"MedicationRequest": "medicationCodeableConcept", "Immunization": "vaccineCode",
                           "Encounter": "type", "CarePlan": "category"}.get(kind, "code")
                if kind == "ImagingStudy":
                    continue
                counts = Counter(code(r[element][0] if isinstance(r[element], list) else r[element]) for r in dated)
                assert row["distinct_codes"] == len(counts)
                assert row["top"][0]["count"] == max(counts.values())
                assert counts[row["top"][0]["code"]] == row["top"][0]["count"]
            assert len(result.text) <= 800 * 4


async def test_manifest_of_a_patient_before_any_record(run: Any) -> None:
    born = of_type(PATIENT, "Patient")[0]["birthDate"]
    result = await run("record_manifest", instant(born), patient=PATIENT)
    assert result.rows == [] and "no clinical records dated up to now" in result.text


async def test_lookup_maps_words_to_codes_in_the_data(run: Any) -> None:
    every = [o for pid in records() for o in of_type(pid, "Observation")]
    a1c = sum(1 for o in every if code(o["code"]) == "4548-4")
    result = await run("lookup_codes", LATE, text="hemoglobin a1c")
    assert result.rows[0]["code"] == "4548-4" and result.rows[0]["count"] == a1c
    assert 'search_observations(code="4548-4")' in result.text
    assert (await run("lookup_codes", LATE, text="HbA1c")).rows[0]["code"] == "4548-4"
    by_code = await run("lookup_codes", LATE, text="4548-4")
    assert by_code.rows[0]["display"] == "Hemoglobin A1c/Hemoglobin.total in Blood"
    shuffled = await run("lookup_codes", LATE, text="a1c hemoglobin")  # words not side by side
    assert shuffled.rows[0]["code"] == "4548-4"
    bp = await run("lookup_codes", LATE, text="blood pressure", resource_type="Observation")
    assert {"55284-4", "8480-6", "8462-4"} <= {row["code"] for row in bp.rows}


async def test_lookup_in_one_patient(run: Any) -> None:
    for pid in sample_patients(15, needs="Condition"):
        now = record_end(pid)
        expected = Counter(code(c["code"]) for c in of_type(pid, "Condition") if "diabet" in display(c["code"]).lower())
        result = await run("lookup_codes", now, text="diabetes", patient=pid, resource_type="Condition")
        assert {row["code"]: row["count"] for row in result.rows} == dict(expected)


async def test_lookup_bad_arguments(run: Any) -> None:
    nothing = await run("lookup_codes", LATE, text="zzzqqq")
    assert nothing.error is None and nothing.rows == [] and "no code in the data matches" in nothing.text
    short = await run("lookup_codes", LATE, text="a")
    assert short.error and "at least 2 characters" in short.error and "Example" in short.error
    kind = await run("lookup_codes", LATE, text="glucose", resource_type="Claim")
    assert kind.error and "resource_type" in kind.error
    missing = await run("lookup_codes", LATE, text="glucose", patient="nobody")
    assert missing.error and "not found" in missing.error
    bad_top = await run("record_manifest", LATE, patient=PATIENT, top=0)
    assert bad_top.error and "top" in bad_top.error
