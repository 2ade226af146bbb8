"""A read named by a relative URL, as in a batch Bundle's ``GET`` entries: read, vread, instance history,
search, compartment search, ``$everything`` and ``Observation/$lastn``, answered as a batch-response entry."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from medagent.fhir.server.compartment import check_compartment
from medagent.fhir.server.everything import everything
from medagent.fhir.server.history import history_bundle
from medagent.fhir.server.lastn import last_n
from medagent.fhir.server.limits import plain_int
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search import search
from medagent.fhir.server.store import Store, StoredResource
from medagent.fhir.server.validation import check_id, check_resource_type

_PLAIN_READ_PARAMS = ("_format", "_pretty")


def current_version(store: Store, rtype: str, rid: str) -> StoredResource:
    """The current version of a resource: 404 if it never existed, 410 if deleted."""
    stored = store.read(rtype, rid)
    if stored is None:
        raise FhirError(404, f"{rtype}/{rid} not found")
    if stored.deleted:
        raise FhirError(410, f"{rtype}/{rid} was deleted (version {stored.version})")
    return stored


def read_entry(store: Store, url: str, *, base_url: str, strict: bool) -> dict[str, Any]:
    """The batch-response entry of ``GET <url>`` (relative, or absolute on this server's base URL)."""
    target = url.strip()
    if target.startswith(base_url + "/"):
        target = target[len(base_url) + 1 :]
    elif urlsplit(target).scheme:
        raise FhirError(
            400,
            f"GET {url[:120]!r} is not on this server ({base_url}); use a relative URL such as "
            "Observation?patient=<id>",
        )
    path, _, query = target.lstrip("/").partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    parts = path.split("/")
    if not parts[0]:
        raise FhirError(400, "GET entry needs a URL such as Patient/<id> or Observation?patient=<id>")
    rtype = parts[0]
    check_resource_type(rtype)
    if len(parts) >= 2 and not parts[1].startswith("$"):
        check_id(parts[1])  # the one id rule: no '.' or '..'
    if len(parts) == 1:
        return _bundle_entry(search(store, rtype, params, base_url=base_url, strict=strict))
    if len(parts) == 2 and parts[1] == "$everything":
        _patient_operation(rtype)
        return _bundle_entry(everything(store, None, params, base_url=base_url))
    if len(parts) == 2 and parts[1] == "$lastn":
        if rtype != "Observation":
            raise FhirError(404, "$lastn is defined on Observation only")
        return _bundle_entry(last_n(store, params, base_url=base_url, strict=strict))
    if len(parts) == 2:
        _no_params(url, params)
        return _resource_entry(current_version(store, rtype, parts[1]))
    rid, rest = parts[1], parts[2:]
    if rest == ["$everything"]:
        _patient_operation(rtype)
        return _bundle_entry(everything(store, rid, params, base_url=base_url))
    if rest == ["_history"]:
        return _bundle_entry(history_bundle(store, rtype, rid, params, base_url=base_url))
    if len(rest) == 2 and rest[0] == "_history":
        _no_params(url, params)
        version = plain_int("version id", rest[1])
        stored = store.vread(rtype, rid, version)
        if stored is None:
            raise FhirError(404, f"{rtype}/{rid}/_history/{rest[1]} not found")
        if stored.deleted:
            raise FhirError(410, f"{rtype}/{rid} version {rest[1]} is a deletion")
        return _resource_entry(stored)
    if len(rest) == 1:
        check_resource_type(rest[0])
        check_compartment(rtype)
        return _bundle_entry(search(store, rest[0], params, base_url=base_url, strict=strict, patient_compartment=rid))
    raise FhirError(400, f"GET {url[:120]!r} names no read or search this server supports in a batch")


def _patient_operation(rtype: str) -> None:
    if rtype != "Patient":
        raise FhirError(404, f"$everything is defined on Patient only, not {rtype}")


def _no_params(url: str, params: list[tuple[str, str]]) -> None:
    extra = [name for name, _ in params if name not in _PLAIN_READ_PARAMS]
    if extra:
        raise FhirError(400, f"GET {url[:120]!r}: a read takes no parameters ({', '.join(extra)})")


def _bundle_entry(bundle: dict[str, Any]) -> dict[str, Any]:
    return {"resource": bundle, "response": {"status": "200 OK"}}


def _resource_entry(stored: StoredResource) -> dict[str, Any]:
    return {
        "resource": stored.body,
        "response": {
            "status": "200 OK",
            "etag": stored.etag,
            "lastModified": stored.last_updated,
            "location": f"{stored.type}/{stored.id}/_history/{stored.version}",
        },
    }
