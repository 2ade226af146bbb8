"""History at instance, type and system level: a ``history`` Bundle of versions, newest first."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from medagent.fhir.server.limits import MAX_OFFSET, plain_int
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search import DEFAULT_COUNT, MAX_COUNT
from medagent.fhir.server.store import Store, StoredResource
from medagent.fhir.server.values import epoch_to_instant, parse_date_param


def history_bundle(
    store: Store, resource_type: str | None, resource_id: str | None, params: list[tuple[str, str]], *, base_url: str
) -> dict[str, Any]:
    """``_since``, ``_count`` and ``_offset``; anything else is a 400 (it would filter)."""
    since_text, since, count, offset = None, None, DEFAULT_COUNT, 0
    for name, value in params:
        if name == "_since":
            since_text, since = value, since_instant(value)
        elif name in ("_count", "_offset"):
            number = plain_int(name, value, maximum=None if name == "_count" else MAX_OFFSET)
            count, offset = (min(number, MAX_COUNT), offset) if name == "_count" else (count, number)
        elif name not in ("_format", "_pretty"):
            raise FhirError(400, f"history parameter {name!r} is not supported; use _since, _count, _offset")
    with store.reading():
        if resource_id is not None and store.read(resource_type, resource_id) is None:  # type: ignore[arg-type]
            raise FhirError(404, f"{resource_type}/{resource_id} not found")
        total, versions = store.history(resource_type, resource_id, since=since, count=count, offset=offset)
    path = "/".join(p for p in (base_url, resource_type, resource_id, "_history") if p)
    query = urlencode([*([("_since", since_text)] if since_text else []), ("_count", str(count))])
    links = offset_links(f"{path}?{query}", offset=offset, count=count, total=total)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "total": total, "link": links}
    if versions:
        bundle["entry"] = [history_entry(base_url, version) for version in versions]
    return bundle


def since_instant(value: str) -> str:
    """``_since`` (history, ``$everything``) as the stored ``last_updated`` text it compares with."""
    return epoch_to_instant(parse_date_param("_since", value)[1])


def offset_links(prefix: str, *, offset: int, count: int, total: int) -> list[dict[str, str]]:
    """self/next/previous links of one page; ``prefix``: the URL with its query, less ``_offset``."""

    def url(at: int) -> str:
        return f"{prefix}&_offset={at}" if at else prefix

    links = [{"relation": "self", "url": url(offset)}]
    if offset + count < total:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    return links


def history_entry(base_url: str, version: StoredResource) -> dict[str, Any]:
    key = f"{version.type}/{version.id}"
    if version.deleted:
        request, status = {"method": "DELETE", "url": key}, "204 No Content"
    elif version.version == 1:
        request, status = {"method": "POST", "url": version.type}, "201 Created"
    else:
        request, status = {"method": "PUT", "url": key}, "200 OK"
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{key}"}
    if version.blob is not None:
        entry["resource"] = orjson.Fragment(version.blob)
    entry["request"] = request
    entry["response"] = {"status": status, "etag": version.etag, "lastModified": version.last_updated}
    return entry
