"""Transaction and batch Bundles: ``urn:uuid:`` references resolved, transactions all-or-nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.store import Store, StoredResource, new_id
from medagent.fhir.server.validation import (
    PendingValidation,
    check_bundle_shape,
    check_id,
    check_resource_type,
    validate_resource,
)

_URN_REFERENCE = re.compile(rb'"reference":"(urn:[^"]+)"')

Entry = dict[str, Any]
# conditional_search(type, params) -> ids of the matching resources (at most 2: 0, 1 or "many")
ConditionalSearch = Callable[[str, list[tuple[str, str]]], list[str]]
# read_entry(url) -> the response entry of a batch's GET (read_url.read_entry bound to a store and base URL)
ReadEntry = Callable[[str], Entry]


def check_bundle(bundle: Any) -> tuple[str, list[Any]]:
    """(type, entries) of a transaction or batch Bundle, or a 400."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError(400, "POST / expects a Bundle of type transaction or batch")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError(400, f"Bundle.type must be transaction or batch, got {kind!r}", expression=["Bundle.type"])
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(400, "Bundle.entry must be a list", expression=["Bundle.entry"])
    check_bundle_shape(bundle)
    return kind, entries


class Transaction:
    """A transaction Bundle, checked and planned (``urn:uuid:`` references resolved); its resources
    validate in the background (worker processes for big bundles) until :meth:`commit`.

    The one path every transaction takes: the HTTP endpoint and the first-start load.
    ``trusted=True`` skips resource validation (only for data whose content hash the server verified).
    """

    def __init__(self, entries: list[Any], *, trusted: bool = False) -> None:
        self.plans = plan_transaction(entries)
        self.validation = (
            None
            if trusted
            else PendingValidation([(p["index"], p["type"], p["resource"]) for p in self.plans if "resource" in p])
        )

    @property
    def resources(self) -> int:
        return sum(1 for plan in self.plans if "resource" in plan)

    async def validated(self) -> None:
        """Wait for validation without blocking the event loop; raises the first invalid entry."""
        if self.validation is not None:
            _raise_first_invalid(await self.validation.wait())

    def commit(self, store: Store, conditional_search: ConditionalSearch) -> dict[str, Any]:
        """Write every entry in one database transaction (all or nothing); the response Bundle."""
        if self.validation is not None:
            _raise_first_invalid(self.validation.result())
        plans = self.plans
        with store.transaction():
            if all(p["method"] in ("POST", "PUT") and not p.get("if_none_exist") for p in plans):
                results = store.put_many([(p["type"], p["id"], p["resource"]) for p in plans])
                responses = [_response("201 Created" if created else "200 OK", stored) for stored, created in results]
            else:
                responses = [_execute(store, plan, conditional_search) for plan in plans]
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}


def _raise_first_invalid(failures: dict[int, FhirError]) -> None:
    if failures:
        index = min(failures)
        raise _at_entry(failures[index], index)


def plan_transaction(entries: list[Any]) -> list[Entry]:
    """Check every entry and resolve ``urn:uuid:`` references before anything is written."""
    plans: list[Entry] = []
    ids: dict[str, str] = {}
    for index, entry in enumerate(entries):
        plan = _plan_entry(index, entry)
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if plan["method"] in ("POST", "PUT") and isinstance(full_url, str) and full_url.startswith("urn:"):
            ids[full_url] = f"{plan['type']}/{plan['id']}"
        plans.append(plan)
    with_resources = [p for p in plans if "resource" in p]
    if with_resources:
        resolved = _resolve_references(orjson.dumps([p["resource"] for p in with_resources]), ids, with_resources)
        for plan, resource in zip(with_resources, resolved, strict=False):
            plan["resource"] = resource
    return plans


def _resolve_references(payload: bytes, ids: dict[str, str], plans: list[Entry]) -> list[dict[str, Any]]:
    def replace(match: re.Match[bytes]) -> bytes:
        urn = match.group(1).decode()
        if urn not in ids:
            raise FhirError(
                400, f"reference {urn!r} matches no entry fullUrl in this transaction", expression=["Bundle.entry"]
            )
        return b'"reference":"' + ids[urn].encode() + b'"'

    return orjson.loads(_URN_REFERENCE.sub(replace, payload))


def _plan_entry(index: int, entry: Any) -> Entry:
    try:
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise FhirError(400, "entry needs a request with method and url")
        method = str(entry["request"].get("method", "")).upper()
        url = str(entry["request"].get("url", "")).strip("/")
        path, _, query = url.partition("?")
        parts = path.split("/")
        plan: Entry = {"index": index, "method": method, "type": parts[0], "query": query}
        check_resource_type(parts[0])
        if method == "POST":
            plan["id"] = new_id()
            plan["resource"] = _entry_resource(entry)
            plan["if_none_exist"] = entry["request"].get("ifNoneExist")
        elif method == "PUT":
            if len(parts) != 2:
                raise FhirError(400, f"PUT url must be Type/id, got {url!r}")
            check_id(parts[1])
            plan["id"] = parts[1]
            plan["resource"] = {**_entry_resource(entry), "id": parts[1]}
        elif method in ("DELETE", "GET"):
            if len(parts) != 2 or query:
                raise FhirError(
                    400,
                    f"{method} url must be Type/id, got {url!r}; searches are not supported inside "
                    "a transaction: send them in a batch Bundle or as GET /Type?...",
                )
            plan["id"] = parts[1] if len(parts) == 2 else None
        else:
            raise FhirError(400, f"unsupported request.method {method!r}; use POST, PUT, DELETE or GET")
        return plan
    except FhirError as exc:
        raise _at_entry(exc, index) from None


def _entry_resource(entry: Entry) -> dict[str, Any]:
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        raise FhirError(400, "entry has no resource")
    return resource


def _at_entry(exc: FhirError, index: int) -> FhirError:
    expression = [f"Bundle.entry[{index}]." + e.split(".", 1)[-1] for e in exc.expression or []] or [
        f"Bundle.entry[{index}]"
    ]
    return FhirError(exc.status, f"Bundle.entry[{index}]: {exc.diagnostics}", code=exc.code, expression=expression)


def _execute(store: Store, plan: Entry, conditional_search: ConditionalSearch) -> Entry:
    method, rtype = plan["method"], plan["type"]
    if method == "POST":
        if plan.get("if_none_exist"):
            matches = conditional_search(rtype, parse_qsl(plan["if_none_exist"]))
            if len(matches) > 1:
                raise FhirError(412, f"Bundle.entry[{plan['index']}]: ifNoneExist matched {len(matches)} resources")
            if matches:
                return {"response": {"status": "200 OK", "location": f"{rtype}/{matches[0]}"}}
        stored, _ = store.put(rtype, plan["id"], plan["resource"])
        return _response("201 Created", stored)
    if method == "PUT":
        stored, created = store.put(rtype, plan["id"], plan["resource"])
        return _response("201 Created" if created else "200 OK", stored)
    if method == "DELETE":
        store.delete(rtype, plan["id"])
        return {"response": {"status": "204 No Content"}}
    found = store.read(rtype, plan["id"]) if plan["id"] else None
    if found is None or found.deleted:
        raise FhirError(404, f"Bundle.entry[{plan['index']}]: {rtype}/{plan['id']} not found")
    return {"resource": found.body, "response": {"status": "200 OK"}}


def _response(status: str, stored: StoredResource) -> Entry:
    return {
        "response": {
            "status": status,
            "location": f"{stored.type}/{stored.id}/_history/{stored.version}",
            "etag": stored.etag,
            "lastModified": stored.last_updated,
        }
    }


def _read(index: int, url: Any, read_entry: ReadEntry) -> Entry:
    try:
        if not isinstance(url, str) or not url.strip():
            raise FhirError(400, "GET entry needs request.url, e.g. Observation?patient=<id>")
        return read_entry(url)
    except FhirError as exc:
        raise _at_entry(exc, index) from None


def run_batch(
    store: Store, entries: list[Any], conditional_search: ConditionalSearch, read_entry: ReadEntry
) -> dict[str, Any]:
    """Each entry on its own: failures are reported per entry and do not undo the others. ``GET`` entries
    (reads, searches, compartment searches, ``$everything``) are answered by ``read_entry``."""
    responses = []
    for index, entry in enumerate(entries):
        try:
            request = entry.get("request") if isinstance(entry, dict) else None
            if isinstance(request, dict) and str(request.get("method", "")).upper() == "GET":
                responses.append(_read(index, request.get("url"), read_entry))
                continue
            plan = _plan_entry(index, entry)
            if "resource" in plan:
                validate_resource(plan["resource"], expected_type=plan["type"])
            with store.transaction():
                responses.append(_execute(store, plan, conditional_search))
        except FhirError as exc:
            responses.append({"response": {"status": str(exc.status), "outcome": exc.outcome()}})
    return {"resourceType": "Bundle", "type": "batch-response", "entry": responses}
