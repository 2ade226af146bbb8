"""FHIR ids and references: the one validator every boundary uses (server, client, tools, MCP, service, CLI).

An id is the R4 pattern ``[A-Za-z0-9\\-\\.]{1,64}`` except ids made only of dots: ``.`` and ``..`` are
path segments a URL resolver removes (``Observation/.`` becomes a search of every Observation), so no
such id is ever sent or served.
"""

from __future__ import annotations

import re
from typing import Any

from medagent.fhir.errors import FhirClientError

ID_CHARACTERS = r"[A-Za-z0-9\-.]{1,64}"
"""The R4 id pattern (for JSON schemas, which have no look-ahead: pair it with :func:`check_fhir_id`)."""
FHIR_ID = re.compile(rf"(?!\.+$){ID_CHARACTERS}", re.ASCII)
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}", re.ASCII)


class InvalidFhirId(FhirClientError, ValueError):
    """An id, a resource type or a reference that is not a FHIR one; the message names the argument."""


def is_fhir_id(value: object) -> bool:
    return isinstance(value, str) and FHIR_ID.fullmatch(value) is not None


def _named(argument: str | None, problem: str) -> InvalidFhirId:
    return InvalidFhirId(f"{argument}: {problem}" if argument else problem)


def check_fhir_id(value: object, argument: str | None = None) -> str:
    """``value`` if it is a FHIR id, else :class:`InvalidFhirId` naming ``argument`` (pydantic validators pass
    none: the error's location names it)."""
    if not is_fhir_id(value):
        raise _named(
            argument, f"{str(value)[:80]!r} is not a FHIR id (1-64 letters, digits, '-' or '.', not only dots)"
        )
    return str(value)


def check_resource_type(value: object, argument: str | None = "resource type") -> str:
    if not isinstance(value, str) or RESOURCE_TYPE.fullmatch(value) is None:
        raise _named(argument, f"{str(value)[:80]!r} is not a FHIR resource type (e.g. Observation)")
    return value


def split_reference(value: object, argument: str | None = None) -> tuple[str, str]:
    """``'Type/id'`` (a ``/_history/n`` suffix is dropped) -> (type, id), each checked."""
    text = str(value).split("/_history/")[0]
    kind, slash, rid = text.partition("/")
    if not slash:
        raise _named(argument, f"{str(value)[:80]!r} is not a reference 'Type/id'")
    if RESOURCE_TYPE.fullmatch(kind) is None:
        raise _named(argument, f"{str(value)[:80]!r} is not a reference 'Type/id' (e.g. Observation/abc)")
    if not is_fhir_id(rid):
        raise _named(
            argument,
            f"{str(value)[:80]!r}: {rid[:80]!r} is not a FHIR id (1-64 letters, digits, '-' or '.', not only dots)",
        )
    return kind, rid


def patient_of(resource: dict[str, Any]) -> str | None:
    """The Patient.id a resource is about: its own id for a Patient, else its ``subject``/``patient``/
    ``beneficiary`` reference when that is a Patient (None otherwise: a Group, nobody)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") if is_fhir_id(resource.get("id")) else None
    for key in ("subject", "patient", "beneficiary"):
        reference = (resource.get(key) or {}).get("reference") if isinstance(resource.get(key), dict) else None
        if isinstance(reference, str):
            parts = reference.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "Patient" and is_fhir_id(parts[-1]):
                return parts[-1]
            return None
    return None
