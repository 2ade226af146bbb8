"""Clinical read tools against the embedded server; expected values computed from the bundle files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

import pytest
from tools_expect import (
    PATIENT,
    code,
    display,
    instant,
    midpoint,
    observation_values,
    of_type,
    practitioner_name,
    record_end,
    records,
    ref_id,
    sample_patients,
)

LABS = ["4548-4", "2339-0", "8480-6", "8462-4", "29463-7", "39156-5", "38483-4", "18262-6", "6298-4"]


# ---------- observations ----------

async def test_latest_value_of_each_lab_at_two_clocks(run: Any) -> None:
    checked = 0
    for pid in sample_patients(12, needs="Observation"):
        for now in (midpoint(pid), record_end(pid)):
            for loinc in LABS:
                values = [v for v in observation_values(pid, loinc) if v[0] <= now]
                result = await run("search_observations", now, patient=pid, code=loinc, latest=1)
                assert result.error is None
                if not values:
                    assert result.rows == [] and "none found" in result.text
                    continue
                latest_time = values[-1][0]
                expected = {(value, f"Observation/{oid}") for t, value, oid in values if t == latest_time}
                row = result.rows[0]
                assert (row["value"], row["ref"]) in expected, (pid, loinc, now)
                assert instant(row["date"]) == latest_time
                checked += 1
    assert checked > 50


async def test_blood_pressure_component_is_found_inside_its_panel(run: Any) -> None:
    now = record_end(PATIENT)
    systolic = observation_values(PATIENT, "8480-6")
    result = await run("search_observations", now, patient=PATIENT, code="8480-6", limit=100)
    assert [r["value"] for r in result.rows] == [v for _, v, _ in reversed(systolic)]
    assert all(r["component"] == "8480-6" and r["unit"] == "mm[Hg]" for r in result.rows)
    assert "Systolic Blood Pressure (LOINC 8480-6, in panel 55284-4)" in result.text
    panel = await run("search_observations", now, patient=PATIENT, code="85354-9", latest=1)
    diastolic = observation_values(PATIENT, "8462-4")[-1][1]
    assert panel.rows[0]["code"] == "55284-4", "the task's BP panel code 85354-9 also finds Synthea's 55284-4"
    assert "/" in panel.rows[0]["text"] and f"{round(diastolic, 2):g}" in panel.rows[0]["text"].replace(".0 ", " ")


async def test_date_window_counts_and_order(run: Any) -> None:
    now = record_end(PATIENT)
    since, until = datetime(2014, 1, 1, tzinfo=UTC), datetime(2017, 12, 31, 23, 59, 59, tzinfo=UTC)
    expected = [(t, v, oid) for t, v, oid in observation_values(PATIENT, "2339-0") if since <= t <= until]
    result = await run("search_observations", now, patient=PATIENT, code="http://loinc.org|2339-0",
                       since="2014-01-01", until="2017-12-31")
    assert [r["ref"] for r in result.rows] == [f"Observation/{oid}" for _, _, oid in reversed(expected)]
    assert f": {len(expected)} found, newest first" in result.text.splitlines()[0]
    relative = await run("search_observations", now, patient=PATIENT, code="2339-0", since="-400d")
    assert {r["ref"] for r in relative.rows} == {f"Observation/{oid}" for t, _, oid in
                                                 observation_values(PATIENT, "2339-0") if t >= now - timedelta(days=400)}


async def test_summary_line_gives_the_mean(run: Any) -> None:
    now = record_end(PATIENT)
    values = [v for _, v, _ in observation_values(PATIENT, "4548-4")]
    result = await run("search_observations", now, patient=PATIENT, code="4548-4")
    assert f"4548-4: n={len(values)} listed, mean {round(mean(values), 2):g}" in result.text


async def test_text_search_and_category(run: Any) -> None:
    now = record_end(PATIENT)
    result = await run("search_observations", now, patient=PATIENT, text="hemoglobin a1c", limit=100)
    assert {r["code"] for r in result.rows} == {"4548-4"}
    assert len(result.rows) == len(observation_values(PATIENT, "4548-4"))
    synonym = await run("search_observations", now, patient=PATIENT, text="HbA1c", latest=1)
    assert [r["code"] for r in synonym.rows] == ["4548-4"]
    systolic = await run("search_observations", now, patient=PATIENT, text="systolic", latest=1)
    assert systolic.rows[0]["component"] == "8480-6"
    vitals = await run("search_observations", now, patient=PATIENT, category="vital-signs", limit=100)
    expected = [o for o in of_type(PATIENT, "Observation")
                if any(c["code"] == "vital-signs" for cat in o.get("category", []) for c in cat["coding"])]
    assert vitals.error is None and vitals.truncated + len(vitals.rows) == len(expected)


async def test_records_after_now_are_hidden(run: Any) -> None:
    now = midpoint(PATIENT)
    expected = sorted((instant(o["effectiveDateTime"]), o["id"]) for o in of_type(PATIENT, "Observation")
                      if instant(o["effectiveDateTime"]) <= now)
    result = await run("search_observations", now, patient=PATIENT, limit=100)
    assert all(instant(r["date"]) <= now for r in result.rows)
    assert result.truncated + len(result.rows) == len(expected)
    assert len(expected) < len(of_type(PATIENT, "Observation")), "the clock must hide part of this record"


async def test_many_results_are_cut_with_a_marker(run: Any) -> None:
    now = record_end(PATIENT)
    total = sum(1 for o in of_type(PATIENT, "Observation") if instant(o["effectiveDateTime"]) <= now)
    result = await run("search_observations", now, patient=PATIENT, limit=3)
    assert len(result.rows) == 3 and result.truncated == total - 3
    assert result.text.splitlines()[-1].startswith(
        f"... {total - 3} more not shown (of {total}; rows 1-3 shown, cut by limit=3); "
        "next page: the same arguments with offset=3")


async def test_observation_bad_arguments(run: Any) -> None:
    now = record_end(PATIENT)
    cases = {
        "unknown code system 'foo'": {"code": "foo|123"},
        "February 2019 has 28 days": {"since": "2019-02-30"},
        "is after now": {"since": "2100-01-01"},
        "latest: Input should be greater than or equal to 1": {"latest": 0},
        "Input should be 'vital-signs'": {"category": "vitals"},
        "at least 2 characters": {"text": "a"},
        "use text= for words": {"code": "hemoglobin a1c"},
    }
    for message, arguments in cases.items():
        result = await run("search_observations", now, patient=PATIENT, **arguments)
        assert result.error and message in result.error, (arguments, result.error)
    gone = await run("search_observations", now, patient="no-such-patient")
    assert gone.error and "not found" in gone.error


# ---------- conditions ----------

async def test_conditions_and_their_status_at_now(run: Any) -> None:
    for pid in sorted(records()):
        for now in (midpoint(pid), record_end(pid)):
            expected = {}
            for c in of_type(pid, "Condition"):
                if instant(c["onsetDateTime"]) > now:
                    continue
                abated = c.get("abatementDateTime")
                expected[f"Condition/{c['id']}"] = "resolved" if abated and instant(abated) <= now else "active"
            result = await run("search_conditions", now, patient=pid, limit=100)
            assert {r["ref"]: r["status"] for r in result.rows} == expected, pid
            active = await run("search_conditions", now, patient=pid, status="active", limit=100)
            assert {r["ref"] for r in active.rows} == {ref for ref, s in expected.items() if s == "active"}


async def test_condition_words_find_related_diagnoses(run: Any) -> None:
    for pid in sample_patients(30, needs="Condition"):
        now = record_end(pid)
        expected = {f"Condition/{c['id']}" for c in of_type(pid, "Condition") if "diabet" in display(c["code"]).lower()}
        result = await run("search_conditions", now, patient=pid, text="diabetes", limit=100)
        assert {r["ref"] for r in result.rows} == expected


async def test_condition_bad_arguments(run: Any) -> None:
    now = record_end(PATIENT)
    bad_status = await run("search_conditions", now, patient=PATIENT, status="chronic")
    assert bad_status.error and "status" in bad_status.error and "Example" in bad_status.error
    bad_code = await run("search_conditions", now, patient=PATIENT, code="icd99|E11")
    assert bad_code.error and "unknown code system 'icd99'" in bad_code.error
    swapped = await run("search_conditions", now, patient=PATIENT, since="2018-01-01", until="2010-01-01")
    assert swapped.error and "swap" in swapped.error


# ---------- medications ----------

def orders_at_record_end(pid: str) -> tuple[datetime, list[dict[str, Any]], dict[str, str]]:
    """The patient's last clock, the orders written by then, and the names of the patient's conditions by id."""
    now = record_end(pid)
    orders = [m for m in of_type(pid, "MedicationRequest") if instant(m["authoredOn"]) <= now]
    return now, orders, {c["id"]: display(c["code"]) for c in of_type(pid, "Condition")}


async def test_current_medications_prescribers_and_reasons(run: Any, make_ctx: Any) -> None:
    checked = 0
    for pid in sample_patients(25, needs="MedicationRequest"):
        now, orders, conditions = orders_at_record_end(pid)
        wide = make_ctx(now, token_budget=50_000)  # completeness checks: no budget cut
        result = await run("search_medications", now, patient=pid, status="current", limit=100, ctx=wide)
        assert {r["ref"] for r in result.rows} == {f"MedicationRequest/{m['id']}" for m in orders if m["status"] == "active"}
        everything = await run("search_medications", now, patient=pid, limit=100, ctx=wide)
        by_ref = {r["ref"]: r for r in everything.rows}
        assert len(by_ref) == min(len(orders), 100)
        for order in orders[:100]:
            row = by_ref[f"MedicationRequest/{order['id']}"]
            assert row["display"] == display(order["medicationCodeableConcept"]) and row["status"] == order["status"]
            assert row["prescriber"] == practitioner_name(order["requester"]["reference"])
            reasons = [conditions[ref_id(r["reference"])] for r in order.get("reasonReference", [])]
            assert row["reason_displays"] == reasons
            checked += 1
    assert checked > 50


async def test_medications_by_documented_reason(run: Any, make_ctx: Any) -> None:
    checked = 0
    for pid in sample_patients(25, needs="MedicationRequest"):
        now, orders, conditions = orders_at_record_end(pid)
        reasons_of = {m["id"]: [conditions[ref_id(r["reference"])] for r in m.get("reasonReference", [])]
                      for m in orders}
        wide = make_ctx(now, token_budget=50_000)
        for name in sorted({name for names in reasons_of.values() for name in names})[:3]:
            expected = {f"MedicationRequest/{m['id']}" for m in orders
                        if any(name.lower() in reason.lower() for reason in reasons_of[m["id"]])}
            result = await run("search_medications", now, patient=pid, reason=name, limit=100, ctx=wide)
            assert {r["ref"] for r in result.rows} == expected, (pid, name)
            assert f"reason={name!r}" in result.text and f"{len(expected)} found" in result.text
            counted = await run("search_medications", now, patient=pid, reason=name, count=True)
            assert counted.rows == [{"count": len(expected)}]
            checked += 1
    assert checked > 10
    none = await run("search_medications", record_end(PATIENT), patient=PATIENT, reason="no such condition")
    assert none.rows == [] and "none found" in none.text


async def test_medications_written_after_now_are_hidden(run: Any) -> None:
    now = midpoint(PATIENT)
    result = await run("search_medications", now, patient=PATIENT, status="past", limit=100)
    expected = {f"MedicationRequest/{m['id']}" for m in of_type(PATIENT, "MedicationRequest")
                if instant(m["authoredOn"]) <= now and m["status"] != "active"}
    assert {r["ref"] for r in result.rows} == expected
    text = await run("search_medications", record_end(PATIENT), patient=PATIENT, text="hydrochlorothiazide")
    assert [r["code"] for r in text.rows] == ["316049"] and "reason Hypertension (Condition/" in text.text


async def test_medication_bad_arguments(run: Any) -> None:
    now = record_end(PATIENT)
    wrong = await run("search_medications", now, patient=PATIENT, status="active")
    assert wrong.error and "'current'" in wrong.error
    bad = await run("search_medications", now, patient=PATIENT, code="rxnorm|")
    assert bad.error and "not a code" in bad.error


# ---------- immunizations, procedures, encounters, reports, allergies ----------

async def test_immunization_dates(run: Any) -> None:
    for pid in sample_patients(15, needs="Immunization"):
        now = record_end(pid)
        shots = sorted(((instant(i["occurrenceDateTime"]), i["id"], code(i["vaccineCode"]))
                        for i in of_type(pid, "Immunization") if instant(i["occurrenceDateTime"]) <= now), reverse=True)
        for cvx in sorted({s[2] for s in shots}):
            result = await run("search_immunizations", now, patient=pid, code=cvx, limit=100)
            assert [r["date"][:10] for r in result.rows] == [t.date().isoformat() for t, _, c in shots if c == cvx]


async def test_oldest_first_for_first_questions(run: Any) -> None:
    now = record_end(PATIENT)
    shots = sorted((i["occurrenceDateTime"], i["id"]) for i in of_type(PATIENT, "Immunization") if code(i["vaccineCode"]) == "140")
    first = await run("search_immunizations", now, patient=PATIENT, code="140", order="oldest", limit=1)
    assert first.rows[0]["ref"] == f"Immunization/{shots[0][1]}" and "oldest first" in first.text
    assert first.truncated == len(shots) - 1
    orders = sorted((m["authoredOn"], m["id"]) for m in of_type(PATIENT, "MedicationRequest"))
    oldest = await run("search_medications", now, patient=PATIENT, order="oldest", limit=1)
    assert oldest.rows[0]["ref"] == f"MedicationRequest/{orders[0][1]}"
    earliest = await run("search_observations", now, patient=PATIENT, code="4548-4", order="oldest", latest=1)
    assert earliest.rows[0]["value"] == observation_values(PATIENT, "4548-4")[0][1]
    bad = await run("search_procedures", now, patient=PATIENT, order="first")
    assert bad.error and "'newest' or 'oldest'" in bad.error


async def test_procedures(run: Any) -> None:
    for pid in sample_patients(15, needs="Procedure"):
        now = midpoint(pid)
        expected = {f"Procedure/{p['id']}" for p in of_type(pid, "Procedure")
                    if instant((p.get("performedPeriod") or {}).get("start") or p.get("performedDateTime")) <= now}
        result = await run("search_procedures", now, patient=pid, limit=100)
        assert len(result.rows) + result.truncated == len(expected)
        assert {r["ref"] for r in result.rows} <= expected


async def test_encounters_in_a_window(run: Any) -> None:
    for pid in sample_patients(15, needs="Encounter"):
        now = record_end(pid)
        since = now - timedelta(days=5 * 365)
        expected = sorted((instant(e["period"]["start"]), e["id"]) for e in of_type(pid, "Encounter")
                          if since <= instant(e["period"]["start"]) <= now)
        result = await run("search_encounters", now, patient=pid, since="-1825d", limit=100)
        shown = len(result.rows)
        assert [instant(r["start"]) for r in result.rows] == [t for t, _ in reversed(expected)][:shown], "newest first"
        assert {r["ref"] for r in result.rows} <= {f"Encounter/{i}" for _, i in expected}
        assert shown + result.truncated == len(expected)
    emergency = await run("search_encounters", record_end(PATIENT), patient=PATIENT, encounter_class="EMER", limit=100)
    assert {r["ref"] for r in emergency.rows} == {f"Encounter/{e['id']}" for e in of_type(PATIENT, "Encounter")
                                                   if e["class"]["code"] == "EMER"}


async def test_diagnostic_report_with_result_values(run: Any) -> None:
    now = record_end(PATIENT)
    reports = sorted(of_type(PATIENT, "DiagnosticReport"), key=lambda r: r["effectiveDateTime"])
    last = reports[-1]
    result = await run("search_diagnostic_reports", now, patient=PATIENT, code=code(last["code"]), results=True, limit=1)
    row = result.rows[0]
    assert row["display"] == display(last["code"])
    assert row["results"] == [f"Observation/{ref_id(r['reference'])}" for r in last["result"]]
    observations = {o["id"]: o for o in of_type(PATIENT, "Observation")}
    for ref in last["result"]:
        value = observations[ref_id(ref["reference"])]["valueQuantity"]["value"]
        assert f"{round(value, 3 if abs(value) < 1 else 2):g}" in result.text
    assert len(result.rows) + result.truncated == sum(1 for r in reports if code(r["code"]) == code(last["code"]))


async def test_allergies(run: Any) -> None:
    with_allergies = [pid for pid in sorted(records()) if of_type(pid, "AllergyIntolerance")]
    assert with_allergies
    for pid in with_allergies:
        now = record_end(pid)
        result = await run("search_allergies", now, patient=pid, limit=100)
        allergies = {f"AllergyIntolerance/{a['id']}": code(a["clinicalStatus"]) for a in of_type(pid, "AllergyIntolerance")}
        assert {r["ref"]: r["status"] for r in result.rows} == allergies
    before = await run("search_allergies", datetime(1900, 1, 1, tzinfo=UTC), patient=with_allergies[0])
    assert before.rows == [] and "no allergies recorded" in before.text


@pytest.mark.parametrize("tool_name", ["search_immunizations", "search_procedures", "search_encounters",
                                       "search_diagnostic_reports", "search_allergies"])
async def test_more_bad_arguments(run: Any, tool_name: str) -> None:
    now = record_end(PATIENT)
    missing = await run(tool_name, now, patient="Patient/not-there")
    assert missing.error and "not found" in missing.error
    over = await run(tool_name, now, patient=PATIENT, limit=101)
    assert over.error and "limit" in over.error and "Example" in over.error
    impossible = await run(tool_name, now, patient=PATIENT, until="2019-04-31")
    assert impossible.error and "April 2019 has 30 days" in impossible.error
