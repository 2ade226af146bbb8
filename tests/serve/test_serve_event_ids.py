"""Issue 25, item 5: a ``Last-Event-ID`` (or ``after``) that is not a plain step count is a 422, never a
stream that ends without ``done``. The reproduction: ``Last-Event-ID: ²`` and one of 5,000 digits raised a
ValueError inside the event generator."""

from __future__ import annotations

import httpx
import pytest

from medagent.serve.server import ServiceThread
from tests.agent.conftest import NOW, PATIENT
from tests.serve.conftest import QUESTION, sse_events


@pytest.mark.parametrize("value", ["\u00b2", "1" * 5000, "\u0663", "-1", "1e3", "12a"])
def test_a_bad_last_event_id_is_a_422(service: ServiceThread, value: str) -> None:
    started = httpx.post(f"{service.url}/api/runs", json={"question": QUESTION, "patient": PATIENT, "now": NOW},
                         timeout=30)
    run_id = started.json()["run_id"]
    for headers, params in (({"Last-Event-ID": value.encode()}, {}), ({}, {"after": value})):
        response = httpx.get(f"{service.url}/api/runs/{run_id}/events", headers=headers, params=params, timeout=30)
        assert response.status_code == 422, (value[:20], response.status_code, response.text[:300])
        assert response.json()["error"] == "invalid_query"
    events = sse_events(f"{service.url}/api/runs/{run_id}/events", stop=lambda name, _: name == "approval")
    assert events[-1][0] == "approval"  # the run itself goes on
