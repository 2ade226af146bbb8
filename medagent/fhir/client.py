"""The one async FHIR client of medagent (httpx): read, search with lazy paging, writes, transactions.

Works unchanged against the embedded server, HAPI FHIR, cloud FHIR stores and EHR sandboxes.
Typed results are fhir.resources R4B models (Synthea and most servers are R4); ``*_json``
variants return plain dicts where parsing every resource would cost more than it gives.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
    Sequence,
)
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from pydantic import BaseModel

from medagent.fhir.errors import (
    FhirClientError,
    FhirInvalid,
    FhirTransportError,
    FhirUnsafeLinkError,
    error_for_status,
    outcome_message,
)
from medagent.fhir.ids import check_fhir_id, check_resource_type, split_reference
from medagent.fhir.resources import parse_resource, resource_json

Params = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
TokenProvider = Callable[[], Awaitable[str]]

_RETRY_STATUS = {429, 500, 502, 503, 504}
_SAFE_METHODS = {"GET", "HEAD"}


@cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process: building one loads the CA bundle (~40 ms)."""
    return ssl.create_default_context()


class BearerAuth(httpx.Auth):
    """Bearer-token auth; a provider coroutine is awaited per request so tokens can refresh."""

    def __init__(self, token: str | TokenProvider) -> None:
        self._token = token

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        token = self._token if isinstance(self._token, str) else await self._token()
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not isinstance(self._token, str):
            raise FhirClientError("a token provider coroutine needs the async client")
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def _refused_as_too_costly(response: httpx.Response) -> bool:
    """The server said the request costs too much (OperationOutcome ``too-costly``): sending it again
    would only cost as much again, so it is never retried."""
    if b"too-costly" not in response.content[:65536]:
        return False
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return False
    issues = body.get("issue") if isinstance(body, dict) else None
    return any(isinstance(i, dict) and i.get("code") == "too-costly" for i in issues or [])


class FhirClient:
    """Async FHIR R4 REST client with retries for safe requests, typed errors and pooled connections."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | TokenProvider | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_connections: int = 32,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            auth=auth or (BearerAuth(token) if token else None),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/fhir+json", **(headers or {})},
            transport=transport,
            verify=default_ssl_context() if verify is None else verify,
        )

    @classmethod
    def from_settings(cls, settings: Any, *, base_url: str | None = None, **overrides: Any) -> FhirClient:
        """A client configured from :class:`medagent.config.Settings` (a static token or SMART backend
        services: :func:`medagent.fhir.auth.client_auth.client_auth`); ``base_url``: another server."""
        from medagent.fhir.auth.client_auth import client_auth

        url = base_url or settings.effective_fhir_url
        options = {
            "auth": client_auth(settings, url),
            "timeout": settings.fhir_timeout,
            "retries": settings.fhir_retries,
        }
        return cls(url, **{**options, **overrides})

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # transport ---------------------------------------------------------------------------
    async def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        safe: bool | None = None,
    ) -> tuple[Any, httpx.Response]:
        """Send one request; retries 429/5xx/timeouts for safe methods; raises typed errors."""
        is_safe = method.upper() in _SAFE_METHODS if safe is None else safe
        send_headers = dict(headers or {})
        content = None
        if json is not None:
            content = orjson.dumps(json)
            send_headers.setdefault("Content-Type", "application/fhir+json")
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, url, params=_as_params(params), content=content, headers=send_headers
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if is_safe and attempt < self.retries:
                    await asyncio.sleep(self._delay(attempt, None))
                    attempt += 1
                    continue
                raise FhirTransportError(f"{method} {self._absolute(url)} failed: {exc!r}") from exc
            if (
                response.status_code in _RETRY_STATUS
                and is_safe
                and attempt < self.retries
                and not _refused_as_too_costly(response)
            ):
                await asyncio.sleep(self._delay(attempt, response.headers.get("Retry-After")))
                attempt += 1
                continue
            return self._decode(method, response), response

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), 30.0)
        return self.backoff * (2**attempt) * (0.5 + random.random())

    def _absolute(self, url: str) -> str:
        return url if url.startswith("http") else f"{self.base_url}/{url.lstrip('/')}"

    def _decode(self, method: str, response: httpx.Response) -> Any:
        body: Any = None
        if response.content:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = None
        if response.is_success:
            return body
        fallback = response.text[:300] or response.reason_phrase
        raise error_for_status(
            response.status_code,
            outcome_message(body, fallback),
            body if isinstance(body, dict) else None,
            f"{method} {response.request.url}",
        )

    # reads -------------------------------------------------------------------------------
    async def capabilities(self) -> dict[str, Any]:
        body, _ = await self.request_json("GET", "metadata")
        return body

    async def read_json(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        body, _ = await self.request_json("GET", _path(resource_type, resource_id))
        return body

    async def read(self, resource_type: str, resource_id: str) -> BaseModel:
        return parse_resource(await self.read_json(resource_type, resource_id))

    async def resolve(self, reference: str) -> dict[str, Any]:
        """Read ``Type/id`` (or an absolute URL under the base URL) as JSON."""
        path = reference
        if reference.startswith("http"):
            self._check_link(reference)
            path = reference[len(self.base_url) + 1 :]
        resource_type, resource_id = split_reference(path)
        return await self.read_json(resource_type, resource_id)

    async def search_page(self, resource_type: str, params: Params | None = None) -> dict[str, Any]:
        """The first page of a search, as a searchset Bundle."""
        body, _ = await self.request_json("GET", resource_type, params=params)
        return body

    async def search_json(
        self, resource_type: str, params: Params | None = None, *, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Matching resources as dicts, fetching further pages only when iterated that far."""
        yielded = 0
        bundle = await self.search_page(resource_type, params)
        while True:
            for entry in bundle.get("entry", []):
                if entry.get("search", {}).get("mode", "match") != "match" or "resource" not in entry:
                    continue
                yield entry["resource"]
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            next_url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if not next_url:
                return
            self._check_link(next_url)
            bundle, _ = await self.request_json("GET", next_url)

    async def search(
        self, resource_type: str, params: Params | None = None, *, limit: int | None = None
    ) -> AsyncIterator[BaseModel]:
        """Typed variant of :meth:`search_json`."""
        async for resource in self.search_json(resource_type, params, limit=limit):
            yield parse_resource(resource)

    async def search_all_json(
        self, resource_type: str, params: Params | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return [r async for r in self.search_json(resource_type, params, limit=limit)]

    async def count(self, resource_type: str, params: Params | None = None) -> int:
        merged = [*(_as_params(params or []) or []), ("_summary", "count")]
        bundle = await self.search_page(resource_type, merged)
        return int(bundle.get("total", 0))

    def _check_link(self, url: str) -> None:
        base, link = urlsplit(self.base_url), urlsplit(url)
        same_origin = (link.scheme, link.netloc) == (base.scheme, base.netloc)
        if not same_origin or not (link.path + "/").startswith(base.path.rstrip("/") + "/"):
            raise FhirUnsafeLinkError(f"refusing to follow a link outside {self.base_url}: {url}")

    # writes ------------------------------------------------------------------------------
    async def create_json(self, resource: dict[str, Any], *, if_none_exist: str | None = None) -> dict[str, Any]:
        """Create; with ``if_none_exist`` (a search query) an existing match is returned instead."""
        body, _ = await self.create_or_find_json(resource, if_none_exist=if_none_exist)
        return body

    async def create_or_find_json(
        self, resource: dict[str, Any], *, if_none_exist: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create (conditionally with ``if_none_exist``): the resource on the server, and whether this call
        created it (201) rather than found an existing match (200)."""
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else None
        body, response = await self.request_json("POST", resource["resourceType"], json=resource, headers=headers)
        if body is None and "location" in response.headers:
            body = await self.resolve(response.headers["location"])
        return body, response.status_code == 201

    async def create(self, resource: BaseModel | dict[str, Any], *, if_none_exist: str | None = None) -> BaseModel:
        return parse_resource(await self.create_json(resource_json(resource), if_none_exist=if_none_exist))

    async def update_json(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        if not resource.get("id"):
            raise FhirInvalid(400, "update needs a resource with an id")
        headers = {"If-Match": if_match} if if_match else None
        body, _ = await self.request_json(
            "PUT", _path(resource["resourceType"], resource["id"]), json=resource, headers=headers
        )
        return body

    async def update(self, resource: BaseModel | dict[str, Any], *, if_match: str | None = None) -> BaseModel:
        return parse_resource(await self.update_json(resource_json(resource), if_match=if_match))

    async def delete(self, resource_type: str, resource_id: str) -> None:
        await self.request_json("DELETE", _path(resource_type, resource_id))

    async def patch_json(
        self,
        resource_type: str,
        resource_id: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """JSON Patch (RFC 6902) of one resource, e.g. ``[{"op": "replace", "path": "/status", "value": "final"}]``."""
        headers = {"Content-Type": "application/json-patch+json", **({"If-Match": if_match} if if_match else {})}
        body, _ = await self.request_json(
            "PATCH", _path(resource_type, resource_id), json=list(operations), headers=headers
        )
        return body

    async def update_where_json(self, resource: dict[str, Any], params: Params) -> dict[str, Any]:
        """Conditional update ``PUT Type?params``: creates when nothing matches, updates the one match,
        and raises :class:`FhirConflict` (412) when several match."""
        body, response = await self.request_json("PUT", resource["resourceType"], params=params, json=resource)
        if body is None and "location" in response.headers:
            body = await self.resolve(response.headers["location"])
        return body

    async def delete_where(self, resource_type: str, params: Params) -> None:
        """Conditional delete ``DELETE Type?params`` (412 when the server deletes one at a time and several match)."""
        await self.request_json("DELETE", resource_type, params=params)

    async def history_json(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: str | None = None,
        count: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """History entries (``request``, ``response`` and, unless a deletion, ``resource``), newest first,
        of one resource, one type, or (no arguments) the whole server; further pages fetched lazily."""
        if resource_type is not None:
            check_resource_type(resource_type)
        path = "/".join(p for p in (resource_type, resource_id and check_fhir_id(resource_id), "_history") if p)
        params = [*([("_since", since)] if since else []), *([("_count", str(count))] if count else [])]
        bundle, _ = await self.request_json("GET", path, params=params or None)
        while True:
            for entry in bundle.get("entry", []):
                yield entry
            next_url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if not next_url:
                return
            self._check_link(next_url)
            bundle, _ = await self.request_json("GET", next_url)

    async def validate_json(self, resource: dict[str, Any]) -> dict[str, Any]:
        """``$validate``: the server's OperationOutcome for the resource (nothing is stored)."""
        body, _ = await self.request_json("POST", f"{resource['resourceType']}/$validate", json=resource, safe=False)
        return body

    async def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        body, _ = await self.request_json("POST", "", json=bundle)
        return body

    # medagent scoring operations (embedded server started with --allow-reset) ------------
    async def snapshot(self) -> int:
        body, _ = await self.request_json("POST", "$snapshot")
        return _parameter(body, "snapshot")

    async def reset(self, snapshot: int | None = None) -> int:
        params = {"snapshot": str(snapshot)} if snapshot is not None else None
        body, _ = await self.request_json("POST", "$reset", params=params)
        return _parameter(body, "restored")

    async def diff(self, snapshot: int | None = None, *, then_reset: int | None = None) -> list[dict[str, Any]]:
        """What changed since ``snapshot`` (default: the latest); ``then_reset``: and then back to that snapshot,
        in the same request and transaction."""
        params = {"snapshot": str(snapshot)} if snapshot is not None else {}
        if then_reset is not None:
            params["reset"] = str(then_reset)
        body, _ = await self.request_json("GET" if then_reset is None else "POST", "$diff", params=params or None)
        return list(body["changes"])


async def check_fhir_server(base_url: str, *, client: FhirClient | None = None, timeout: float = 10.0) -> None:
    """A FHIR server answers ``GET /metadata`` at ``base_url`` (through ``client``, e.g. one with the run's
    credentials, else an anonymous one), else a :class:`FhirClientError` saying why: commands check the
    server they were given before they write anything."""
    if not base_url.startswith(("http://", "https://")):
        if client is not None:
            await client.aclose()
        raise FhirTransportError(f"{base_url!r} is not an http(s) base URL")
    async with client or FhirClient(base_url, timeout=timeout, retries=0) as probe:
        await probe.capabilities()


def _path(resource_type: str, resource_id: str) -> str:
    """``Type/id`` for a request URL, both checked: an id such as ``.`` or ``..`` would be resolved as a path
    segment (``Observation/.`` is a search of every Observation), so it is refused before sending."""
    return f"{check_resource_type(resource_type)}/{check_fhir_id(resource_id, f'{resource_type} id')}"


def _as_params(params: Params | None) -> list[tuple[str, Any]] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        items: list[tuple[str, Any]] = []
        for key, value in params.items():
            if isinstance(value, (list, tuple)):
                items.extend((key, str(v)) for v in value)
            else:
                items.append((key, str(value)))
        return items
    return [(str(k), str(v)) for k, v in params]


def _parameter(body: dict[str, Any], name: str) -> int:
    for parameter in body.get("parameter", []):
        if parameter.get("name") == name:
            return int(parameter["valueInteger"])
    raise FhirClientError(f"server reply has no parameter {name!r}")
