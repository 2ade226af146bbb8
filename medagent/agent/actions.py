"""Turning a model reply into one action: a known tool with arguments, or the final answer."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from medagent.tools.registry import FINAL_ANSWER, Registry

__all__ = ["FINAL_ANSWER", "Action", "parse_action"]


class Action(BaseModel):
    tool: str
    arguments: dict[str, Any]


def parse_action(parsed: dict[str, Any] | None, text: str, registry: Registry,
                 allowed: list[str] | None = None) -> Action | str:
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
                        value = orjson.loads(text[start:end + 1])
                    except orjson.JSONDecodeError:
                        break
                    return value if isinstance(value, dict) else None
        start = text.find("{", start + 1)
    return None
