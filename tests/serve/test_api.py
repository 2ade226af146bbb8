"""The serve API over real HTTP: start, stream, approve, reject, bad input, restart and resume from checkpoints.

What was written is checked in the FHIR server's own $diff; expected values come from the Synthea bundle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest

from medagent.models.scripted import ScriptedPolicy
from medagent.serve.server import AgentService, ServiceConfig, ServiceThread
from tests.agent.conftest import NOW, PATIENT
from tests.serve.conftest import (
    QUESTION,
    bundle_resources,
    created_observations,
    latest_weight_in_bundle,
    read_then_stall,
    read_write_answer,
    sse_events,
    wait_for,
)


def _start(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/api/runs", json={"question": QUESTION, "patient": PATIENT, "now": NOW, **body},
                      timeout=30)


def _bp_components(observation: dict) -> dict[str, float]:
    return {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in observation["component"]}


def test_start_stream_approve_writes_once_and_answers_with_citation(service: ServiceThread, clean_fhir: str) -> None:
    started = _start(service.url)
    assert started.status_code == 202
    run = started.json()
    assert run["state"] == "running" and run["patient"] == PATIENT and run["now"] == NOW

    events = sse_events(f"{service.url}/api/runs/{run['run_id']}/events", stop=lambda name, _: name == "approval")
    steps = [data for name, data in events if name == "step"]
    assert [s["tool"] for s in steps] == ["search_observations"]
    weight = latest_weight_in_bundle()
    assert f"Observation/{weight['id']}" in steps[0]["references"]
    assert any(name == "status" for name, _ in events)
    calls = [(name, data.get("tool")) for name, data in events if name in ("action", "step", "approval")]
    assert calls == [("action", "search_observations"), ("step", "search_observations"),
                     ("action", "record_vital_sign"), ("approval", "record_vital_sign")]
    assert [data["step"] for name, data in events if name == "action"] == [1, 2]
    pending = events[-1][1]
    assert pending["tool"] == "record_vital_sign"
    assert (pending["arguments"]["systolic"], pending["arguments"]["diastolic"]) == (128, 82)
    assert pending["patient"] == f"Patient/{PATIENT}"
    preview = pending["preview"]  # what approving writes: the Observation itself, not only the arguments
    assert preview["action"] == "create" and preview["error"] is None
    assert preview["resource"]["resourceType"] == "Observation" and "id" not in preview["resource"]
    assert preview["resource"]["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert preview["resource"]["code"]["coding"][0]["code"] == "85354-9"  # LOINC BP panel
    assert _bp_components(preview["resource"]) == {"8480-6": 128, "8462-4": 82}
    assert "128/82 mm[Hg]" in preview["summary"]
    view = httpx.get(f"{service.url}/api/runs/{run['run_id']}", timeout=30).json()
    assert view["pending_write"]["preview"] == preview  # the run view carries the same preview
    assert created_observations(clean_fhir) == []  # nothing written while waiting (the preview neither)

    decided = httpx.post(f"{service.url}/api/runs/{run['run_id']}/decision",
                         json={"pending_id": pending["id"], "approve": True}, timeout=30)
    assert decided.status_code == 202
    rest = sse_events(f"{service.url}/api/runs/{run['run_id']}/events", stop=lambda name, _: name == "done",
                      headers={"Last-Event-ID": "1"})  # resumes after the one step already seen
    assert [(n, d.get("tool")) for n, d in rest if n in ("action", "step")] == [  # the unfinished step's action
        ("action", "record_vital_sign"), ("step", "record_vital_sign"), ("step", "final_answer")]  # comes again
    rest_steps = [data for name, data in rest if name == "step"]
    assert [s["tool"] for s in rest_steps] == ["record_vital_sign", "final_answer"]
    assert rest_steps[0]["approval"] == "approved"
    done = rest[-1][1]
    assert done["state"] == "finished" and done["status"] == "answered"
    assert done["citations"] == [f"Observation/{weight['id']}"]
    assert done["prompt_tokens"] > 0 and done["completion_tokens"] > 0

    created = created_observations(clean_fhir)
    assert len(created) == 1
    assert _bp_components(created[0]["after"]) == {"8480-6": 128, "8462-4": 82}
    assert created[0]["after"]["subject"]["reference"] == f"Patient/{PATIENT}"
    assert rest_steps[0]["wrote"] == [f"Observation/{created[0]['after']['id']}"]
    written = httpx.get(f"{clean_fhir}/Observation/{created[0]['after']['id']}", timeout=30).raise_for_status().json()
    assert _without_server_fields(written) == _without_server_fields(preview["resource"]), "written == previewed"


def _without_server_fields(resource: dict) -> dict:
    """A resource less what the FHIR server assigns (id, meta.versionId, meta.lastUpdated)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    return {**{k: v for k, v in resource.items() if k != "id"}, "meta": meta}


def test_rejected_write_is_not_performed(service: ServiceThread, clean_fhir: str) -> None:
    run_id = _start(service.url).json()["run_id"]
    view = wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "awaiting_approval")
    answer = httpx.post(f"{service.url}/api/runs/{run_id}/decision", timeout=30,
                        json={"pending_id": view["pending_write"]["id"], "approve": False, "reason": "wrong cuff size"})
    assert answer.status_code == 202
    done = wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "finished")
    assert done["status"] == "answered"
    assert done["steps"][1]["approval"] == "rejected by user: wrong cuff size"
    assert "was not approved" in done["steps"][1]["error"]
    assert created_observations(clean_fhir) == []


def test_second_approval_of_the_same_write_is_refused_and_nothing_is_written_twice(
        service: ServiceThread, clean_fhir: str) -> None:
    run_id = _start(service.url).json()["run_id"]
    view = wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "awaiting_approval")
    decision = {"pending_id": view["pending_write"]["id"], "approve": True}

    async def twice() -> list[httpx.Response]:  # two clicks at once
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
            return list(await asyncio.gather(*(http.post(f"/api/runs/{run_id}/decision", json=decision)
                                               for _ in range(2))))

    statuses = sorted(r.status_code for r in asyncio.run(twice()))
    assert statuses == [202, 409]
    wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "finished")
    again = httpx.post(f"{service.url}/api/runs/{run_id}/decision", json=decision, timeout=30)
    assert again.status_code == 409
    assert again.json()["error"] == "already_decided"
    assert decision["pending_id"] in again.json()["message"]
    assert len(created_observations(clean_fhir)) == 1


def test_bad_input_gets_a_clear_error_and_starts_nothing(service: ServiceThread, clean_fhir: str) -> None:
    unknown = _start(service.url, patient="no-such-patient-0000")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_patient"
    assert "no-such-patient-0000" in unknown.json()["message"]

    malformed = _start(service.url, now="yesterday-ish")
    assert malformed.status_code == 422
    assert malformed.json()["error"] == "invalid_body"
    assert "now" in malformed.json()["message"] and "yesterday-ish" in malformed.json()["message"]

    empty = _start(service.url, question="   ")
    assert empty.status_code == 422 and "question" in empty.json()["message"]
    extra = _start(service.url, patinet=PATIENT)
    assert extra.status_code == 422 and "patinet" in extra.json()["message"]
    not_json = httpx.post(f"{service.url}/api/runs", content=b"{question", timeout=30,
                          headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_json"
    form = httpx.post(f"{service.url}/api/runs", data={"question": "x"}, timeout=30)
    assert form.status_code == 415

    assert httpx.get(f"{service.url}/api/runs", timeout=30).json()["runs"] == []  # nothing was started
    missing = httpx.get(f"{service.url}/api/runs/00000000-0000-0000-0000-000000000000", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_run"
    no_id = httpx.post(f"{service.url}/api/runs/x/decision", json={"approve": True}, timeout=30)
    assert no_id.status_code == 422 and "pending_id" in no_id.json()["message"]
    assert created_observations(clean_fhir) == []


def test_pending_write_survives_a_restart_and_is_approved_by_the_new_process(
        service_config: Callable[..., ServiceConfig], clean_fhir: str) -> None:
    config = service_config()
    with ServiceThread(config, ScriptedPolicy(read_write_answer)) as first:
        run_id = _start(first.url).json()["run_id"]
        wait_for(f"{first.url}/api/runs/{run_id}", lambda v: v["state"] == "awaiting_approval")
    with ServiceThread(config, ScriptedPolicy(read_write_answer)) as second:
        listed = httpx.get(f"{second.url}/api/runs", timeout=30).json()["runs"]
        assert [(r["run_id"], r["state"], r["question"]) for r in listed] == [(run_id, "awaiting_approval", QUESTION)]
        view = httpx.get(f"{second.url}/api/runs/{run_id}", timeout=30).json()
        assert view["pending_write"]["tool"] == "record_vital_sign"
        httpx.post(f"{second.url}/api/runs/{run_id}/decision", timeout=30,
                   json={"pending_id": view["pending_write"]["id"], "approve": True}).raise_for_status()
        done = wait_for(f"{second.url}/api/runs/{run_id}", lambda v: v["state"] == "finished")
    assert done["status"] == "answered"
    assert [s["tool"] for s in done["steps"]] == ["search_observations", "record_vital_sign", "final_answer"]
    assert len(created_observations(clean_fhir)) == 1


def test_run_stopped_mid_step_resumes_from_its_checkpoint_after_restart(
        service_config: Callable[..., ServiceConfig], clean_fhir: str) -> None:
    config = service_config()
    with ServiceThread(config, ScriptedPolicy(read_then_stall)) as first:
        run_id = _start(first.url).json()["run_id"]
        wait_for(f"{first.url}/api/runs/{run_id}", lambda v: len(v["steps"]) == 1)
    with ServiceThread(config, ScriptedPolicy(read_write_answer)) as second:
        view = httpx.get(f"{second.url}/api/runs/{run_id}", timeout=30).json()
        assert view["state"] == "interrupted"
        not_pending = httpx.post(f"{second.url}/api/runs/{run_id}/decision", timeout=30,
                                 json={"pending_id": "x", "approve": True})
        assert not_pending.status_code == 409
        assert httpx.post(f"{second.url}/api/runs/{run_id}/resume", timeout=30).status_code == 202
        view = wait_for(f"{second.url}/api/runs/{run_id}", lambda v: v["state"] == "awaiting_approval")
        again = httpx.post(f"{second.url}/api/runs/{run_id}/resume", timeout=30)
        assert again.status_code == 409 and "awaiting_approval" in again.json()["message"]
        httpx.post(f"{second.url}/api/runs/{run_id}/decision", timeout=30,
                   json={"pending_id": view["pending_write"]["id"], "approve": True}).raise_for_status()
        done = wait_for(f"{second.url}/api/runs/{run_id}", lambda v: v["state"] == "finished")
    assert [s["tool"] for s in done["steps"]] == ["search_observations", "record_vital_sign", "final_answer"]
    assert len(created_observations(clean_fhir)) == 1


def test_patient_picker_and_cited_resource_come_from_the_fhir_server(service: ServiceThread) -> None:
    patient = next(r for r in bundle_resources(PATIENT) if r["resourceType"] == "Patient")
    family = patient["name"][0]["family"]
    rows = httpx.get(f"{service.url}/api/patients", params={"q": family, "now": NOW}, timeout=30).json()["patients"]
    mine = next(r for r in rows if r["id"] == PATIENT)
    assert mine["birth_date"] == patient["birthDate"] and family in mine["name"]
    assert all(family.lower() in r["name"].lower() for r in rows)

    weight = latest_weight_in_bundle()
    view = httpx.get(f"{service.url}/api/resources/Observation/{weight['id']}", params={"now": NOW}, timeout=30).json()
    assert view["resource"]["id"] == weight["id"]
    assert view["resource"]["valueQuantity"]["value"] == weight["valueQuantity"]["value"]
    assert "Body Weight" in view["summary"] and f"Observation/{weight['id']}" in view["summary"]
    bad = httpx.get(f"{service.url}/api/resources/Observation/a%20b", timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_reference"
    gone = httpx.get(f"{service.url}/api/resources/Observation/does-not-exist", timeout=30)
    assert gone.status_code == 404 and "Observation/does-not-exist" in gone.json()["message"]


def test_openapi_schema_describes_every_api_route(service: ServiceThread) -> None:
    from openapi_spec_validator import validate

    spec = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    validate(spec)  # against the official OpenAPI 3.1 schema
    expected = {("post", "/api/runs"), ("get", "/api/runs"), ("get", "/api/runs/{run_id}"),
                ("get", "/api/runs/{run_id}/events"), ("post", "/api/runs/{run_id}/decision"),
                ("post", "/api/runs/{run_id}/resume"), ("get", "/api/patients"),
                ("get", "/api/resources/{kind}/{id}"), ("get", "/api/info")}
    assert {(m, p) for p, ops in spec["paths"].items() for m in ops} == expected
    schemas = spec["components"]["schemas"]
    text = str(spec)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref
    assert "pending_id" in schemas["Decision"]["required"]


def test_token_required_beyond_loopback_and_the_ui_session_never_holds_the_token(
        service_config: Callable[..., ServiceConfig]) -> None:
    with pytest.raises(ValueError, match="refusing to bind 0.0.0.0"):
        AgentService(service_config(host="0.0.0.0"), ScriptedPolicy([]))
    token = "t0ken-for-the-serve-test-1234"
    with ServiceThread(service_config(token=token), ScriptedPolicy(read_write_answer)) as svc:
        assert httpx.get(f"{svc.url}/api/runs", timeout=30).status_code == 401
        assert httpx.get(f"{svc.url}/api/runs", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        ok = httpx.get(f"{svc.url}/api/runs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert ok.status_code == 200
        page = httpx.get(f"{svc.url}/", timeout=30)
        assert page.status_code == 200 and token not in page.text
        with httpx.Client(base_url=svc.url, timeout=30) as browser_like:
            assert browser_like.post("/api/session", json={"token": "nope"}).status_code == 401
            login = browser_like.post("/api/session", json={"token": token})
            assert login.status_code == 200
            cookie = login.headers["set-cookie"]
            assert token not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert browser_like.get("/api/runs").status_code == 200
            assert token not in browser_like.get("/api/info").text
        evil_host = httpx.get(f"{svc.url}/api/health", headers={"Host": "attacker.example"}, timeout=30)
        assert evil_host.status_code == 403  # loopback bind: Host allow-list against DNS rebinding (the guard)


def test_request_logs_carry_run_ids_not_patient_data(service: ServiceThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="medagent.serve")
    run_id = _start(service.url).json()["run_id"]
    view = wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "awaiting_approval")
    httpx.post(f"{service.url}/api/runs/{run_id}/decision", timeout=30,
               json={"pending_id": view["pending_write"]["id"], "approve": False}).raise_for_status()
    wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "finished")
    httpx.get(f"{service.url}/api/patients", params={"q": "Hartmann"}, timeout=30)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("medagent.serve"))
    assert f"run={run_id}" in logged and "GET /api/runs/{run_id} 200" in logged
    for private in (PATIENT, "Hartmann", "Adalberto", "body weight", "128"):
        assert private not in logged


def test_a_run_that_crashes_is_reported_with_its_error_and_the_service_keeps_serving(
        service_config: Callable[..., ServiceConfig], clean_fhir: str) -> None:
    def broken(request: object) -> dict:
        raise RuntimeError("backend exploded")

    with ServiceThread(service_config(), ScriptedPolicy(broken)) as svc:
        run_id = _start(svc.url).json()["run_id"]
        view = wait_for(f"{svc.url}/api/runs/{run_id}", lambda v: v["state"] != "running")
        assert view["state"] == "interrupted"  # resumable from its last checkpoint once the cause is fixed
        assert "RuntimeError: backend exploded" in view["error"]
        events = sse_events(f"{svc.url}/api/runs/{run_id}/events", stop=lambda name, _: name == "done")
        assert events[-1][1]["error"] == view["error"]
        assert httpx.get(f"{svc.url}/api/runs", timeout=30).json()["runs"][0]["run_id"] == run_id
    assert created_observations(clean_fhir) == []
