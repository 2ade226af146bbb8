"""The agent's loop rules, seen from outside (what Agent.run returns and what the model was asked):
a repeated call means the same tool with the same arguments, not just the same tool; refuse mode
says "refused" in the trace, never "approved", and the server holds no write."""

from __future__ import annotations

from medagent.agent.graph import Agent
from medagent.agent.state import Limits
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, call, final

BP = call("record_vital_sign", patient=PATIENT, vital="blood_pressure", systolic=128, diastolic=82,
          reason="nurse reading")


def agent(policy: ScriptedPolicy, registry: Registry, client: FhirClient, approval: str = "auto") -> Agent:
    return Agent(model=policy, registry=registry, client=client, limits=Limits(max_steps=10),  # type: ignore[arg-type]
                 approval=approval)  # type: ignore[arg-type]


def offered_tools(schema: dict) -> list[str]:
    return sorted(option["properties"]["tool"]["const"] for option in schema["anyOf"])


async def test_same_tool_with_other_arguments_is_not_a_repeat(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([
        call("search_observations", patient=PATIENT, text="hemoglobin a1c", latest=1),
        call("search_observations", patient=PATIENT, text="glucose", latest=1),
        call("get_patient", patient=PATIENT),
        final("done"),
    ])
    result = await agent(policy, registry, client).run("A1c and glucose?", now=NOW, patient=PATIENT)
    assert result.status == "answered"
    assert [s.tool for s in result.trace] == ["search_observations", "search_observations", "get_patient",
                                                  "final_answer"]
    third = policy.requests[2]
    assert offered_tools(third.json_schema) == offered_tools(policy.requests[0].json_schema)
    # every tool and the final answer, less find_patients (the patient is in context, the question names no one else)
    assert len(offered_tools(third.json_schema)) == len(registry)
    assert "repeated" not in third.messages[-1].content


async def test_same_tool_with_same_arguments_is_a_repeat(registry: Registry, client: FhirClient) -> None:
    search = call("search_observations", patient=PATIENT, text="glucose", latest=1)
    policy = ScriptedPolicy([search, search, final("done")])
    result = await agent(policy, registry, client).run("glucose?", now=NOW, patient=PATIENT)
    assert result.status == "answered"
    assert offered_tools(policy.requests[2].json_schema) == ["final_answer"]
    assert "repeated the same tool call" in policy.requests[2].messages[-1].content


async def test_refuse_mode_is_recorded_as_refused(registry: Registry, client: FhirClient, clean_fhir: str) -> None:
    policy = ScriptedPolicy([BP, final("could not record")])
    result = await agent(policy, registry, client, approval="refuse").run("Record BP", now=NOW, patient=PATIENT)
    assert result.status == "answered" and result.answer == "could not record"
    step = result.trace[0]
    assert step.tool == "record_vital_sign"
    assert step.approval == "refused: read-only mode", step.approval
    assert (step.error or "").startswith("refused: read-only mode; record_vital_sign would write to the EHR")
    assert await client.diff() == []


async def test_auto_mode_is_recorded_as_auto_approved(registry: Registry, client: FhirClient,
                                                      clean_fhir: str) -> None:
    result = await agent(ScriptedPolicy([BP, final("recorded")]), registry, client, approval="auto").run(
        "Record BP", now=NOW, patient=PATIENT)
    assert result.trace[0].approval == "auto-approved" and not result.trace[0].error
    created = [c for c in await client.diff() if c["action"] == "create"]
    assert [c["resourceType"] for c in created] == ["Observation"]


async def test_a_call_without_the_patient_in_context_is_filled_and_the_grammar_allowed_it(
        registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([call("search_conditions", text="hypertension"), final("done")])
    result = await agent(policy, registry, client).run("Hypertension?", now=NOW, patient=PATIENT)
    assert result.trace[0].arguments["patient"] == f"Patient/{PATIENT}"
    assert result.trace[0].error is None
    first = next(o for o in policy.requests[0].json_schema["anyOf"] if o["properties"]["tool"]["const"] == "search_conditions")
    assert "patient" not in first["properties"]["arguments"].get("required", [])
    # without a patient in context the grammar requires it
    policy = ScriptedPolicy([final("none")])
    await agent(policy, registry, client).run("Who?", now=NOW)
    first = next(o for o in policy.requests[0].json_schema["anyOf"] if o["properties"]["tool"]["const"] == "search_conditions")
    assert "patient" in first["properties"]["arguments"]["required"]
