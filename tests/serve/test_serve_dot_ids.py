"""Issue 25, item 3 at the service: ``.`` and ``..`` are refused with a 4xx naming the argument.

The reproduction: ``GET /api/resources/Observation/%2e`` answered 200 with a searchset of every patient's
Observations, ``..`` a 502, and ``POST /api/runs {"patient": "."}`` started a run."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import httpx
import pytest

from medagent.serve.server import ServiceThread
from tests.agent.conftest import NOW


def raw_get(base_url: str, path: str) -> tuple[int, dict]:
    """GET with the path exactly as given (http.client resolves no dot segment)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/api/resources/Observation/%2e", "/api/resources/Observation/%2E%2E",
                                  "/api/resources/Patient/.."])
def test_a_dot_id_is_a_400_naming_the_id(service: ServiceThread, path: str) -> None:
    status, body = raw_get(service.url, path)
    assert status == 400, (status, body)
    assert body["error"] == "invalid_reference" and "not a FHIR id" in body["message"], body
    assert "entry" not in json.dumps(body)


@pytest.mark.parametrize("patient", [".", "..", "Patient/.", "a/b"])
def test_a_run_for_a_dot_patient_is_refused(service: ServiceThread, patient: str) -> None:
    response = httpx.post(f"{service.url}/api/runs", json={"question": "Age?", "patient": patient, "now": NOW},
                          timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_body" and "patient" in response.json()["message"]
    assert httpx.get(f"{service.url}/api/runs", timeout=30).json()["runs"] == []
