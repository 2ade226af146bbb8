"""The action schema the agent constrains decoding with stays within what vLLM's xgrammar backend accepts."""

from __future__ import annotations

from typing import Any

from medagent.tools.registry import Registry


def _strings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "string" else []
    return found + [s for value in node.values() for s in _strings(value)]


def test_every_string_is_bounded_and_no_pattern_has_length_bounds(registry: Registry) -> None:
    strings = _strings(registry.json_schema_union())
    assert strings
    for string in strings:
        if {"pattern", "format"} & string.keys():
            assert not {"minLength", "maxLength"} & string.keys(), string  # vLLM/xgrammar rejects this pair
        elif not {"enum", "const"} & string.keys():
            assert string.get("maxLength"), string  # unbounded strings let small models run on
    assert "$ref" not in str(registry.json_schema_union())
