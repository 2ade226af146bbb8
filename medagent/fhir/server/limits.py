"""How much work one request may ask for: caps checked before any SQL is built (400 beyond them).

The per-query time limit that backs these caps lives in the store (``Store.query_seconds``, a SQLite
progress handler); a query stopped by it is a 400 ``too-costly`` that clients must not retry.
"""

from __future__ import annotations

import re
from typing import Any

from medagent.fhir.server.outcome import FhirError

MAX_PARAMETERS = 64
MAX_ALTERNATIVES = 100
MAX_SORT_KEYS = 8
MAX_VALUE_CHARS = 2048
MAX_OFFSET = 10_000_000
MAX_JSON_DEPTH = 64
_ASCII_INT = re.compile(r"^[0-9]{1,18}$")


def check_search_size(params: list[tuple[str, str]]) -> None:
    """400 if a search names too many parameters, alternatives or sort keys, or too long a value."""
    if len(params) > MAX_PARAMETERS:
        raise FhirError(
            400, f"too many search parameters ({len(params)}; at most {MAX_PARAMETERS} per request)", code="too-costly"
        )
    for name, value in params:
        if len(value) > MAX_VALUE_CHARS or len(name) > MAX_VALUE_CHARS:
            raise FhirError(
                400,
                f"search parameter {name[:60]!r}: value of {len(value)} characters is over {MAX_VALUE_CHARS}",
                code="too-costly",
            )
        alternatives = value.count(",") + 1
        if name == "_sort" and alternatives > MAX_SORT_KEYS:
            raise FhirError(400, f"_sort has {alternatives} keys; at most {MAX_SORT_KEYS}", code="too-costly")
        if alternatives > MAX_ALTERNATIVES:
            raise FhirError(
                400,
                f"search parameter {name!r} has {alternatives} comma alternatives; at most {MAX_ALTERNATIVES}",
                code="too-costly",
            )


def plain_int(name: str, value: str, *, maximum: int | None = None) -> int:
    """A non-negative ASCII integer from a URL (``²`` and 20-digit numbers are 400s, not 500s)."""
    if not _ASCII_INT.match(value):
        raise FhirError(400, f"{name} must be a non-negative integer (ASCII digits, at most 18), got {value[:40]!r}")
    number = int(value)
    if maximum is not None and number > maximum:
        raise FhirError(400, f"{name} {number} is over the maximum {maximum}", code="too-costly")
    return number


def check_json_depth(body: Any, *, limit: int = MAX_JSON_DEPTH) -> None:
    """400 for JSON nested deeper than ``limit`` (deep nesting exhausts the validator's recursion)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise FhirError(400, f"request body is nested deeper than {limit} levels", code="too-costly")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, (dict, list)))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))
