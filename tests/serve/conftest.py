"""Serve fixtures: the real service (uvicorn, SQLite checkpointer) in a thread, over the real embedded FHIR server.

The model is a ScriptedPolicy (a deterministic TEST POLICY, not a model) that reads, writes, then answers
citing what it read; expected values come from the packaged Synthea bundle, not from the service.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medagent.data import iter_bundles
from medagent.models.base import ModelRequest
from medagent.models.scripted import ScriptedPolicy
from medagent.serve.server import ServiceConfig, ServiceThread
from tests.agent.conftest import NOW, PATIENT, call, final

WEIGHT = "29463-7"  # LOINC Body Weight
BP = call("record_vital_sign", patient=PATIENT, vital="blood_pressure", systolic=128, diastolic=82,
          reason="nurse reading at the visit")
QUESTION = "What was the patient's last body weight? Then record today's blood pressure 128/82."


def bundle_resources(patient_id: str) -> list[dict[str, Any]]:
    """Every resource of one patient's packaged Synthea bundle (the ground truth)."""
    for _, bundle in iter_bundles():
        resources = [entry["resource"] for entry in bundle["entry"]]
        if any(r["resourceType"] == "Patient" and r["id"] == patient_id for r in resources):
            return resources
    raise LookupError(patient_id)


def latest_weight_in_bundle() -> dict[str, Any]:
    """The patient's last Body Weight observation on or before NOW, read from the bundle file."""
    weights = [r for r in bundle_resources(PATIENT) if r["resourceType"] == "Observation"
               and any(c.get("code") == WEIGHT for c in r["code"]["coding"]) and r["effectiveDateTime"] <= NOW]
    return max(weights, key=lambda r: r["effectiveDateTime"])


def tool_results(request: ModelRequest) -> list[str]:
    return [m.content for m in request.messages if m.role == "user" and m.content.startswith("[result of ")]


def read_write_answer(request: ModelRequest) -> dict[str, Any]:
    """Turn 1: read the last weight; turn 2: record BP (a write); turn 3: answer citing the weight read."""
    results = tool_results(request)
    if not results:
        return call("search_observations", patient=PATIENT, code=WEIGHT, latest=1)
    if len(results) == 1:
        return BP
    cited = re.findall(r"Observation/[A-Za-z0-9\-.]+", results[0])
    row = next((line for line in results[0].split("\n") if "Body Weight" in line), "")
    value = re.search(r"\| ([\d.]+ kg) \|", row)
    return final(f"Last body weight: {value.group(1) if value else 'not found'} on {row[:10]}. "
                 "Blood pressure 128/82 mmHg recorded.", *cited[:1])


def read_then_stall(request: ModelRequest) -> Any:
    """Reads once, then the 'model' never replies: the service is stopped mid-run."""
    if not tool_results(request):
        return call("search_observations", patient=PATIENT, code=WEIGHT, latest=1)

    async def never() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return final("unreachable")

    return never()


@pytest.fixture
def service_config(clean_fhir: str, tmp_path: Path) -> Callable[..., ServiceConfig]:
    """A config factory on the shared FHIR server (reset after the test) with a private checkpoint file."""

    def make(**overrides: Any) -> ServiceConfig:
        fields: dict[str, Any] = {"fhir_url": clean_fhir, "checkpoints": tmp_path / "checkpoints.sqlite", "port": 0,
                                  "approval": "ask", "model_label": "scripted test policy"}
        return ServiceConfig(**{**fields, **overrides})

    return make


@pytest.fixture
def service(service_config: Callable[..., ServiceConfig]) -> Iterator[ServiceThread]:
    with ServiceThread(service_config(), ScriptedPolicy(read_write_answer)) as running:
        yield running


def created_observations(fhir_url: str) -> list[dict[str, Any]]:
    """Observations the FHIR server says were created since its snapshot (its own $diff)."""
    changes = httpx.get(f"{fhir_url}/$diff", timeout=30).raise_for_status().json()["changes"]
    return [c for c in changes if c["resourceType"] == "Observation" and c["action"] == "create"]


def wait_for(url: str, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 60,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll a run view until the predicate holds (the test's only wait; no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        view = httpx.get(url, timeout=30, headers=headers).raise_for_status().json()
        if predicate(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"run did not reach the expected state: {view}")
        time.sleep(0.05)


def sse_events(url: str, *, stop: Callable[[str, dict[str, Any]], bool], timeout: float = 60,
               headers: dict[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Read a server-sent event stream (parsed by hand, as the wire format says) until ``stop`` holds."""
    import json

    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("GET", url, timeout=timeout, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name, data = "message", []
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                payload = json.loads("\n".join(data))
                events.append((name, payload))
                if stop(name, payload):
                    return events
                name, data = "message", []
    return events
