"""The CDS Hooks 2.0 JSON schema (cds-hooks-2.0.schema.json, written from the specification text) and checks
against its definitions: the service checks every response before sending it, the tests check them again."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator

SCHEMA_FILE = Path(__file__).with_name("cds-hooks-2.0.schema.json")
Definition = Literal["Card", "Response", "Discovery", "Service", "Request", "Feedback", "FeedbackRequest", "Action"]


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(SCHEMA_FILE.read_bytes())
    Draft202012Validator.check_schema(loaded)
    return loaded


@cache
def validator(definition: Definition) -> Draft202012Validator:
    """A validator of one ``$defs`` entry (formats checked: date-time, and URLs by pattern)."""
    whole = schema()
    return Draft202012Validator(
        {"$ref": f"#/$defs/{definition}", "$defs": whole["$defs"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def problems(definition: Definition, instance: Any) -> list[str]:
    """What makes ``instance`` not a valid ``definition`` (empty when it is valid), each with its JSON path."""
    found = sorted(validator(definition).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in found]
