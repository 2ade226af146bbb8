"""Write previews on the real server: the exact resource each write tool would send, and nothing sent.

Expected fields come from the hand-made arguments and the bundle files (tools_expect); "nothing written"
from the server's ``$diff`` and ``_history``. Each test resets the shared server afterwards (``clean_fhir``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tools_expect import PATIENT, instant, of_type, patient, records, ref_id

from medagent import cli
from medagent.fhir.resources import parse_resource
from medagent.tools import APPROVE_WRITES, ESCALATE_WRITES, ToolContext
from medagent.tools.registry import Registry

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)
SERVER_ASSIGNED = ("id",)
SERVER_META = ("versionId", "lastUpdated")


@pytest.fixture
def writer(clean_fhir: str, make_ctx: Callable[..., ToolContext]) -> ToolContext:
    return make_ctx(NOW, approval=APPROVE_WRITES, actor="medagent/test-model", run_id="run-preview")


def diff(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/$diff", timeout=30).json()["changes"]


def versions(url: str, reference: str) -> int:
    return len(httpx.get(f"{url}/{reference}/_history", timeout=30).json().get("entry", []))


def without_server_fields(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k not in SERVER_ASSIGNED}
    meta = {k: v for k, v in (out.get("meta") or {}).items() if k not in SERVER_META}
    return {**out, "meta": meta}


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["system"]: t["code"] for t in resource["meta"]["tag"]}


async def test_vital_sign_preview_is_what_is_then_written(registry: Registry, writer: ToolContext,
                                                         clean_fhir: str) -> None:
    args = {"patient": PATIENT, "vital": "blood_pressure", "systolic": 142, "diastolic": 91, "reason": "clinic visit"}
    preview = await registry.preview(writer, "record_vital_sign", args)
    assert preview.action == "create" and preview.error is None and preview.reference is None
    obs = preview.resource
    assert obs is not None and "id" not in obs
    parse_resource(obs)
    assert obs["subject"] == {"reference": f"Patient/{PATIENT}"} and obs["status"] == "final"
    assert obs["code"]["coding"][0]["system"] == "http://loinc.org" and obs["code"]["coding"][0]["code"] == "85354-9"
    parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
    assert parts == {"8480-6": 142, "8462-4": 91}
    assert instant(obs["effectiveDateTime"]) == NOW
    assert tags(obs) == {"urn:medagent:actor": "medagent/test-model", "urn:medagent:run": "run-preview"}
    assert "142/91 mm[Hg]" in preview.summary and preview.summary.endswith("new Observation")
    assert diff(clean_fhir) == [] and writer.audit == [], "a preview writes nothing and audits nothing"

    written = await registry.call("record_vital_sign", args, writer)
    assert written.error is None
    [change] = diff(clean_fhir)
    assert without_server_fields(change["after"]) == without_server_fields(obs), "written == previewed"

    again = await registry.preview(writer, "record_vital_sign", args)
    assert again.action == "none" and again.reference == f"Observation/{change['id']}"
    assert "nothing new would be written" in again.summary and len(diff(clean_fhir)) == 1


async def test_observation_preview_uses_the_records_display(registry: Registry, writer: ToolContext,
                                                             clean_fhir: str) -> None:
    glucose = next(o for o in of_type(PATIENT, "Observation") if o["code"]["coding"][0]["code"] == "2339-0")
    preview = await registry.preview(writer, "record_observation", {"patient": PATIENT, "code": "2339-0",
                                                                    "value": 182, "unit": "mg/dL", "effective": "-1h"})
    obs = preview.resource
    assert preview.action == "create" and obs is not None
    assert obs["code"]["coding"][0] == {"system": "http://loinc.org", "code": "2339-0",
                                        "display": glucose["code"]["coding"][0]["display"]}
    assert obs["valueQuantity"] == {"value": 182, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                                    "code": "mg/dL"}
    assert instant(obs["effectiveDateTime"]) == NOW - timedelta(hours=1)
    future = await registry.preview(writer, "record_observation", {"patient": PATIENT, "code": "2339-0",
                                                                   "value": 1, "unit": "mg/dL", "effective": "+1h"})
    ran = await registry.call("record_observation", {"patient": PATIENT, "code": "2339-0", "value": 1,
                                                     "unit": "mg/dL", "effective": "+1h"}, writer)
    assert future.action == "error" and future.error == ran.error and "cannot be in the future" in ran.error
    for arguments, message in (({"patient": PATIENT, "code": "2339-0", "value_text": "   "}, "invalid FHIR"),
                               ({"patient": "nobody-here", "code": "2339-0", "value_text": "high"}, "not found"),
                               ({"patient": PATIENT, "code": "glucose", "value_text": "high"}, "not a LOINC code")):
        previewed = await registry.preview(writer, "record_observation", arguments)
        ran = await registry.call("record_observation", arguments, writer)
        assert previewed.action == "error" and previewed.error == ran.error and message in ran.error, arguments
    assert diff(clean_fhir) == [] and writer.audit == []


async def test_medication_order_preview_with_reason_and_the_same_errors(registry: Registry, writer: ToolContext,
                                                                        clean_fhir: str) -> None:
    hypertension = next(c for c in of_type(PATIENT, "Condition") if c["code"]["coding"][0]["code"] == "38341003")
    hctz = next(m for m in of_type(PATIENT, "MedicationRequest")
                if m["medicationCodeableConcept"]["coding"][0]["code"] == "316049")
    args = {"patient": PATIENT, "code": "316049", "dose_value": 25, "dose_unit": "mg", "route": "oral",
            "instructions": "once daily", "reason_reference": f"Condition/{hypertension['id']}"}
    preview = await registry.preview(writer, "order_medication", args)
    order = preview.resource
    assert preview.action == "create" and order is not None
    parse_resource(order)
    assert order["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert order["status"] == "active" and order["intent"] == "order" and instant(order["authoredOn"]) == NOW
    assert order["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "316049",
        "display": hctz["medicationCodeableConcept"]["coding"][0]["display"]}
    assert order["reasonReference"] == [{"reference": f"Condition/{hypertension['id']}"}]
    dosage = order["dosageInstruction"][0]
    assert dosage["text"] == "once daily" and dosage["route"]["coding"][0]["code"] == "26643006"
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 25
    assert order["requester"] == {"display": "medagent/test-model"}

    other = next(pid for pid in sorted(records()) if pid != PATIENT and of_type(pid, "Condition"))
    foreign = {**args, "reason_reference": f"Condition/{of_type(other, 'Condition')[0]['id']}"}
    wrong = await registry.preview(writer, "order_medication", foreign)
    ran = await registry.call("order_medication", foreign, writer)
    assert wrong.action == "error" and wrong.error == ran.error and f"belongs to Patient/{other}" in wrong.error
    bad = await registry.preview(writer, "order_medication", {**args, "code": "hydrochlorothiazide"})
    assert bad.action == "error" and bad.error is not None and "not a valid rxnorm code" in bad.error
    assert diff(clean_fhir) == []


async def test_service_order_preview(registry: Registry, writer: ToolContext, clean_fhir: str) -> None:
    preview = await registry.preview(writer, "order_service", {"patient": PATIENT, "code": "2823-3",
                                                               "occurrence": "tomorrow 08:00", "priority": "urgent"})
    request = preview.resource
    assert preview.action == "create" and request is not None
    parse_resource(request)
    assert request["code"]["coding"][0]["system"] == "http://loinc.org" and request["code"]["coding"][0]["code"] == "2823-3"
    assert instant(request["occurrenceDateTime"]) == datetime(2019, 5, 3, 8, tzinfo=UTC)
    assert request["priority"] == "urgent" and request["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert request["category"][0]["coding"][0]["code"] == "108252007"
    past = await registry.preview(writer, "order_service", {"patient": PATIENT, "code": "2823-3",
                                                            "occurrence": "2019-05-01"})
    assert past.action == "error" and past.error is not None and "is before now" in past.error
    assert diff(clean_fhir) == []


async def test_note_preview(registry: Registry, writer: ToolContext, clean_fhir: str) -> None:
    text = "Seen for follow-up; blood pressure above goal, plan to recheck in two weeks."
    preview = await registry.preview(writer, "add_note", {"patient": PATIENT, "text": text, "title": "Follow-up",
                                                          "note_type": "progress_note"})
    doc = preview.resource
    assert preview.action == "create" and doc is not None
    parse_resource(doc)
    assert doc["resourceType"] == "DocumentReference" and doc["type"]["coding"][0]["code"] == "11506-3"
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == text
    assert doc["description"] == "Follow-up" and doc["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert diff(clean_fhir) == []


async def test_discontinue_preview_is_the_resource_after_the_update(registry: Registry, writer: ToolContext,
                                                                    clean_fhir: str) -> None:
    active = next(m for m in of_type(PATIENT, "MedicationRequest") if m["status"] == "active")
    ref = f"MedicationRequest/{active['id']}"
    history = versions(clean_fhir, ref)
    args = {"medication_request": ref, "reason": "symptomatic hypotension"}
    preview = await registry.preview(writer, "discontinue_medication", args)
    after = preview.resource
    assert preview.action == "update" and preview.reference == ref and after is not None
    assert after["id"] == active["id"] and after["status"] == "stopped"
    assert after["statusReason"] == {"text": "symptomatic hypotension"}
    assert after["medicationCodeableConcept"] == active["medicationCodeableConcept"]
    assert after["subject"] == {"reference": f"Patient/{ref_id(active['subject']['reference'])}"}
    assert instant(after["authoredOn"]) == instant(active["authoredOn"])
    assert tags(after)["urn:medagent:run"] == "run-preview"
    assert diff(clean_fhir) == [] and versions(clean_fhir, ref) == history, "no new version"

    stopped = await registry.call("discontinue_medication", args, writer)
    assert stopped.error is None
    [change] = diff(clean_fhir)
    assert without_server_fields(change["after"]) == without_server_fields(after), "written == previewed"

    again = await registry.preview(writer, "discontinue_medication", args)
    assert again.action == "none" and again.reference == ref and "already stopped" in again.summary
    missing = await registry.preview(writer, "discontinue_medication", {"medication_request": "MedicationRequest/nope"})
    assert missing.action == "error" and missing.error is not None and "not found" in missing.error
    assert len(diff(clean_fhir)) == 1


async def test_preview_refusals_and_review(registry: Registry, clean_fhir: str,
                                           make_ctx: Callable[..., ToolContext]) -> None:
    dead = next(pid for pid in sorted(records()) if patient(pid).get("deceasedDateTime"))
    after_death = instant(patient(dead)["deceasedDateTime"]) + timedelta(days=1)
    died = await registry.preview(make_ctx(after_death), "record_vital_sign",
                                  {"patient": dead, "vital": "heart_rate", "value": 60})
    assert died.action == "error" and died.error is not None and "died on" in died.error
    invalid = await registry.preview(make_ctx(NOW), "record_vital_sign", {"patient": PATIENT, "vital": "heart_rate"})
    assert invalid.action == "error" and invalid.error is not None and "needs value" in invalid.error
    with pytest.raises(ValueError, match="does not write"):
        await registry.preview(make_ctx(NOW), "search_observations", {"patient": PATIENT})

    asked = await registry.review("add_note", {"patient": PATIENT, "text": "Doing well."},
                                  make_ctx(NOW, approval=ESCALATE_WRITES))
    assert asked is not None
    request, decision = asked
    assert decision.verdict == "escalate" and request.preview is not None and request.preview.action == "create"
    assert request.preview.resource is not None and request.preview.resource["subject"]["reference"] == f"Patient/{PATIENT}"
    with cli.console.capture() as shown:  # the CLI's --approve ask reviewer prints the same preview
        cli.show_pending_write(request)
    printed = shown.get()
    assert printed.startswith("The agent wants to write: add_note") and "create: " in printed
    assert '"code": "11506-3"' in printed and f'"reference": "Patient/{PATIENT}"' in printed
    auto = await registry.review("add_note", {"patient": PATIENT, "text": "Doing well."},
                                 make_ctx(NOW, approval=APPROVE_WRITES, patient=PATIENT))
    assert auto is not None and auto[1].verdict == "approve" and auto[0].preview is None, "no one to show it to"
    assert diff(clean_fhir) == []
