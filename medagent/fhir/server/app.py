"""The HTTP layer of the embedded FHIR R4 server (Starlette): routes, headers, errors."""

from __future__ import annotations

import logging
from email.utils import format_datetime
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medagent.fhir.server.capability import capability_statement
from medagent.fhir.server.outcome import FhirError, information
from medagent.fhir.server.search import search
from medagent.fhir.server.store import Store, StoredResource
from medagent.fhir.server.transaction import (
    check_bundle,
    execute_transaction,
    plan_transaction,
    raise_first_invalid,
    run_batch,
    start_validation,
)
from medagent.fhir.server.validation import check_id, check_resource_type, validate_resource

FHIR_JSON = "application/fhir+json; charset=utf-8"
MAX_BODY_BYTES = 64 * 1024 * 1024
log = logging.getLogger("medagent.fhir.server")


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def _resource_headers(stored: StoredResource, base_url: str) -> dict[str, str]:
    modified = format_datetime(datetime.fromisoformat(stored.last_updated), usegmt=True)
    return {
        "ETag": stored.etag,
        "Last-Modified": modified,
        "Location": f"{base_url}/{stored.type}/{stored.id}/_history/{stored.version}",
    }


class FhirApp:
    """Route handlers bound to one store and the server's policy flags."""

    def __init__(self, store: Store, *, strict: bool = False, allow_reset: bool = False) -> None:
        self.store = store
        self.strict = strict
        self.allow_reset = allow_reset

    def base_url(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def is_strict(self, request: Request) -> bool:
        prefer = request.headers.get("prefer", "")
        if "handling=strict" in prefer:
            return True
        if "handling=lenient" in prefer:
            return False
        return self.strict

    async def body_json(self, request: Request) -> Any:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise FhirError(413, f"request body over {MAX_BODY_BYTES // (1024 * 1024)} MiB")
        if not body:
            raise FhirError(400, "request body is empty; a FHIR JSON resource is required")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FhirError(400, f"request body is not valid JSON: {exc}") from None

    # handlers ----------------------------------------------------------------------------
    async def metadata(self, request: Request) -> Response:
        return fhir_response(capability_statement(self.base_url(request)))

    async def search_type(self, request: Request) -> Response:
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        params = list(request.query_params.multi_items())
        if request.method == "POST":
            form = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
            params += form
        return fhir_response(self._search(request, rtype, params))

    def _search(self, request: Request, rtype: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        return search(self.store, rtype, params, base_url=self.base_url(request), strict=self.is_strict(request))

    def _matches(self, request: Request, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        bundle = search(self.store, rtype, [*params, ("_count", "2")], base_url=self.base_url(request), strict=True)
        return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]

    async def create(self, request: Request) -> Response:
        rtype = request.path_params["type"]
        body = validate_resource(await self.body_json(request), expected_type=rtype)
        condition = request.headers.get("if-none-exist")
        if condition:
            matches = self._matches(request, rtype, parse_qsl(condition.split("?", 1)[-1]))
            if len(matches) > 1:
                raise FhirError(412, f"If-None-Exist {condition!r} matched {len(matches)} resources")
            if matches:
                existing = self.store.read(rtype, matches[0]["id"])
                assert existing is not None
                return fhir_response(existing.body, 200, _resource_headers(existing, self.base_url(request)))
        stored = self.store.create(body)
        return fhir_response(stored.body, 201, _resource_headers(stored, self.base_url(request)))

    async def read(self, request: Request) -> Response:
        rtype, rid = request.path_params["type"], request.path_params["id"]
        check_resource_type(rtype)
        stored = self.store.read(rtype, rid)
        if stored is None:
            raise FhirError(404, f"{rtype}/{rid} not found")
        if stored.deleted:
            raise FhirError(410, f"{rtype}/{rid} was deleted (version {stored.version})")
        return fhir_response(stored.body, 200, _resource_headers(stored, self.base_url(request)))

    async def vread(self, request: Request) -> Response:
        rtype, rid, vid = request.path_params["type"], request.path_params["id"], request.path_params["vid"]
        check_resource_type(rtype)
        if not vid.isdigit():
            raise FhirError(400, f"version id must be a number, got {vid!r}")
        stored = self.store.vread(rtype, rid, int(vid))
        if stored is None:
            raise FhirError(404, f"{rtype}/{rid}/_history/{vid} not found")
        if stored.deleted:
            raise FhirError(410, f"{rtype}/{rid} version {vid} is a deletion")
        return fhir_response(stored.body, 200, _resource_headers(stored, self.base_url(request)))

    async def update(self, request: Request) -> Response:
        rtype, rid = request.path_params["type"], request.path_params["id"]
        check_id(rid)
        body = validate_resource(await self.body_json(request), expected_type=rtype)
        if body.get("id") not in (None, rid):
            raise FhirError(400, f"resource id {body.get('id')!r} does not match {rid!r} in the URL",
                            expression=[f"{rtype}.id"])
        if_match = request.headers.get("if-match")
        expected = None
        if if_match:
            digits = if_match.replace("W/", "").strip('"')
            if not digits.isdigit():
                raise FhirError(400, f"If-Match must be W/\"<versionId>\", got {if_match!r}")
            expected = int(digits)
        stored, created = self.store.put(rtype, rid, body, if_match=expected)
        return fhir_response(stored.body, 201 if created else 200, _resource_headers(stored, self.base_url(request)))

    async def delete(self, request: Request) -> Response:
        rtype, rid = request.path_params["type"], request.path_params["id"]
        check_resource_type(rtype)
        existing = self.store.read(rtype, rid)
        if existing is None:
            raise FhirError(404, f"{rtype}/{rid} not found")
        deleted = self.store.delete(rtype, rid)
        message = f"deleted {rtype}/{rid}" if deleted else f"{rtype}/{rid} was already deleted"
        return fhir_response(information(message), 200)

    async def bundle(self, request: Request) -> Response:
        kind, entries = check_bundle(await self.body_json(request))

        def conditional(rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
            return self._matches(request, rtype, params)

        if kind == "batch":
            return fhir_response(run_batch(self.store, entries, conditional))
        plans = plan_transaction(entries)
        raise_first_invalid(plans, await start_validation(plans).wait())
        return fhir_response(execute_transaction(self.store, plans, conditional))

    def _require_reset(self) -> None:
        if not self.allow_reset:
            raise FhirError(403, "snapshot/reset/diff are disabled; start the server with --allow-reset")

    async def snapshot(self, request: Request) -> Response:
        self._require_reset()
        snapshot_id = self.store.snapshot()
        return fhir_response(_parameters(snapshot=snapshot_id))

    async def reset(self, request: Request) -> Response:
        self._require_reset()
        requested = request.query_params.get("snapshot")
        snapshot_id, restored = self.store.reset(int(requested) if requested and requested.isdigit() else None)
        return fhir_response(_parameters(snapshot=snapshot_id, restored=restored))

    async def diff(self, request: Request) -> Response:
        self._require_reset()
        requested = request.query_params.get("snapshot")
        snapshot_id, changes = self.store.diff(int(requested) if requested and requested.isdigit() else None)
        return Response(orjson.dumps({"snapshot": snapshot_id, "changes": [c.as_json() for c in changes]}),
                        media_type="application/json")


def _parameters(**values: int) -> dict[str, Any]:
    return {"resourceType": "Parameters",
            "parameter": [{"name": k, "valueInteger": v} for k, v in values.items()]}


def _guard(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except FhirError as exc:
            return fhir_response(exc.outcome(), exc.status)
        except Exception as exc:  # the server keeps serving; the client gets the reason
            log.exception("internal error on %s %s", request.method, request.url.path)
            return fhir_response(FhirError(500, f"internal server error: {exc}", code="exception").outcome(), 500)

    return endpoint


def create_app(store: Store, *, strict: bool = False, allow_reset: bool = False) -> Starlette:
    fhir = FhirApp(store, strict=strict, allow_reset=allow_reset)
    routes = [
        Route("/metadata", _guard(fhir.metadata), methods=["GET"]),
        Route("/$snapshot", _guard(fhir.snapshot), methods=["POST"]),
        Route("/$reset", _guard(fhir.reset), methods=["POST"]),
        Route("/$diff", _guard(fhir.diff), methods=["GET"]),
        Route("/", _guard(fhir.bundle), methods=["POST"]),
        Route("/{type}", _guard(fhir.search_type), methods=["GET"]),
        Route("/{type}", _guard(fhir.create), methods=["POST"]),
        Route("/{type}/_search", _guard(fhir.search_type), methods=["POST"]),
        Route("/{type}/{id}", _guard(fhir.read), methods=["GET"]),
        Route("/{type}/{id}", _guard(fhir.update), methods=["PUT"]),
        Route("/{type}/{id}", _guard(fhir.delete), methods=["DELETE"]),
        Route("/{type}/{id}/_history/{vid}", _guard(fhir.vread), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.fhir = fhir
    return app
