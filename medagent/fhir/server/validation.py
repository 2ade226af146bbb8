"""Resource validation with fhir.resources (R4B models, which accept R4 Synthea data).

fhir.resources checks structure and datatypes; it does not enforce required code bindings,
so the status/intent codes that agents write are checked here from the R4 value sets.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel, ValidationError

from medagent.fhir.ids import is_fhir_id
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.parent_watch import end_with_parent

ABSTRACT_TYPES = ("Resource", "DomainResource")
NOT_STORED = ("Bundle", "OperationOutcome", "Parameters")

_REQUEST_STATUS = ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown")
_REQUEST_INTENT = (
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
)

REQUIRED_CODES: dict[tuple[str, str], tuple[str, ...]] = {
    ("Observation", "status"): (
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
    ("MedicationRequest", "status"): (
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    ),
    ("MedicationRequest", "intent"): (
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    ),
    ("ServiceRequest", "status"): _REQUEST_STATUS,
    ("ServiceRequest", "intent"): _REQUEST_INTENT,
    ("Procedure", "status"): (
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    ),
    ("Immunization", "status"): ("completed", "entered-in-error", "not-done"),
    ("DocumentReference", "status"): ("current", "superseded", "entered-in-error"),
    ("Encounter", "status"): (
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
    ("Patient", "gender"): ("male", "female", "other", "unknown"),
}


@cache
def _model_class_or_none(resource_type: str) -> type[BaseModel] | None:
    if not resource_type[:1].isupper() or resource_type in ABSTRACT_TYPES:
        return None
    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None
    return model if model.__name__ == resource_type and issubclass(model, Resource) else None


def model_class(resource_type: str) -> type[BaseModel]:
    """The fhir.resources model of a resource type named in a body (400 if there is none)."""
    model = _model_class_or_none(resource_type)
    if model is None:
        raise FhirError(
            400, f"unknown resource type {resource_type!r}", code="not-supported", expression=["resourceType"]
        )
    return model


def check_resource_type(resource_type: str) -> None:
    """A type named in a URL: 404 (the spec's answer, and HAPI's) unless this server stores it."""
    if resource_type in NOT_STORED or _model_class_or_none(resource_type) is None:
        raise FhirError(
            404,
            f"unknown resource type {resource_type!r}: not a FHIR R4 resource type this server stores",
            code="not-supported",
        )


def check_bundle_shape(bundle: dict[str, Any]) -> None:
    """Validate a transaction/batch Bundle as a whole (its own fields, entries, requests); the entry
    resources are validated one by one, so they are left out here."""
    shell = {
        **bundle,
        "entry": [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in bundle.get("entry") or []
        ],
    }
    try:
        model_class("Bundle").model_validate(shell)
    except ValidationError as exc:
        raise _invalid("Bundle", exc, status=400) from None
    except (AttributeError, TypeError, ValueError) as exc:  # fhir.resources itself trips on some shapes
        raise FhirError(400, f"invalid Bundle: {_unparsed(shell)}({type(exc).__name__}: {exc})") from None


def check_id(resource_id: str) -> None:
    if not is_fhir_id(resource_id):
        raise FhirError(
            400, f"invalid resource id {resource_id[:80]!r}: 1-64 characters of A-Z a-z 0-9 - . (not only dots)"
        )


def validate_resource(body: Any, *, expected_type: str | None = None) -> dict[str, Any]:
    """Return the body if it is a valid R4 resource of the expected type, else raise 400/422."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirError(400, "request body is not a FHIR resource: a JSON object with 'resourceType' is required")
    resource_type = body["resourceType"]
    if expected_type is not None and resource_type != expected_type:
        raise FhirError(
            400,
            f"resourceType {resource_type!r} in the body does not match {expected_type!r} in the URL",
            expression=["resourceType"],
        )
    if resource_type in NOT_STORED:
        raise FhirError(400, f"a {resource_type} cannot be stored on this server", expression=["resourceType"])
    if "id" in body and not is_fhir_id(body["id"]):
        raise FhirError(400, f"invalid resource id {str(body['id'])[:80]!r}", expression=[f"{resource_type}.id"])
    try:
        model_class(resource_type).model_validate(body)
    except ValidationError as exc:
        raise _invalid(resource_type, exc, status=422) from None
    except (AttributeError, TypeError, ValueError) as exc:  # fhir.resources itself trips on some shapes
        raise FhirError(422, f"invalid {resource_type}: {_unparsed(body)}({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise FhirError(400, f"invalid {resource_type}: nested too deeply to validate", code="too-costly") from None
    for (rtype, element), allowed in REQUIRED_CODES.items():
        if rtype == resource_type and element in body and body[element] not in allowed:
            raise FhirError(
                422,
                f"invalid {resource_type}: {resource_type}.{element} {body[element]!r} is not one of {', '.join(allowed)}",
                code="code-invalid",
                expression=[f"{resource_type}.{element}"],
            )
    return body


def _unparsed(body: dict[str, Any]) -> str:
    """Which primitive extensions (``_name``) are not objects: the shapes fhir.resources fails on with a
    plain exception instead of a validation error (``{"_gender": "1"}``)."""
    bad = [
        key
        for key, value in body.items()
        if key.startswith("_") and value is not None and not isinstance(value, dict | list)
    ]
    return f"{', '.join(bad)} must be an object (a primitive's extension) " if bad else ""


def _invalid(resource_type: str, exc: ValidationError, *, status: int) -> FhirError:
    issues: list[dict[str, Any]] = [
        {
            "severity": "error",
            "code": "structure" if err["type"] in ("extra_forbidden", "missing") else "value",
            "diagnostics": f"{_path(resource_type, err['loc'])}: {err['msg']}",
            "expression": [_path(resource_type, err["loc"])],
        }
        for err in exc.errors()[:20]
    ]
    first = issues[0]
    return FhirError(
        status,
        f"invalid {resource_type}: {first['diagnostics']}",
        code=first["code"],
        expression=first["expression"],
        issues=issues[1:],
    )


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}"
    return path


PARALLEL_THRESHOLD = 200
_CHUNK = 100


def _validate_chunk(payload: bytes) -> list[tuple[int, int, str, str, list[str]]]:
    """Worker side: validate ``[[index, expected_type, resource], ...]``; return only the failures."""
    failures = []
    for index, expected_type, resource in orjson.loads(payload):
        try:
            validate_resource(resource, expected_type=expected_type)
        except FhirError as exc:
            failures.append((index, exc.status, exc.code, exc.diagnostics, exc.expression or []))
    return failures


_POOL: list[Executor] = []
_POOL_LOCK = threading.Lock()


def _pool() -> Executor:
    """The validation worker processes, started once (requests on several threads may ask at once);
    each worker exits when the server process dies (:func:`end_with_parent`)."""
    with _POOL_LOCK:
        if not _POOL:
            workers = max(1, min(4, os.cpu_count() or 1))
            _POOL.append(
                ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=end_with_parent,
                    initargs=(os.getpid(),),
                )
            )
        return _POOL[0]


def close_pool() -> None:
    """Stop the validation workers (the server's lifespan calls this on shutdown)."""
    with _POOL_LOCK:
        while _POOL:
            _POOL.pop().shutdown(wait=True, cancel_futures=True)


class PendingValidation:
    """Validation already running in worker processes (or done inline for small batches)."""

    def __init__(self, items: list[tuple[int, str, dict[str, Any]]]) -> None:
        self._done: dict[int, FhirError] | None = None
        self._futures = []
        if len(items) < PARALLEL_THRESHOLD:
            self._done = {i: e for i, e in ((i, _error_or_none(r, t)) for i, t, r in items) if e is not None}
        else:
            self._futures = [
                _pool().submit(_validate_chunk, orjson.dumps(items[k : k + _CHUNK]))
                for k in range(0, len(items), _CHUNK)
            ]

    def result(self) -> dict[int, FhirError]:
        if self._done is None:
            self._done = _collect([f.result() for f in self._futures])
        return self._done

    async def wait(self) -> dict[int, FhirError]:
        if self._done is None:
            self._done = _collect(list(await asyncio.gather(*(asyncio.wrap_future(f) for f in self._futures))))
        return self._done


def _collect(chunks: list[list[tuple[int, int, str, str, list[str]]]]) -> dict[int, FhirError]:
    return {
        index: FhirError(status, message, code=code, expression=expression or None)
        for chunk in chunks
        for index, status, code, message, expression in chunk
    }


def _error_or_none(resource: dict[str, Any], expected_type: str) -> FhirError | None:
    try:
        validate_resource(resource, expected_type=expected_type)
    except FhirError as exc:
        return exc
    return None
