"""The action schema the agent constrains decoding with bounds every string, and what the OpenAI-compatible
backend sends stays within what vLLM's xgrammar backend accepts."""

from __future__ import annotations

from typing import Any

from medagent.agent.actions import action_schema
from medagent.models.openai_compat import xgrammar_compatible
from medagent.tools.registry import Registry


def _strings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "string" else []
    return found + [s for value in node.values() for s in _strings(value)]


def test_every_free_string_is_bounded(registry: Registry) -> None:
    strings = _strings(action_schema(registry))
    assert strings
    for string in strings:
        if not {"enum", "const", "pattern", "format"} & string.keys():
            assert string.get("maxLength"), string  # unbounded strings let small models run on
    assert "$ref" not in str(action_schema(registry))


def test_what_vllm_gets_has_no_pattern_with_length_bounds(registry: Registry) -> None:
    sent = xgrammar_compatible(action_schema(registry))
    strings = _strings(sent)
    assert any("pattern" in s for s in strings)
    for string in strings:
        if {"pattern", "format"} & string.keys():
            assert not {"minLength", "maxLength"} & string.keys(), string  # vLLM/xgrammar rejects this pair
        elif not {"enum", "const"} & string.keys():
            assert string.get("maxLength"), string


def test_xgrammar_compatible_drops_only_lengths_beside_a_pattern() -> None:
    schema = {"type": "object", "properties": {
        "ref": {"type": "string", "pattern": "^[A-Z]+/[0-9]+$", "minLength": 3, "maxLength": 70},
        "day": {"type": "string", "format": "date", "maxLength": 10},
        "text": {"type": "string", "minLength": 1, "maxLength": 600}}}
    assert xgrammar_compatible(schema)["properties"] == {
        "ref": {"type": "string", "pattern": "^[A-Z]+/[0-9]+$"}, "day": {"type": "string", "format": "date"},
        "text": {"type": "string", "minLength": 1, "maxLength": 600}}
    assert schema["properties"]["ref"]["maxLength"] == 70  # the caller's schema is not changed


def _arguments(schema: dict[str, Any], tool: str) -> dict[str, Any]:
    return next(o for o in schema["anyOf"] if o["properties"]["tool"]["const"] == tool)["properties"]["arguments"]


def test_with_a_patient_in_context_no_tool_requires_the_patient(registry: Registry) -> None:
    # the agent fills a missing patient from the run's context, so the grammar must let the model leave it
    # out (the trained adapter learned to): forcing it made the small model write names into it
    plain, in_context = action_schema(registry), action_schema(registry, patient_in_context=True)
    assert "patient" in _arguments(plain, "search_conditions")["required"]
    assert "patient" not in _arguments(in_context, "search_conditions").get("required", [])
    assert "patient" in _arguments(in_context, "search_conditions")["properties"]    # still allowed
    assert _arguments(in_context, "record_vital_sign")["required"] == ["vital"]      # the rest stays required
    assert _arguments(in_context, "lookup_codes") == _arguments(plain, "lookup_codes")  # no patient: unchanged


def test_only_records_the_run_has_seen_can_be_cited(registry: Registry) -> None:
    from medagent.models.base import schema_violation

    def answer(*citations: str) -> dict[str, Any]:
        return {"tool": "final_answer", "arguments": {"answer": "x", "citations": list(citations)}}

    seen = ["Observation/o2", "Condition/c1", "Observation/o2"]
    schema = action_schema(registry, citable=seen)
    rule = _arguments(schema, "final_answer")["properties"]["citations"]
    assert rule["items"]["enum"] == ["Condition/c1", "Observation/o2"] and rule["maxItems"] == 2
    assert schema_violation(answer("Observation/o2"), schema) is None
    assert schema_violation(answer("Practitioner/p9"), schema) is not None  # never read: not citable
    assert schema_violation(answer(), schema) is None                        # citing nothing stays allowed
    nothing_read = action_schema(registry, citable=[])
    assert schema_violation(answer(), nothing_read) is None
    assert schema_violation(answer("Condition/c1"), nothing_read) is not None
    unrestricted = action_schema(registry)  # without a run (citable=None): any Type/id
    assert schema_violation(answer("Practitioner/p9"), unrestricted) is None
    assert schema_violation(answer("not a reference"), unrestricted) is not None
