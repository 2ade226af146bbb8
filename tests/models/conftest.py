"""Shared pieces of the model tests: a small tool-call union schema like the agent's, and a checker."""

from __future__ import annotations

from typing import Any

import pytest


def _action(tool: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "tool": {"const": tool},
            "args": {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False},
        },
        "required": ["tool", "args"],
        "additionalProperties": False,
    }


SHORT = {"type": "string", "maxLength": 40}

TOOL_UNION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _action("search_observations", {"patient_id": SHORT, "code": SHORT}),
        _action("list_conditions", {"patient_id": SHORT}),
        _action("final_answer", {"answer": {"type": "string", "maxLength": 80}}),
    ]
}

SYSTEM_PROMPT = (
    "You are an EHR assistant working on a FHIR server. Reply with one JSON action.\n"
    "Tools: search_observations(patient_id, code: LOINC code) for labs and vital signs; "
    "list_conditions(patient_id) for diagnoses; final_answer(answer) once you know the answer."
)


def assert_valid(value: Any, schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(value, schema)


@pytest.fixture
def tool_union_schema() -> dict[str, Any]:
    return TOOL_UNION_SCHEMA
