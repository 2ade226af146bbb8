"""Writes pass the approval node: LangGraph interrupt and resume (ask), refusal (read-only), auto (benchmarks).

What is checked is the FHIR server's own diff, not the agent's say-so.
"""

from __future__ import annotations

import asyncio

from medagent.agent.graph import Agent
from medagent.agent.state import Limits
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
    assert paused.pending_approval.tool == "record_vital_sign"
    assert paused.pending_approval.arguments["systolic"] == 128
    assert paused.pending_approval.patient == PATIENT == paused.pending_approval.context_patient
    assert await agent.pending(paused.run_id) == paused.pending_approval
    assert await _created_observations(client) == []  # nothing written while waiting

    done = await agent.resume(paused.run_id, approve=True)
    assert done.status == "answered"
    created = await _created_observations(client)
    assert len(created) == 1
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in created[0]["after"]["component"]}
    assert components == {"8480-6": 128, "8462-4": 82}
    assert created[0]["after"]["subject"]["reference"] == f"Patient/{PATIENT}"
    assert done.trace[0].approval == "approved"
    assert [(a.tool, a.reference, a.run_id) for a in done.audit] == [
        ("record_vital_sign", f"Observation/{created[0]['id']}", paused.run_id)]
    assert await agent.pending(paused.run_id) is None


async def test_rejected_write_is_not_performed_and_the_model_is_told(
        registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    policy = ScriptedPolicy([BP, final("not recorded")])
    agent = _agent(policy, registry, client, "ask")
    paused = await agent.run("Record BP 128/82", now=NOW, patient=PATIENT)
    done = await agent.resume(paused.run_id, approve=False, reason="wrong patient")
    assert done.status == "answered"
    assert await _created_observations(client) == []
    assert "rejected by user: wrong patient" in policy.requests[-1].messages[-1].content
    assert done.trace[0].approval == "rejected by user: wrong patient" and done.audit == []


async def test_read_only_mode_refuses_writes(registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    policy = ScriptedPolicy([BP, final("could not record")])
    result = await _agent(policy, registry, client, "refuse").run("Record BP", now=NOW, patient=PATIENT)
    assert result.status == "answered"
    assert result.trace[0].approval == "refused: read-only mode"  # recorded as refused, not approved
    assert (result.trace[0].error or "").startswith("refused: read-only mode")
    assert "read-only mode" in policy.requests[-1].messages[-1].content  # the model is told
    assert await client.diff() == [] and result.audit == []


async def test_auto_approval_writes_once(registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    result = await _agent(ScriptedPolicy([BP, final("recorded")]), registry, client, "auto").run(
        "Record BP", now=NOW, patient=PATIENT)
    assert result.trace[0].approval == "auto-approved"
    created = await _created_observations(client)
    assert len(created) == 1
    assert [a.reference for a in result.audit] == [f"Observation/{created[0]['id']}"]


async def test_time_waiting_for_a_reviewer_does_not_count_against_the_run_limit(
        registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    # a 2-second run limit and a reviewer who takes 3 seconds: the run still answers (it was the
    # reviewer's time, not the agent's); counting the wait would end it with status "timeout"
    agent = Agent(model=ScriptedPolicy([BP, final("recorded")]), registry=registry, client=client,  # type: ignore[arg-type]
                  limits=Limits(max_steps=10, timeout_s=2.0), approval="ask")
    paused = await agent.run("Record BP 128/82", now=NOW, patient=PATIENT)
    assert paused.pending_approval is not None
    await asyncio.sleep(3.0)
    done = await agent.resume(paused.run_id, approve=True)
    assert done.status == "answered", done.error
    assert len(await _created_observations(client)) == 1
