"""The agent's action protocol: one JSON action per reply, its schema for constrained decoding, and its parser.

A reply is ``{"tool": name, "arguments": {...}}`` for a registered tool or
``{"tool": "final_answer", "arguments": {"answer": ..., "citations": [...]}}``. :func:`action_schema`
is the ONE JSON schema (the union of every allowed action) a backend constrains decoding with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import BaseModel

from medagent.tools.registry import FINAL_ANSWER, Registry

__all__ = [
    "FINAL_ANSWER",
    "FINAL_ANSWER_PARAMETERS",
    "Action",
    "action_schema",
    "bound_lengths",
    "final_answer_parameters",
    "final_answer_schema",
    "parse_action",
    "with_final_answer",
]

FINAL_ANSWER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {
            "type": "string",
            "minLength": 1,
            "maxLength": 400,
            "description": "The answer in the format the question asks for.",
        },
        "citations": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[A-Z][A-Za-z]{1,40}/[A-Za-z0-9\-.]{1,64}$"},
            "maxItems": 10,
            "description": "References (Type/id) of the rows the answer rests on.",
        },
    },
    "required": ["answer", "citations"],
    "additionalProperties": False,
}


def final_answer_parameters(citable: Iterable[str] | None = None, answer_pattern: str | None = None) -> dict[str, Any]:
    """The final answer's arguments; ``citable``: the records the run has seen (tool results' references and
    what it wrote), and then the only citations the grammar allows (none before anything was read).
    A citation is a claim that the answer rests on that record, and a record the run never saw cannot
    be one: the small model otherwise invents ids (``Practitioner/<uuid>`` with no Practitioner read).
    ``answer_pattern``: the shape the question asks the answer in (:mod:`medagent.agent.answer_format`)."""
    if citable is None and answer_pattern is None:
        return FINAL_ANSWER_PARAMETERS
    properties = dict(FINAL_ANSWER_PARAMETERS["properties"])
    if answer_pattern is not None:
        properties["answer"] = {**properties["answer"], "pattern": answer_pattern}  # lengths kept: a model
        # can run on inside one of the object's strings (vLLM's schema drops them beside a pattern)
    if citable is not None:
        records = sorted(set(citable))
        citations = properties["citations"]
        if records:
            properties["citations"] = {
                **citations,
                "items": {"type": "string", "enum": records},
                "maxItems": min(citations["maxItems"], len(records)),
            }
        else:
            properties["citations"] = {**citations, "items": {"type": "string"}, "maxItems": 0}
    return {**FINAL_ANSWER_PARAMETERS, "properties": properties}


LONG_TEXT_ARGUMENTS = frozenset({"text", "note", "instructions", "value_text", "summary", "reason", "answer"})


class Action(BaseModel):
    tool: str
    arguments: dict[str, Any]


def action_schema(
    registry: Registry,
    names: Iterable[str] | None = None,
    *,
    final_answer: bool = True,
    patient_in_context: bool = False,
    citable: Iterable[str] | None = None,
    answer_pattern: str | None = None,
) -> dict[str, Any]:
    """ONE JSON schema for a constrained-decoding action: ``{"tool": name, "arguments": {...}}``.

    ``patient_in_context``: the run is about one patient, whom the agent fills in for a missing ``patient``
    argument (an EHR launch context), so no tool requires it: the model may leave it out (as the trained
    adapter was taught to) instead of being forced by the grammar to write one. ``citable``: see
    :func:`final_answer_parameters` (None: any ``Type/id``), as is ``answer_pattern``."""
    options = [
        _action(item.name, _optional_patient(item.parameters()) if patient_in_context else item.parameters())
        for item in registry.select(names)
    ]
    tools = bound_lengths({"title": "action", "anyOf": options})
    return with_final_answer(tools, citable, answer_pattern) if final_answer else tools


def with_final_answer(
    tools: dict[str, Any], citable: Iterable[str] | None = None, answer_pattern: str | None = None
) -> dict[str, Any]:
    """A tool-actions schema (``action_schema(..., final_answer=False)``, built once per agent: the tools'
    schemas cost milliseconds) plus the final answer, built per step for what the run may cite."""
    answer = bound_lengths(_action(FINAL_ANSWER, final_answer_parameters(citable, answer_pattern)))
    return {**tools, "anyOf": [*tools["anyOf"], answer]}


def _optional_patient(parameters: dict[str, Any]) -> dict[str, Any]:
    required = [name for name in parameters.get("required", []) if name != "patient"]
    out = {k: v for k, v in parameters.items() if k != "required"}
    return {**out, "required": required} if required else out


def final_answer_schema(citable: Iterable[str] | None = None, answer_pattern: str | None = None) -> dict[str, Any]:
    """The action schema when only a final answer is allowed (a run's last step, or a stuck loop)."""
    return {"title": "action", "anyOf": [_action(FINAL_ANSWER, final_answer_parameters(citable, answer_pattern))]}


def _action(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"tool": {"const": name}, "arguments": parameters},
        "required": ["tool", "arguments"],
        "additionalProperties": False,
    }


def bound_lengths(schema: dict[str, Any], default: int = 160, long_text: int = 600) -> dict[str, Any]:
    """Give every free string a maxLength for constrained decoding: an unbounded string lets a small model
    run on inside it until the reply is cut. Bounds are at least as wide as the tools accept; strings with
    an enum, const, pattern or format are bounded by those."""

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, list):
            return [walk(item, key) for item in node]
        if not isinstance(node, dict):
            return node
        out = {
            k: (walk(v) if k != "properties" else {name: walk(p, name) for name, p in v.items()})
            for k, v in node.items()
        }
        if out.get("type") == "string" and not {"enum", "const", "pattern", "format", "maxLength"} & out.keys():
            out["maxLength"] = long_text if key in LONG_TEXT_ARGUMENTS else default
        return out

    return walk(schema)


def parse_action(
    parsed: dict[str, Any] | None, text: str, registry: Registry, allowed: list[str] | None = None
) -> Action | str:
    """The action in a reply, or a short description of what is wrong with it (for the re-ask)."""
    if parsed is None:
        parsed = _first_json_object(text)
        if parsed is None:
            return "it is not a JSON object"
    tool = parsed.get("tool")
    arguments = parsed.get("arguments", {})
    if not isinstance(tool, str):
        return 'it has no "tool" name'
    if not isinstance(arguments, dict):
        return '"arguments" must be a JSON object'
    if tool == FINAL_ANSWER:
        if not isinstance(arguments.get("answer"), str):
            return 'final_answer needs "answer" as a string'
        return Action(tool=tool, arguments=arguments)
    if tool not in registry.names or (allowed is not None and tool not in allowed):
        return f"there is no tool named {tool!r}"
    return Action(tool=tool, arguments=arguments)


def _first_json_object(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        value = orjson.loads(text[start : end + 1])
                    except orjson.JSONDecodeError:
                        break
                    return value if isinstance(value, dict) else None
        start = text.find("{", start + 1)
    return None
