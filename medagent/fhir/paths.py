"""Dotted element paths over FHIR JSON (``name.given``, ``component.code``), lists flattened.

Shared by the server's search indexing and the tools' field projection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if node is None:
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts)
        return
    if not parts:
        yield node
        return
    if isinstance(node, dict):
        yield from _walk(node.get(parts[0]), parts[1:])


def values_at(resource: dict[str, Any], path: str) -> Iterator[Any]:
    """Every value at ``path``; a list at any step contributes each of its items."""
    yield from _walk(resource, path.split("."))
