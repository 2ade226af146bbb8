"""Issue 25, item 1: every write names its patient, resolved from the target resource when the arguments
name none, before the approval policy decides; so automatic approval never covers a write to another patient.

The reproduction: a run about patient A (``dbf9798e-...``) discontinued ``MedicationRequest/06ca4ad8-...``,
an active order of another patient, under auto approval. Each write tool is tried with another patient's
record under ``auto``, ``ask`` and MCP ``--allow-writes --patient A``; the server's own ``$diff`` says
whether anything was written.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tools_expect import PATIENT, of_type

from medagent.tools.approval import (
    APPROVE_WRITES,
    ESCALATE_WRITES,
    ReviewerCallback,
    WriteRequest,
)
from medagent.tools.context import ToolContext
from medagent.tools.registry import Registry, ToolArgs, ToolResult, tool
from medagent.tools.search_args import PatientRef

RUN_PATIENT = "dbf9798e-4b52-4cd9-a9eb-ec36149c859a"  # the run's patient in the reproduction
OTHER = PATIENT  # Adalberto Hartmann: owns the active order the reproduction stopped
OTHER_ORDER = "MedicationRequest/06ca4ad8-c363-4c2e-8bfe-8c0043508525"
NOW = datetime(2020, 6, 1, tzinfo=UTC)
MCP_NOW = "2020-06-01T00:00:00+00:00"


def other_condition() -> str:
    return f"Condition/{of_type(OTHER, 'Condition')[0]['id']}"


# every write tool, called with a record of the other patient (the test below checks none is missing)
OTHER_PATIENT_WRITES: dict[str, dict[str, Any]] = {
    "record_vital_sign": {"patient": OTHER, "vital": "body_weight", "value": 70},
    "record_observation": {"patient": OTHER, "code": "2339-0", "value": 105, "unit": "mg/dL"},
    "order_medication": {"patient": OTHER, "code": "316049"},
    "order_service": {"patient": OTHER, "code": "2823-3"},
    "add_note": {"patient": OTHER, "text": "Seen today; plan unchanged."},
    "discontinue_medication": {"medication_request": OTHER_ORDER, "reason": "adverse reaction"},
    "add_structured_note": {"patient": OTHER, "title": "Follow-up", "sections": [
        {"section": "plan", "text": "Recheck in 3 months."}]},
}


def cross_linked() -> dict[str, dict[str, Any]]:
    """Writes for the run's own patient whose reason is another patient's record."""
    return {"order_medication": {"patient": RUN_PATIENT, "code": "316049", "reason_reference": other_condition()},
            "order_service": {"patient": RUN_PATIENT, "code": "2823-3", "reason_reference": other_condition()},
            "add_structured_note": {"patient": RUN_PATIENT, "title": "Follow-up", "sections": [
                {"section": "problems", "text": "See the cited diagnosis.", "entries": [other_condition()]}]}}


def server_changes(fhir_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{fhir_url}/$diff", timeout=30).raise_for_status().json()["changes"])


def test_every_write_tool_is_tried(registry: Registry) -> None:
    assert {item.name for item in registry if item.writes} == set(OTHER_PATIENT_WRITES)


@pytest.mark.parametrize("tool_name", sorted(OTHER_PATIENT_WRITES))
async def test_auto_approval_never_writes_to_another_patient(tool_name: str, registry: Registry, make_ctx: Any,
                                                             clean_fhir: str) -> None:
    ctx = make_ctx(NOW, approval=APPROVE_WRITES, patient=RUN_PATIENT)
    result = await registry.call(tool_name, OTHER_PATIENT_WRITES[tool_name], ctx)
    assert result.error is not None and "reviewer" in result.error, result.text
    assert result.wrote == [] and ctx.audit == []
    assert server_changes(clean_fhir) == []


@pytest.mark.parametrize("tool_name", sorted(OTHER_PATIENT_WRITES))
async def test_the_reviewer_sees_the_patient_the_write_is_about(tool_name: str, registry: Registry,
                                                                make_ctx: Any, clean_fhir: str) -> None:
    """``ask``: the pending write names the other patient, resolved from the order when no argument names it."""
    review = await registry.review(tool_name, OTHER_PATIENT_WRITES[tool_name],
                                   make_ctx(NOW, approval=ESCALATE_WRITES, patient=RUN_PATIENT))
    assert review is not None
    request, decision = review
    assert request.patient == OTHER and request.context_patient == RUN_PATIENT
    assert decision.verdict == "escalate"
    seen: list[WriteRequest] = []

    async def reject(request: WriteRequest) -> bool:
        seen.append(request)
        return False

    ctx = make_ctx(NOW, approval=ReviewerCallback(reject), patient=RUN_PATIENT)
    refused = await registry.call(tool_name, OTHER_PATIENT_WRITES[tool_name], ctx)
    assert refused.error is not None and [r.patient for r in seen] == [OTHER]
    assert server_changes(clean_fhir) == []


async def test_a_person_can_still_stop_another_patients_order(registry: Registry, make_ctx: Any, client: Any,
                                                              clean_fhir: str) -> None:
    """The explicit approval the rule asks for works: the reviewer saw Patient/OTHER and approved."""

    async def approve(request: WriteRequest) -> bool:
        return request.patient == OTHER

    ctx = make_ctx(NOW, approval=ReviewerCallback(approve), patient=RUN_PATIENT)
    result = await registry.call("discontinue_medication", OTHER_PATIENT_WRITES["discontinue_medication"], ctx)
    assert result.error is None and result.wrote == [OTHER_ORDER]
    assert (await client.resolve(OTHER_ORDER))["status"] == "stopped"


@pytest.mark.parametrize("tool_name", ["order_medication", "order_service", "add_structured_note"])
async def test_a_write_cannot_link_another_patients_record(tool_name: str, registry: Registry, make_ctx: Any,
                                                           clean_fhir: str) -> None:
    ctx = make_ctx(NOW, approval=APPROVE_WRITES, patient=RUN_PATIENT)
    result = await registry.call(tool_name, cross_linked()[tool_name], ctx)
    assert result.error is not None and f"Patient/{OTHER}" in result.error, result.text
    assert server_changes(clean_fhir) == []


async def test_the_write_path_refuses_a_resource_of_a_patient_the_request_did_not_name(make_ctx: Any,
                                                                                     clean_fhir: str) -> None:
    """A property of the write path, not of each tool: a write tool that names one patient and writes
    another's record is refused where the write is sent."""
    from medagent.tools.write_clinical import WriteArgs, create

    rogue = Registry()

    @tool(writes=True, registry=rogue, args=WriteArgs)
    async def rogue_note(ctx: ToolContext, args: WriteArgs) -> ToolResult:
        """A buggy write tool: it writes for another patient than the one its arguments name."""
        resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                    "subject": {"reference": f"Patient/{OTHER}"}, "valueString": "x"}
        body, _ = await create(ctx, "rogue_note", args, resource)
        return ToolResult(text=str(body.get("id")), wrote=[f"Observation/{body.get('id')}"])

    ctx = make_ctx(NOW, approval=APPROVE_WRITES, patient=RUN_PATIENT)
    result = await rogue.call("rogue_note", {"patient": RUN_PATIENT}, ctx)
    assert result.error is not None and f"Patient/{OTHER}" in result.error, result.text
    assert server_changes(clean_fhir) == []


def test_a_write_tool_that_names_no_patient_cannot_be_registered() -> None:
    class Untargeted(ToolArgs):
        text: str

    with pytest.raises(TypeError, match="patient"):
        @tool(writes=True, registry=Registry(), args=Untargeted)
        async def anonymous_write(ctx: ToolContext, args: Untargeted) -> ToolResult:
            """Writes something about nobody in particular."""
            return ToolResult()

    class Targeted(ToolArgs):
        patient: PatientRef

    @tool(writes=True, registry=Registry(), args=Targeted)
    async def named_write(ctx: ToolContext, args: Targeted) -> ToolResult:
        """Writes for the patient it names."""
        return ToolResult()


# --- MCP --allow-writes with a patient in context --------------------------------------------------

async def test_mcp_allow_writes_never_writes_to_another_patient(clean_fhir: str) -> None:
    mcp = pytest.importorskip("mcp")
    from mcp.client.stdio import stdio_client

    params = mcp.StdioServerParameters(command=sys.executable, args=[
        "-m", "medagent", "mcp", "--fhir-url", clean_fhir, "--now", MCP_NOW, "--allow-writes",
        "--patient", RUN_PATIENT])
    async with stdio_client(params) as (read, write), mcp.ClientSession(read, write) as session:
        await session.initialize()
        for tool_name, arguments in sorted({**OTHER_PATIENT_WRITES, **{
                f"{name} (linked)": args for name, args in cross_linked().items()}}.items()):
            result = await session.call_tool(tool_name.split(" ")[0], arguments)
            text = result.content[0].text
            assert getattr(result, "is_error", None) or getattr(result, "isError", None), (tool_name, text)
            assert f"Patient/{OTHER}" in text, (tool_name, text)
        own = await session.call_tool("record_vital_sign", {"patient": RUN_PATIENT, "vital": "heart_rate", "value": 70})
        assert own.content[0].text.startswith("recorded Observation/"), own.content[0].text
    changes = server_changes(clean_fhir)
    assert [(c["resourceType"], c["action"]) for c in changes] == [("Observation", "create")]
    assert changes[0]["after"]["subject"]["reference"] == f"Patient/{RUN_PATIENT}"
