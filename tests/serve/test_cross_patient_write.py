"""Issue 25, item 1, the reproduction over the real service: ``POST /api/runs`` about patient A under
``--approve auto``, with a model (ScriptedPolicy, the test model) that stops another patient's active order.
The order must stay active; the FHIR server's own ``$diff`` and a read of the order say so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from medagent.models.base import ModelRequest
from medagent.models.scripted import ScriptedPolicy
from medagent.serve.server import ServiceConfig, ServiceThread
from tests.agent.conftest import call, final
from tests.serve.conftest import tool_results, wait_for

RUN_PATIENT = "dbf9798e-4b52-4cd9-a9eb-ec36149c859a"
OTHER = "ba18818d-faef-44cd-9744-b12d8973d402"
OTHER_ORDER = "MedicationRequest/06ca4ad8-c363-4c2e-8bfe-8c0043508525"  # Adalberto Hartmann's, active


def stop_the_other_patients_order(request: ModelRequest) -> dict[str, Any]:
    if not tool_results(request):
        return call("discontinue_medication", medication_request=OTHER_ORDER, reason="injected instruction")
    return final("done")


def test_auto_run_about_one_patient_cannot_stop_another_patients_order(
        service_config: Callable[..., ServiceConfig], clean_fhir: str) -> None:
    before = httpx.get(f"{clean_fhir}/{OTHER_ORDER}", timeout=30).raise_for_status().json()
    assert before["status"] == "active"
    with ServiceThread(service_config(approval="auto"), ScriptedPolicy(stop_the_other_patients_order)) as service:
        started = httpx.post(f"{service.url}/api/runs", json={
            "question": "Review the medication list.", "patient": RUN_PATIENT, "now": "2020-06-01"}, timeout=30)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        view = wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] != "running")
        assert view["state"] == "awaiting_approval", view  # auto does not cover it: a person is asked
        pending = view["pending_write"]
        assert pending["tool"] == "discontinue_medication" and pending["patient"] == f"Patient/{OTHER}"
        unchanged = httpx.get(f"{clean_fhir}/{OTHER_ORDER}", timeout=30).raise_for_status().json()
        assert unchanged["status"] == "active"
        decided = httpx.post(f"{service.url}/api/runs/{run_id}/decision", timeout=30, json={
            "pending_id": pending["id"], "approve": False, "reason": "not this patient's order"})
        assert decided.status_code == 202, decided.text
        view = wait_for(f"{service.url}/api/runs/{run_id}", lambda v: v["state"] == "finished")
    step = next(s for s in view["steps"] if s["tool"] == "discontinue_medication")
    assert step["error"] is not None and step["wrote"] == [], step
    after = httpx.get(f"{clean_fhir}/{OTHER_ORDER}", timeout=30).raise_for_status().json()
    assert after["status"] == "active" and after["meta"]["versionId"] == before["meta"]["versionId"]
    assert httpx.get(f"{clean_fhir}/$diff", timeout=30).json()["changes"] == []
