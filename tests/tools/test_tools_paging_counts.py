"""Issue 16 on the real server: honest paging, counts and groups, value filters, record anchors, death notes,
placeholder ids, sibling codes, partial MRNs, the prescriber in fhir_read. Expected values come from the bundles."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tools_expect import (
    PATIENT,
    code,
    instant,
    mrn,
    of_type,
    patient,
    practitioner_name,
    record_end,
    records,
)

from medagent.tools import default_registry

MANY_ORDERS = "84afbe27-2a55-4f53-b1de-3513e21dae68"  # 97 medication orders
DECEASED = "e4d83502-457f-43e8-8682-10a2a965dc42"  # died 2004-04-08 with 7 orders still active in the record
SODIUM_ELSEWHERE = "132f48ba-1d72-4e0c-a220-91786d7501aa"  # sodium under 2947-0, never under 2951-2


def authored_by(pid: str, now: datetime) -> list[dict[str, Any]]:
    return [m for m in of_type(pid, "MedicationRequest") if instant(m["authoredOn"]) <= now]


# ---------- 1. paging ----------

async def test_paging_by_offset_reads_every_order_once(run: Any) -> None:
    now = record_end(MANY_ORDERS)
    expected = {m["id"] for m in authored_by(MANY_ORDERS, now)}
    assert len(expected) > 20
    seen: list[str] = []
    offset, calls = 0, 0
    while True:
        result = await run("search_medications", now, patient=MANY_ORDERS, limit=100, offset=offset)
        assert result.error is None
        seen += [r["ref"].split("/", 1)[1] for r in result.rows]
        calls += 1
        if not result.truncated:
            break
        last = result.text.splitlines()[-1]
        assert f"(of {len(expected)};" in last and "budget per call" in last and "raise limit" not in last
        offset = int(re.search(r"offset=(\d+)", last)[1])
        assert offset == len(seen), "the cut line names the next page's offset"
    assert calls > 1, "100 orders do not fit one call's budget: the test must page"
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


async def test_manifest_lists_every_resource_type_of_the_record(run: Any) -> None:
    now = record_end(PATIENT)
    kinds = ["Observation", "Condition", "MedicationRequest", "Immunization", "Procedure", "Encounter",
             "DiagnosticReport", "AllergyIntolerance", "CarePlan", "ImagingStudy", "DocumentReference"]
    present = {k for k in kinds if of_type(PATIENT, k)}
    result = await run("record_manifest", now, patient=PATIENT)
    assert result.error is None and result.truncated == 0
    assert present <= {r["type"] for r in result.rows}, "no resource type may be cut from the overview"
    assert "Encounter" in {r["type"] for r in result.rows}
    counts = {r["type"]: r["count"] for r in result.rows}
    assert counts["Encounter"] == sum(1 for e in of_type(PATIENT, "Encounter") if instant(e["period"]["start"]) <= now)


async def test_every_clinical_search_takes_the_same_paging_arguments() -> None:
    registry = default_registry()
    for name in ("search_observations", "search_conditions", "search_medications", "search_immunizations",
                 "search_procedures", "search_encounters", "search_diagnostic_reports", "search_allergies"):
        properties = registry[name].parameters()["properties"]
        assert {"order", "latest", "limit", "offset", "count", "group_by", "since", "until"} <= set(properties), name
        assert "800 tokens" in registry[name].description and "100" in registry[name].description, name


# ---------- 2. counts, groups, value filters ----------

async def test_encounters_in_a_year_are_counted_exactly(run: Any) -> None:
    now = record_end(PATIENT)
    years = Counter(e["period"]["start"][:4] for e in of_type(PATIENT, "Encounter") if instant(e["period"]["start"]) <= now)
    year, n = max(years.items(), key=lambda kv: (kv[1], kv[0]))
    counted = await run("search_encounters", now, patient=PATIENT, since=year, until=year, count=True)
    assert counted.error is None and counted.rows == [{"count": n}] and f"n={n}" in counted.text
    grouped = await run("search_encounters", now, patient=PATIENT, group_by="year", limit=100)
    assert {r["group"]: r["count"] for r in grouped.rows} == dict(years)


async def test_glucose_above_a_value_and_distinct_medications(run: Any) -> None:
    now = record_end(PATIENT)
    glucose = [o for o in of_type(PATIENT, "Observation") if code(o["code"]) == "2339-0"
               and instant(o["effectiveDateTime"]) <= now]
    threshold = 85.0  # this patient's glucose results run from about 65 to 100 mg/dL
    above = [o for o in glucose if o["valueQuantity"]["value"] > threshold]
    assert glucose and 0 < len(above) < len(glucose), "the threshold must split this patient's results"
    result = await run("search_observations", now, patient=PATIENT, code="2339-0", value_gt=threshold, count=True)
    assert result.rows == [{"count": len(above)}]
    below = await run("search_observations", now, patient=PATIENT, code="2339-0", value_lt=threshold, limit=100)
    assert below.truncated == 0 and {r["ref"] for r in below.rows} == \
        {f"Observation/{o['id']}" for o in glucose if o["valueQuantity"]["value"] < threshold}
    orders = authored_by(PATIENT, now)
    distinct = Counter(m["medicationCodeableConcept"]["coding"][0]["code"] for m in orders)
    names = await run("search_medications", now, patient=PATIENT, group_by="name", limit=100)
    assert names.error is None and len(names.rows) == len(distinct)
    assert sorted(r["count"] for r in names.rows) == sorted(distinct.values())
    for row in names.rows:  # first/last occurrence per name, with references
        ids = [m for m in orders if f"RxNorm {m['medicationCodeableConcept']['coding'][0]['code']}" in row["group"]]
        first = min(ids, key=lambda m: (instant(m["authoredOn"]), m["id"]))
        assert row["first_ref"] == f"MedicationRequest/{first['id']}"


# ---------- 3. event anchors ----------

async def test_until_a_record_includes_records_at_the_same_moment(run: Any) -> None:
    now = record_end(PATIENT)
    stamps = {instant(o["effectiveDateTime"]) for o in of_type(PATIENT, "Observation")}
    order = min((m for m in authored_by(PATIENT, now) if instant(m["authoredOn"]) in stamps),
                key=lambda m: instant(m["authoredOn"]))  # an order written at the moment of some results
    at = instant(order["authoredOn"])
    same = {f"Observation/{o['id']}" for o in of_type(PATIENT, "Observation") if instant(o["effectiveDateTime"]) == at}
    before = [o for o in of_type(PATIENT, "Observation") if instant(o["effectiveDateTime"]) <= at]
    result = await run("search_observations", now, patient=PATIENT, until=f"MedicationRequest/{order['id']}", limit=100)
    assert result.error is None and "inclusive" in result.text
    assert result.truncated + len(result.rows) == len(before)
    assert same and len(same) < len(result.rows)
    assert same <= {r["ref"] for r in result.rows}, "newest first: the same-moment rows lead, inside the bound"
    assert all(instant(r["date"]) <= at for r in result.rows)
    first = min(authored_by(PATIENT, now), key=lambda m: instant(m["authoredOn"]))
    meds = await run("search_medications", now, patient=PATIENT, order="oldest", limit=1)
    assert first["authoredOn"][11:16] in meds.text.splitlines()[1], "order rows show the time, not only the day"
    gone = await run("search_observations", now, patient=PATIENT, until="MedicationRequest/no-such-order")
    assert gone.error and "no such record" in gone.error


# ---------- 4. death ----------

async def test_deceased_patient_headers_say_so(run: Any) -> None:
    died = patient(DECEASED)["deceasedDateTime"][:10]
    now = datetime(2004, 4, 21, tzinfo=UTC)
    active = [m for m in of_type(DECEASED, "MedicationRequest") if m["status"] == "active" and instant(m["authoredOn"]) <= now]
    result = await run("search_medications", now, patient=DECEASED, status="current")
    assert result.error is None and len(result.rows) == len(active) == 7
    assert f"patient deceased {died}; 'current' means at death" in result.text.splitlines()[0]
    for tool in ("search_observations", "search_conditions", "record_manifest", "search_encounters"):
        other = await run(tool, now, patient=DECEASED)
        assert f"patient deceased {died}" in other.text.splitlines()[0], tool
    alive = await run("search_medications", now - timedelta(days=365), patient=DECEASED, status="current")
    assert "deceased" not in alive.text


# ---------- 5. errors and hints ----------

async def test_examples_show_placeholders_never_a_real_id(run: Any) -> None:
    real_ids = {r["id"] for resources in records().values() for r in resources}
    for item in default_registry():
        shown = item.example_text()
        assert not any(i in shown for i in re.findall(r"[0-9a-f-]{36}", shown) if i in real_ids), item.name
        if "patient" in item.example:
            assert "<id from find_patients>" in shown, item.name
    bad = await run("search_immunizations", record_end(PATIENT), patient=PATIENT, colour="red")
    assert bad.error and "<id from find_patients>" in bad.error and PATIENT not in bad.error


async def test_none_found_names_the_sibling_code(run: Any) -> None:
    now = record_end(SODIUM_ELSEWHERE)
    held = [o for o in of_type(SODIUM_ELSEWHERE, "Observation") if code(o["code"]) == "2947-0"
            and instant(o["effectiveDateTime"]) <= now]
    assert held and not [o for o in of_type(SODIUM_ELSEWHERE, "Observation") if code(o["code"]) == "2951-2"]
    result = await run("search_observations", now, patient=SODIUM_ELSEWHERE, code="2951-2")
    assert result.rows == [] and "LOINC 2947-0" in result.text and f"x{len(held)}" in result.text


async def test_partial_mrn_and_exact_name_birth_date_are_not_loosened(run: Any) -> None:
    now = record_end(PATIENT)
    full = await run("find_patients", now, identifier=mrn(PATIENT))
    assert [r["ref"] for r in full.rows] == [f"Patient/{PATIENT}"]
    part = await run("find_patients", now, identifier=mrn(PATIENT)[:8])
    assert part.rows == [] and "partial MRN" in part.text and "do not substitute" in part.text
    born = patient(PATIENT)["birthDate"]
    wrong_day = (datetime.fromisoformat(born) + timedelta(days=1)).date().isoformat()
    name = patient(PATIENT)["name"][0]["family"]
    none = await run("find_patients", now, name=name, birth_date=wrong_day)
    if not none.rows:
        assert "do not drop the birth date" in none.text and "birth date alone" not in none.text


# ---------- 6. fhir_read prescriber, reason_reference to an Observation ----------

async def test_fhir_read_of_an_order_names_the_prescriber_with_its_reference(run: Any) -> None:
    now = record_end(PATIENT)
    order = max(authored_by(PATIENT, now), key=lambda m: instant(m["authoredOn"]))
    result = await run("fhir_read", now, reference=f"MedicationRequest/{order['id']}")
    assert result.error is None
    name = practitioner_name(order["requester"]["reference"])
    assert f"prescriber {name} (Practitioner/" in result.text, result.text
    assert result.rows[0]["prescriber"] == name


def test_write_schema_accepts_an_observation_as_reason() -> None:
    schema = default_registry()["order_medication"].parameters()["properties"]["reason_reference"]
    assert re.match(schema["pattern"], "Observation/abc") and re.match(schema["pattern"], "Condition/abc")
    assert not re.match(schema["pattern"], "Patient/abc")
    assert json.dumps(schema)


async def test_fhir_search_pages_by_offset_too(run: Any) -> None:
    now = record_end(PATIENT)
    glucose = {f"Observation/{o['id']}" for o in of_type(PATIENT, "Observation") if code(o["code"]) == "2339-0"
               and instant(o["effectiveDateTime"]) <= now}
    seen: list[str] = []
    for offset in range(0, len(glucose) + 3, 3):
        page = await run("fhir_search", now, resource_type="Observation", limit=3, offset=offset,
                         params={"patient": PATIENT, "code": "http://loinc.org|2339-0"})
        assert page.error is None
        seen += page.references
        if page.truncated:
            assert f"offset={offset + len(page.rows)}" in page.text
    assert sorted(seen) == sorted(glucose) and len(seen) == len(set(seen))
    refused = await run("fhir_search", now, resource_type="Observation", params={"_offset": "3"})
    assert refused.error and "use offset instead" in refused.error


# ---------- search_allergies takes the shared arguments (order, latest, count, group_by) ----------

def allergy_patient() -> str:
    """The patient with the most allergies, spread over the most distinct recorded times (from the bundles)."""
    def spread(pid: str) -> tuple[int, int]:
        allergies = of_type(pid, "AllergyIntolerance")
        return len({a["recordedDate"] for a in allergies}), len(allergies)

    return max(sorted(records()), key=spread)


async def test_allergies_order_latest_count_and_group_by(run: Any) -> None:
    pid = allergy_patient()
    now = record_end(pid)
    allergies = [a for a in of_type(pid, "AllergyIntolerance") if instant(a["recordedDate"]) <= now]
    refs = {f"AllergyIntolerance/{a['id']}" for a in allergies}

    oldest = await run("search_allergies", now, patient=pid, order="oldest", limit=100)
    assert oldest.error is None, oldest.error
    assert {r["ref"] for r in oldest.rows} == refs
    times = [instant(r["date"]) for r in oldest.rows]
    assert times == sorted(times) and times[0] == min(instant(a["recordedDate"]) for a in allergies)
    newest = await run("search_allergies", now, patient=pid, limit=1)
    assert instant(newest.rows[0]["date"]) == max(instant(a["recordedDate"]) for a in allergies)

    counted = await run("search_allergies", now, patient=pid, count=True)
    assert counted.rows == [{"count": len(allergies)}] and f"n={len(allergies)}" in counted.text

    by_year = await run("search_allergies", now, patient=pid, group_by="year", limit=100)
    assert {r["group"]: r["count"] for r in by_year.rows} == Counter(a["recordedDate"][:4] for a in allergies)

    latest = await run("search_allergies", now, patient=pid, latest=1, limit=100)
    assert sorted(r["code"] for r in latest.rows) == sorted({code(a["code"]) for a in allergies})

    first_year = min(a["recordedDate"][:4] for a in allergies)
    windowed = await run("search_allergies", now, patient=pid, since=first_year, until=first_year, limit=100)
    assert {r["ref"] for r in windowed.rows} == {f"AllergyIntolerance/{a['id']}" for a in allergies
                                                 if a["recordedDate"][:4] == first_year}


# ---------- loose text search: every word of `text`, in any order, in the coded display ----------

def displays(concept: dict[str, Any] | None) -> str:
    """Every display of a CodeableConcept and its text, lower case, zero-width spaces removed."""
    concept = concept or {}
    names = [c.get("display") or "" for c in concept.get("coding", [])] + [concept.get("text") or ""]
    return " ".join(names).replace("\u200b", "").lower()


TEXT_CASES = [  # tool, resource type, the concept searched, text asked, its words (hand-split)
    ("search_observations", "Observation", "code", "serum ALBUMIN", ("serum", "albumin")),
    ("search_observations", "Observation", "code", "volume mass albumin", ("volume", "mass", "albumin")),
    ("search_conditions", "Condition", "code", "diabetes mellitus type 2", ("diabetes", "mellitus", "type", "2")),
    ("search_medications", "MedicationRequest", "medicationCodeableConcept", "metformin oral tablet 500",
     ("metformin", "oral", "tablet", "500")),
]


@pytest.mark.parametrize(("tool_name", "kind", "concept", "text", "words"), TEXT_CASES,
                         ids=[case[3] for case in TEXT_CASES])
async def test_text_matches_every_word_in_any_order_case_insensitively(
        run: Any, tool_name: str, kind: str, concept: str, text: str, words: tuple[str, ...]) -> None:
    def matching(pid: str) -> set[str]:
        return {f"{kind}/{r['id']}" for r in of_type(pid, kind) if all(w in displays(r.get(concept)) for w in words)}

    patients = [pid for pid in sorted(records()) if matching(pid)][:3]
    assert patients, "the case must match something in the bundles"
    for pid in patients:
        result = await run(tool_name, record_end(pid), patient=pid, text=text, limit=100)
        assert result.error is None, result.error
        assert {r["ref"] for r in result.rows} == matching(pid), (pid, result.text[:400])
    phrase_only = next(pid for pid in sorted(records()) if of_type(pid, kind))
    missing = await run(tool_name, record_end(phrase_only), patient=phrase_only, text=f"{text} zzqx")
    assert missing.rows == []  # every word must match: one absent word finds nothing


# ---------- a diagnosis named only as a visit's reason ----------

def reason_only_cases() -> list[tuple[str, str, str, set[str]]]:
    """(patient, SNOMED code, display, encounters listing it as a reason) for codes no Condition of that patient
    carries, from the bundles."""
    cases = {}
    for pid in sorted(records()):
        conditions = {c["code"] for r in of_type(pid, "Condition") for c in r["code"]["coding"]}
        for encounter in of_type(pid, "Encounter"):
            for concept in encounter.get("reasonCode", []):
                for coding in concept.get("coding", []):
                    if coding["code"] not in conditions:
                        key = (pid, coding["code"], coding["display"])
                        cases.setdefault(key, set()).add(f"Encounter/{encounter['id']}")
    return [(*key, refs) for key, refs in sorted(cases.items())]


async def test_condition_search_names_the_visits_that_give_it_as_a_reason(run: Any) -> None:
    cases = reason_only_cases()
    bronchitis = next(c for c in cases if c[2].startswith("Acute bronchitis"))  # the issue's example
    for pid, snomed, display, encounters in [bronchitis, *cases[:2]]:
        now = record_end(pid)
        by_code = await run("search_conditions", now, patient=pid, code=snomed)
        word = max(display.split(" (")[0].split(), key=len)  # the longest word of the name
        by_text = await run("search_conditions", now, patient=pid, text=word)
        for result in (by_code, by_text):
            assert result.error is None, result.error
            if result is by_text and any(word.lower() in c["code"]["coding"][0]["display"].lower()
                                         for c in of_type(pid, "Condition")):
                continue  # another condition has that word: a Condition is found, no hint
            assert result.rows == [], result.text
            hint = next(line for line in result.text.splitlines() if line.startswith("no Condition;"))
            assert "encounter(s) list it as a reason" in hint and display in hint, hint
            listed = set(re.findall(r"Encounter/[A-Za-z0-9\-.]+", hint))
            assert listed <= encounters and (listed == encounters or "more" in hint), (hint, encounters)
            assert listed <= set(result.references)
    pid = bronchitis[0]
    absent = await run("search_conditions", record_end(pid), patient=pid, text="gout")
    assert "no visit lists it as a reason" in absent.text and "no Condition;" not in absent.text
    first_visit = min(instant(e["period"]["start"]) for e in of_type(pid, "Encounter")
                      if f"Encounter/{e['id']}" in bronchitis[3])
    before = (first_visit - timedelta(days=1)).date().isoformat()
    early = await run("search_conditions", record_end(pid), patient=pid, code=bronchitis[1], until=before)
    assert early.error is None and early.rows == [], early.error
    assert "no visit lists it as a reason" in early.text  # the visits' window is the search's window
