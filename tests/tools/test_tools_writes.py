"""Write tools on the real server: what lands in the EHR, idempotency, audit, read-only refusal, bad arguments.

Each test runs on the shared server and resets it to its loaded snapshot afterwards (``clean_fhir``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tools_expect import PATIENT, instant, of_type, patient, records

from medagent.fhir.resources import parse_resource
from medagent.tools import APPROVE_WRITES, ToolContext

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)


@pytest.fixture
def writer(clean_fhir: str, make_ctx: Callable[..., ToolContext]) -> ToolContext:
    return make_ctx(NOW, approval=APPROVE_WRITES, actor="medagent/test-model", run_id="run-1")


def diff(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/$diff", timeout=30).json()["changes"]


def audit_of(resource: dict[str, Any]) -> dict[str, str]:
    ext = next(e for e in resource["extension"] if e["url"] == "urn:medagent:audit")
    return {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in ext["extension"]}


async def test_blood_pressure_as_the_task_describes_it(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    result = await run("record_vital_sign", NOW, ctx=writer, patient=PATIENT, vital="blood_pressure", systolic=128,
                       diastolic=82, reason="measured at the visit")
    assert result.error is None and result.text.startswith("recorded Observation/")
    [change] = diff(clean_fhir)
    obs = change["after"]
    assert change["action"] == "create" and result.wrote == [f"Observation/{change['id']}"]
    parse_resource(obs)  # valid R4B
    assert obs["status"] == "final" and obs["subject"]["reference"] == f"Patient/{PATIENT}"
    assert obs["code"]["coding"][0] == {"system": "http://loinc.org", "code": "85354-9",
                                        "display": "Blood pressure panel with all children optional"}
    assert obs["category"][0]["coding"][0]["code"] == "vital-signs"
    parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in obs["component"]}
    assert parts["8480-6"]["value"] == 128 and parts["8462-4"]["value"] == 82
    assert parts["8480-6"]["unit"] == parts["8480-6"]["code"] == "mm[Hg]"
    assert instant(obs["effectiveDateTime"]) == NOW, "dated at the run's now, never the wall clock"
    tags = {t["system"]: t["code"] for t in obs["meta"]["tag"]}
    assert tags["urn:medagent:actor"] == "medagent/test-model" and tags["urn:medagent:run"] == "run-1"
    assert audit_of(obs) == {"actor": "medagent/test-model", "tool": "record_vital_sign", "run": "run-1",
                             "at": "2019-05-02T10:15:00+00:00", "reason": "measured at the visit"}
    assert [e.tool for e in writer.audit] == ["record_vital_sign"] and writer.audit[0].created


async def test_a_retried_write_creates_nothing_new(run: Any, writer: ToolContext, clean_fhir: str,
                                                   make_ctx: Callable[..., ToolContext]) -> None:
    args = {"patient": PATIENT, "vital": "heart_rate", "value": 72}
    first = await run("record_vital_sign", NOW, ctx=writer, **args)
    again = await run("record_vital_sign", NOW, ctx=writer, **args, reason="retry after a timeout")
    assert again.wrote == first.wrote and "already written by an identical earlier call" in again.text
    assert len(diff(clean_fhir)) == 1 and [e.created for e in writer.audit] == [True, False]
    other_run = make_ctx(NOW, approval=APPROVE_WRITES, run_id="run-2")
    third = await run("record_vital_sign", NOW, ctx=other_run, **args)
    assert third.wrote != first.wrote and len(diff(clean_fhir)) == 2
    changed = await run("record_vital_sign", NOW, ctx=writer, **{**args, "value": 73})
    assert changed.wrote != first.wrote and len(diff(clean_fhir)) == 3


async def test_units_are_converted_and_checked(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    weight = await run("record_vital_sign", NOW, ctx=writer, patient=PATIENT, vital="body_weight", value=180, unit="lb")
    [change] = diff(clean_fhir)
    assert change["after"]["valueQuantity"]["unit"] == "kg"
    assert change["after"]["valueQuantity"]["value"] == pytest.approx(81.6466, abs=1e-3) and weight.error is None
    cases = {
        "needs systolic and diastolic": {"vital": "blood_pressure", "systolic": 120},
        "must be below systolic": {"vital": "blood_pressure", "systolic": 80, "diastolic": 120},
        "not plausible": {"vital": "heart_rate", "value": 900},
        "is not accepted for body_weight": {"vital": "body_weight", "value": 80, "unit": "stone"},
        "heart_rate needs value": {"vital": "heart_rate"},
        "a measurement cannot be in the future": {"vital": "heart_rate", "value": 70, "effective": "+2h"},
        "Input should be 'blood_pressure'": {"vital": "mood", "value": 3},
    }
    for message, arguments in cases.items():
        result = await run("record_vital_sign", NOW, ctx=writer, patient=PATIENT, **arguments)
        assert result.error and message in result.error, (arguments, result.error)
    assert len(diff(clean_fhir)) == 1, "refused writes write nothing"


async def test_lab_observation(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    result = await run("record_observation", NOW, ctx=writer, patient=PATIENT, code="2339-0", value=105, unit="mg/dL",
                       effective="-2h")
    [change] = diff(clean_fhir)
    obs = change["after"]
    assert obs["code"]["coding"][0]["display"] == "Glucose", "the display the data uses for the code"
    assert obs["valueQuantity"] == {"value": 105, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    assert instant(obs["effectiveDateTime"]) == NOW - timedelta(hours=2) and result.error is None
    bad = await run("record_observation", NOW, ctx=writer, patient=PATIENT, code="glucose", value=1, unit="mg/dL")
    assert bad.error and "not a LOINC code" in bad.error
    both = await run("record_observation", NOW, ctx=writer, patient=PATIENT, code="2339-0", value=1, value_text="high")
    assert both.error and "exactly one of value" in both.error
    empty = await run("record_observation", NOW, ctx=writer, patient=PATIENT, code="2339-0", value_text="   ")
    assert empty.error and "invalid FHIR" in empty.error, "fhir.resources validation runs before sending"


async def test_potassium_and_magnesium_orders(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    potassium = await run("order_medication", NOW, ctx=writer, patient=PATIENT, code="40032-917-01", dose_value=40,
                          dose_unit="mEq", route="oral", reason="K 3.1")
    magnesium = await run("order_medication", NOW, ctx=writer, patient=PATIENT, code="0338-1715-40", system="ndc",
                          dose_value=2, dose_unit="g", route="IV", duration_value=2, duration_unit="hours",
                          rate_value=1, rate_unit="g/h")
    assert potassium.error is None and magnesium.error is None
    orders = {c["after"]["medicationCodeableConcept"]["coding"][0]["code"]: c["after"] for c in diff(clean_fhir)}
    k, mg = orders["40032-917-01"], orders["0338-1715-40"]
    for order in (k, mg):
        parse_resource(order)
        assert order["status"] == "active" and order["intent"] == "order"
        assert order["medicationCodeableConcept"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/ndc"
        assert instant(order["authoredOn"]) == NOW and order["requester"] == {"display": "medagent/test-model"}
    assert k["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 40
    assert k["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["unit"] == "mEq"
    assert k["dosageInstruction"][0]["route"]["coding"][0]["code"] == "26643006"
    assert mg["dosageInstruction"][0]["timing"]["repeat"] == {"duration": 2, "durationUnit": "h"}
    assert mg["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"]["unit"] == "g/h"
    assert mg["dosageInstruction"][0]["route"]["coding"][0]["code"] == "47625008"


async def test_medication_order_with_reason_and_bad_arguments(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    hypertension = next(c for c in of_type(PATIENT, "Condition") if c["code"]["coding"][0]["code"] == "38341003")
    ok = await run("order_medication", NOW, ctx=writer, patient=PATIENT, code="316049",
                   reason_reference=f"Condition/{hypertension['id']}", instructions="once daily")
    assert ok.error is None and "Hydrochlorothiazide 25 MG (RxNorm 316049)" in ok.text
    other = next(pid for pid in sorted(records()) if pid != PATIENT and of_type(pid, "Condition"))
    foreign = of_type(other, "Condition")[0]
    cases = {
        "not a valid rxnorm code": {"code": "hydrochlorothiazide"},
        "not a valid ndc code": {"code": "123", "system": "ndc"},
        "route 'intrathecal' unknown": {"code": "316049", "route": "intrathecal"},
        "dose_value and dose_unit go together": {"code": "316049", "dose_value": 5},
        "dose unit 'spoons' is not known": {"code": "316049", "dose_value": 5, "dose_unit": "spoons"},
        "duration_unit 'fortnight' unknown": {"code": "316049", "duration_value": 1, "duration_unit": "fortnight"},
        f"belongs to Patient/{other}": {"code": "316049", "reason_reference": f"Condition/{foreign['id']}"},
        "Input should be 'rxnorm', 'ndc'": {"code": "316049", "system": "snomed"},
    }
    for message, arguments in cases.items():
        result = await run("order_medication", NOW, ctx=writer, patient=PATIENT, **arguments)
        assert result.error and message in result.error, (arguments, result.error)
    assert len(diff(clean_fhir)) == 1


async def test_medication_order_may_cite_the_result_that_triggered_it(run: Any, writer: ToolContext,
                                                                      clean_fhir: str) -> None:
    potassium = next(o for o in of_type(PATIENT, "Observation") if o["code"]["coding"][0]["code"] == "6298-4")
    ok = await run("order_medication", NOW, ctx=writer, patient=PATIENT, code="40032-917-01", dose_value=40,
                   dose_unit="mEq", route="oral", reason_reference=f"Observation/{potassium['id']}")
    assert ok.error is None, ok.error
    (change,) = diff(clean_fhir)
    assert change["after"]["reasonReference"] == [{"reference": f"Observation/{potassium['id']}"}]
    other = next(pid for pid in sorted(records()) if pid != PATIENT and of_type(pid, "Observation"))
    foreign = of_type(other, "Observation")[0]
    bad = await run("order_medication", NOW, ctx=writer, patient=PATIENT, code="40032-917-01",
                    reason_reference=f"Observation/{foreign['id']}")
    assert bad.error and f"belongs to Patient/{other}" in bad.error
    assert len(diff(clean_fhir)) == 1


async def test_lab_order_next_morning_and_referral(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    lab = await run("order_service", NOW, ctx=writer, patient=PATIENT, code="2823-3", occurrence="tomorrow 08:00")
    note = "Situation: knee pain. Recommendation: orthopedic evaluation."
    referral = await run("order_service", NOW, ctx=writer, patient=PATIENT, code="183545006", kind="referral",
                         display="Referral to orthopedic service", note=note, priority="urgent")
    assert lab.error is None and referral.error is None
    requests = {c["after"]["code"]["coding"][0]["code"]: c["after"] for c in diff(clean_fhir)}
    order, ref = requests["2823-3"], requests["183545006"]
    assert order["code"]["coding"][0]["system"] == "http://loinc.org"
    assert instant(order["occurrenceDateTime"]) == datetime(2019, 5, 3, 8, tzinfo=UTC)
    assert ref["code"]["coding"][0]["system"] == "http://snomed.info/sct" and ref["note"][0]["text"] == note
    assert ref["priority"] == "urgent" and ref["category"][0]["coding"][0]["code"] == "3457005"
    for request in (order, ref):
        parse_resource(request)
        assert request["status"] == "active" and request["intent"] == "order" and instant(request["authoredOn"]) == NOW
    past = await run("order_service", NOW, ctx=writer, patient=PATIENT, code="2823-3", occurrence="2019-05-01")
    assert past.error and "is before now" in past.error
    wrong = await run("order_service", NOW, ctx=writer, patient=PATIENT, code="2823-3", system="snomed")
    assert wrong.error and "not a valid snomed code" in wrong.error


async def test_note(run: Any, writer: ToolContext, clean_fhir: str) -> None:
    result = await run("add_note", NOW, ctx=writer, patient=PATIENT, text="Feels well; continue the plan.", title="Visit")
    [change] = diff(clean_fhir)
    doc = change["after"]
    parse_resource(doc)
    assert doc["resourceType"] == "DocumentReference" and doc["type"]["coding"][0]["code"] == "11506-3"
    data = doc["content"][0]["attachment"]["data"]
    assert base64.b64decode(data).decode() == "Feels well; continue the plan."
    assert instant(doc["date"]) == NOW and "Feels well" in result.text
    empty = await run("add_note", NOW, ctx=writer, patient=PATIENT, text="")
    assert empty.error and "text" in empty.error


async def test_discontinue_medication(run: Any, writer: ToolContext, clean_fhir: str,
                                      make_ctx: Callable[..., ToolContext]) -> None:
    active = next(m for m in of_type(PATIENT, "MedicationRequest") if m["status"] == "active")
    ref = f"MedicationRequest/{active['id']}"
    stopped = await run("discontinue_medication", NOW, ctx=writer, medication_request=ref, reason="hypotension")
    assert stopped.error is None and stopped.wrote == [ref]
    [change] = diff(clean_fhir)
    assert change["action"] == "update" and change["after"]["status"] == "stopped"
    assert change["after"]["statusReason"] == {"text": "hypotension"}
    assert change["after"]["medicationCodeableConcept"] == change["before"]["medicationCodeableConcept"]
    again = await run("discontinue_medication", NOW, ctx=writer, medication_request=active["id"])
    assert again.error is None and again.wrote == [] and "already stopped" in again.text
    missing = await run("discontinue_medication", NOW, ctx=writer, medication_request="MedicationRequest/nope")
    assert missing.error and "not found" in missing.error
    before = instant(active["authoredOn"]) - timedelta(days=1)
    future = await run("discontinue_medication", before, ctx=make_ctx(before, approval=APPROVE_WRITES), medication_request=ref)
    assert future.error and "dated after now" in future.error
    assert len(diff(clean_fhir)) == 1


async def test_read_only_and_deceased_patients_are_refused(run: Any, clean_fhir: str,
                                                          make_ctx: Callable[..., ToolContext]) -> None:
    read_only = await run("add_note", NOW, patient=PATIENT, text="x")
    assert read_only.error and read_only.error.startswith("refused: read-only mode")
    dead = next(pid for pid in sorted(records()) if patient(pid).get("deceasedDateTime"))
    after_death = instant(patient(dead)["deceasedDateTime"]) + timedelta(days=1)
    refused = await run("record_vital_sign", after_death, ctx=make_ctx(after_death, approval=APPROVE_WRITES), patient=dead,
                        vital="heart_rate", value=60)
    assert refused.error and "died on" in refused.error
    unknown = await run("add_note", NOW, ctx=make_ctx(NOW, approval=APPROVE_WRITES), patient="nobody-here", text="x")
    assert unknown.error and "not found" in unknown.error
    assert diff(clean_fhir) == []
