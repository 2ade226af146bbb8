"""Writes pass the approval node: LangGraph interrupt and resume (ask), refusal (read-only), auto (benchmarks).

What is checked is the FHIR server's own diff, not the agent's say-so.
"""

from __future__ import annotations

from medagent.agent.graph import Agent
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, call, final

BP = call("record_vital_sign", patient=PATIENT, vital="blood_pressure", systolic=128, diastolic=82,
          reason="nurse reading")


def _agent(policy: ScriptedPolicy, registry: Registry, client: FhirClient, approval: str) -> Agent:
    return Agent(model=policy, registry=registry, client=client, approval=approval)  # type: ignore[arg-type]


async def _created_observations(client: FhirClient) -> list[dict]:
    return [c for c in await client.diff() if c["resourceType"] == "Observation" and c["action"] == "create"]


async def test_ask_pauses_on_interrupt_and_writes_only_after_approval(
        registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    agent = _agent(ScriptedPolicy([BP, final("recorded")]), registry, client, "ask")
    paused = await agent.run("Record BP 128/82", now=NOW, patient=PATIENT)
    assert paused.status == "running"
    assert paused.pending_approval is not None
    assert paused.pending_approval["tool"] == "record_vital_sign"
    assert paused.pending_approval["arguments"]["systolic"] == 128
    assert await _created_observations(client) == []  # nothing written while waiting

    done = await agent.resume(paused.run_id, approve=True)
    assert done.status == "answered"
    created = await _created_observations(client)
    assert len(created) == 1
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in created[0]["after"]["component"]}
    assert components == {"8480-6": 128, "8462-4": 82}
    assert created[0]["after"]["subject"]["reference"] == f"Patient/{PATIENT}"
    assert done.trace[0]["approval"] == "approved"


async def test_rejected_write_is_not_performed_and_the_model_is_told(
        registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    policy = ScriptedPolicy([BP, final("not recorded")])
    agent = _agent(policy, registry, client, "ask")
    paused = await agent.run("Record BP 128/82", now=NOW, patient=PATIENT)
    done = await agent.resume(paused.run_id, approve=False, reason="wrong patient")
    assert done.status == "answered"
    assert await _created_observations(client) == []
    assert "rejected by user: wrong patient" in policy.requests[-1].messages[-1].content


async def test_read_only_mode_refuses_writes(registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    policy = ScriptedPolicy([BP, final("could not record")])
    result = await _agent(policy, registry, client, "refuse").run("Record BP", now=NOW, patient=PATIENT)
    assert result.status == "answered"
    assert result.trace[0]["error"] == "write not performed (refused: read-only mode)"
    assert str(result.trace[0]["approval"]).startswith("refused")
    assert await client.diff() == []


async def test_auto_approval_writes_once(registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    result = await _agent(ScriptedPolicy([BP, final("recorded")]), registry, client, "auto").run(
        "Record BP", now=NOW, patient=PATIENT)
    assert result.trace[0]["approval"] == "auto-approved"
    assert len(await _created_observations(client)) == 1
