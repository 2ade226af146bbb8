"""The registry: schemas from types + docstrings, exports (OpenAI, one action schema, LangChain), and that no model mistake raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from tools_expect import PATIENT

from medagent.agent.actions import action_schema
from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirInvalid
from medagent.tools import (
    APPROVE_WRITES,
    ReviewerCallback,
    ToolArgs,
    ToolContext,
    ToolError,
    ToolResult,
    WriteRequest,
    default_registry,
    tool,
)
from medagent.tools.registry import FINAL_ANSWER, Registry

jsonschema = pytest.importorskip("jsonschema")

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)
REGISTRY = default_registry()
READ_TOOLS = [t.name for t in REGISTRY if not t.writes]
WRITE_TOOLS = [t.name for t in REGISTRY if t.writes]


def offline_ctx(**options: Any) -> ToolContext:
    """A context whose FHIR server does not exist: only argument handling may run."""
    return ToolContext(client=FhirClient("http://127.0.0.1:9", retries=0, timeout=2), now=NOW, **options)


def walk(node: Any) -> list[Any]:
    out = [node]
    if isinstance(node, dict):
        for value in node.values():
            out += walk(value)
    elif isinstance(node, list):
        for value in node:
            out += walk(value)
    return out


def test_the_registry_covers_the_issue() -> None:
    expected = {"find_patients", "get_patient", "search_observations", "search_conditions", "search_medications",
                "search_immunizations", "search_procedures", "search_encounters", "search_diagnostic_reports",
                "search_allergies", "record_manifest", "lookup_codes", "fhir_search", "fhir_read",
                "record_vital_sign", "record_observation", "order_medication", "order_service", "add_note",
                "discontinue_medication", "search_notes", "add_structured_note"}
    assert expected <= set(REGISTRY.names)
    assert set(WRITE_TOOLS) == {"record_vital_sign", "record_observation", "order_medication", "order_service",
                                "add_note", "discontinue_medication", "add_structured_note"}


@pytest.mark.parametrize("name", REGISTRY.names)
def test_schema_comes_from_types_and_docstrings(name: str) -> None:
    item = REGISTRY[name]
    assert item.description and len(item.summary) <= 240, "a short description written for a model"
    params = item.parameters()
    assert params["type"] == "object" and params["additionalProperties"] is False
    nested = [n for n in walk(params) if isinstance(n, dict)]
    assert not [n for n in nested if "$ref" in n or "$defs" in n or isinstance(n.get("title"), str)]
    for prop_name, prop in params["properties"].items():
        assert prop.get("description"), f"{name}.{prop_name} has no description (field docstring)"
        assert prop.get("type") or prop.get("enum") or prop.get("anyOf"), f"{name}.{prop_name} has no type"
    jsonschema.validate(item.example, params)  # the example shown in errors is valid for the schema
    item.args_model.model_validate(item.example)


@pytest.mark.parametrize("name", REGISTRY.names)
def test_mcp_annotations_on_every_tool(name: str) -> None:
    item = REGISTRY[name]
    hints = item.annotations()
    assert set(hints) >= {"readOnlyHint", "destructiveHint", "idempotentHint"}
    assert hints["readOnlyHint"] is (not item.writes)
    assert hints["destructiveHint"] is (name == "discontinue_medication")
    assert hints["idempotentHint"] is True  # reads, conditional creates, and stopping a stopped order


def test_openai_schemas() -> None:
    schemas = REGISTRY.openai_schemas()
    assert [s["function"]["name"] for s in schemas] == REGISTRY.names
    assert all(s["type"] == "function" and s["function"]["parameters"]["type"] == "object" for s in schemas)
    only = REGISTRY.openai_schemas(["find_patients", "get_patient"])
    assert [s["function"]["name"] for s in only] == ["find_patients", "get_patient"]
    with pytest.raises(KeyError):
        REGISTRY.openai_schemas(["no_such_tool"])


def test_one_action_schema_for_constrained_decoding() -> None:
    schema = action_schema(REGISTRY)
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for item in REGISTRY:
        assert validator.is_valid({"tool": item.name, "arguments": item.example}), item.name
    assert validator.is_valid({"tool": FINAL_ANSWER, "arguments": {"answer": "yes", "citations": ["Condition/x"]}})
    assert not validator.is_valid({"tool": FINAL_ANSWER, "arguments": {"answer": "yes"}})
    assert not validator.is_valid({"tool": "drop_database", "arguments": {}})
    assert not validator.is_valid({"tool": "get_patient", "arguments": {"patient": PATIENT, "bogus": 1}})
    assert not validator.is_valid({"tool": "get_patient", "arguments": {}})
    narrow = action_schema(REGISTRY, ["get_patient"])
    assert len(narrow["anyOf"]) == 2


@pytest.mark.parametrize("name", REGISTRY.names)
async def test_bad_arguments_for_every_tool_come_back_as_errors(name: str) -> None:
    item = REGISTRY[name]
    ctx = offline_ctx(approval=APPROVE_WRITES)
    extra = await REGISTRY.call(name, {**item.example, "bogus_argument": 1}, ctx)
    assert extra.error and "bogus_argument: unknown argument" in extra.error and "Example: {" in extra.error
    assert extra.text.startswith("ERROR: ")
    if item.parameters().get("required"):
        missing = await REGISTRY.call(name, {}, ctx)
        assert missing.error and "required" in missing.error and "Example: {" in missing.error
    wrong_type = await REGISTRY.call(name, {**item.example, "limit": "many"} if "limit" in item.parameters()["properties"]
                                     else {**item.example, next(iter(item.parameters()["properties"])): {"x": 1}}, ctx)
    assert wrong_type.error and wrong_type.error.startswith("bad arguments")


async def test_arguments_as_json_text_or_garbage() -> None:
    ctx = offline_ctx()
    bad_json = await REGISTRY.call("get_patient", "{patient: x", ctx)
    assert bad_json.error and "not valid JSON" in bad_json.error
    not_object = await REGISTRY.call("get_patient", [1, 2], ctx)  # type: ignore[arg-type]
    assert not_object.error and "JSON object" in not_object.error
    unknown = await REGISTRY.call("drop_database", {}, ctx)
    assert unknown.error and "unknown tool 'drop_database'" in unknown.error and "find_patients" in unknown.error


@pytest.mark.parametrize("name", WRITE_TOOLS)
async def test_writes_are_refused_in_read_only_mode(name: str) -> None:
    result = await REGISTRY.call(name, REGISTRY[name].example, offline_ctx())  # read_only defaults to True
    assert result.error and result.error.startswith("refused: read-only mode") and not result.wrote


async def test_approval_policy_sees_the_call_and_can_refuse() -> None:
    seen: list[WriteRequest] = []

    async def deny(call: WriteRequest) -> bool:
        seen.append(call)
        return False

    ctx = offline_ctx(approval=ReviewerCallback(deny), patient=PATIENT, run_id="run-7")
    result = await REGISTRY.call("discontinue_medication", {"medication_request": "MedicationRequest/abc"}, ctx)
    # issue 25: the order's patient is read before anyone decides; an order that cannot be read is never
    # put to the reviewer (who could not see whose it is)
    assert result.error and "could not be reached" in result.error and seen == []
    note = await REGISTRY.call("add_note", {"patient": f"Patient/{PATIENT}", "text": "x"}, ctx)
    assert note.error and "not approved" in note.error
    assert seen == [WriteRequest(tool="add_note", arguments={"patient": PATIENT, "text": "x", "note_type": "progress_note"},
                                 destructive=False, patient=PATIENT, context_patient=PATIENT, run_id="run-7")]
    reads = await REGISTRY.call("get_patient", {"patient": PATIENT}, ctx)
    assert len(seen) == 1, "reads are never sent to approval"
    assert reads.error and "could not be reached" in reads.error  # the offline server: an error, not an exception
    invalid = await REGISTRY.call("add_note", {"patient": PATIENT}, ctx)
    assert len(seen) == 1 and invalid.error and "text: required" in invalid.error  # invalid calls are not reviewed

    async def broken(call: WriteRequest) -> bool:
        raise RuntimeError("hook down")

    failed = await REGISTRY.call("add_note", {"patient": PATIENT, "text": "x"}, offline_ctx(approval=ReviewerCallback(broken)))
    assert failed.error and "approval step: it failed (RuntimeError)" in failed.error


async def test_escalated_write_without_a_reviewer_is_refused_and_a_reviewer_decision_is_applied() -> None:
    from medagent.tools import ESCALATE_WRITES, ApprovalDecision

    ctx = offline_ctx(approval=ESCALATE_WRITES)
    args = {"patient": PATIENT, "text": "x"}
    review = await REGISTRY.review("add_note", args, ctx)
    assert review is not None and review[1] == ApprovalDecision(verdict="escalate", by="ask")
    assert review[0].tool == "add_note" and review[0].patient == PATIENT and review[0].arguments["text"] == "x"
    assert await REGISTRY.review("get_patient", {"patient": PATIENT}, ctx) is None
    waiting = await REGISTRY.call("add_note", args, ctx)
    assert waiting.error and "needs a reviewer's approval" in waiting.error
    rejected = await REGISTRY.call("add_note", args, ctx, decision=ApprovalDecision.reviewer(False, "wrong chart"))
    assert rejected.error and "rejected by user: wrong chart" in rejected.error
    approved = await REGISTRY.call("add_note", args, ctx, decision=ApprovalDecision.reviewer(True))
    assert approved.error and "could not be reached" in approved.error  # it ran: the offline server answered


async def test_exceptions_inside_tools_never_escape() -> None:
    local = Registry()

    class NoArgs(ToolArgs):
        mode: str
        """Which failure."""

    @tool(registry=local, args=NoArgs, example={"mode": "bug"})
    async def explode(ctx: ToolContext, args: NoArgs) -> ToolResult:
        """Fails on purpose."""
        if args.mode == "bug":
            raise KeyError("boom")
        if args.mode == "tool":
            raise ToolError("patient 'x' not found; e.g. find_patients(name=...)")
        raise FhirInvalid(400, "Observation.code: missing", None, "POST Observation")

    ctx = offline_ctx()
    bug = await local.call("explode", {"mode": "bug"}, ctx)
    assert bug.error == "internal error in explode: KeyError: 'boom'"
    told = await local.call("explode", {"mode": "tool"}, ctx)
    assert told.error == "patient 'x' not found; e.g. find_patients(name=...)", "no example appended when one is given"
    server = await local.call("explode", {"mode": "server"}, ctx)
    assert server.error and "Observation.code: missing" in server.error and 'Example: {"mode": "bug"}' in server.error


def test_the_decorator_insists_on_types_docstrings_and_valid_examples() -> None:
    local = Registry()

    class Args(ToolArgs):
        n: int
        """A number."""

    with pytest.raises(TypeError, match="docstring"):
        @tool(registry=local, args=Args)
        async def undocumented(ctx: ToolContext, args: Args) -> ToolResult:
            return ToolResult()

    with pytest.raises(TypeError, match="ToolArgs"):
        @tool(registry=local)
        async def untyped(ctx: ToolContext, args: dict) -> ToolResult:  # type: ignore[type-arg]
            """Untyped."""
            return ToolResult()

    with pytest.raises(Exception, match="n"):
        @tool(registry=local, args=Args, example={"n": "not a number"})
        async def bad_example(ctx: ToolContext, args: Args) -> ToolResult:
            """Bad example."""
            return ToolResult()

    with pytest.raises(TypeError, match="pass the model with"):
        @tool(registry=local)  # a model defined in this function: its annotation cannot be resolved
        async def local_model(ctx: ToolContext, args: Args) -> ToolResult:
            """Local."""
            return ToolResult()

    with pytest.raises(ValueError, match="already taken"):
        @tool(registry=REGISTRY, args=Args)
        async def get_patient(ctx: ToolContext, args: Args) -> ToolResult:
            """Duplicate."""
            return ToolResult()


def test_context_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ToolContext(client=FhirClient("http://127.0.0.1:9"), now=datetime(2019, 5, 2))


async def test_output_never_exceeds_twice_the_budget(run: Any) -> None:
    ctx_budget = 100
    from medagent.tools.registry import enforce_budget

    ctx = offline_ctx(token_budget=ctx_budget)
    long = enforce_budget(ToolResult(text="\n".join("x" * 60 for _ in range(100))), ctx)
    assert len(long.text) <= ctx_budget * 4 * 2 + 120 and "cut at the token budget" in long.text


async def test_langchain_tools_call_the_registry(fhir_url: str) -> None:
    async with FhirClient(fhir_url) as client:
        ctx = ToolContext(client=client, now=NOW)
        tools = REGISTRY.langchain_tools(ctx, ["find_patients", "get_patient"])
        assert [t.name for t in tools] == ["find_patients", "get_patient"]
        text = await tools[0].ainvoke({"name": "Hartmann"})
        assert "Adalberto Hartmann" in text and f"Patient/{PATIENT}" in text
        assert "patient" in tools[1].args
        refused = await tools[1].ainvoke({"patient": "not a patient!"})
        assert refused.startswith("ERROR: bad arguments for get_patient: patient:") and "Example" in refused
        unknown = await tools[1].ainvoke({"patient": "nobody"})
        assert unknown.startswith("ERROR: patient 'nobody' not found")
        everything = REGISTRY.langchain_tools(ctx)
        assert len(everything) == len(REGISTRY)
