"""The HTTP layer of the embedded FHIR R4 server (Starlette): routes, headers, errors.

Reads (search, read, vread, history, ``$lastn``) run on the event loop first, with a small budget of
CPU time (``inline_read_seconds``): almost all of them finish in about a millisecond, and handing them
to a thread costs as much again (futures, a wake-up of the loop, the GIL passed back and forth). A read
still running when its budget ends is aborted and run again on the thread pool, so a long search never
holds up the requests behind it. (A budget of wall time moved reads the OS had merely preempted to the
pool, where they ran again and fought the loop for the GIL: issue 30's tail.) Writes, validation and
bundles always run on the pool (``db_threads``); each thread reads through its own SQLite connection and writes are serialized by the store.
(tools/bench_fhir.py, 2 cores, 16 clients: reads on the pool only 866 req/s and p99 37.7 ms with one
worker; inline first 1,361 req/s and 25.8 ms.)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from email.utils import format_datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import jsonpatch
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medagent.fhir.server.capability import capability_statement
from medagent.fhir.server.compartment import check_compartment
from medagent.fhir.server.everything import everything
from medagent.fhir.server.history import history_bundle
from medagent.fhir.server.lastn import last_n
from medagent.fhir.server.limits import check_json_depth, plain_int
from medagent.fhir.server.negotiation import check_can_produce, return_preference
from medagent.fhir.server.outcome import FhirError, information, operation_outcome, outcome_body
from medagent.fhir.server.read_url import current_version, read_entry
from medagent.fhir.server.search import matching_ids, search
from medagent.fhir.server.search_params import PARAMS
from medagent.fhir.server.security import FhirServerSecurity
from medagent.fhir.server.slots import SlotRouting, SlotStores, request_store
from medagent.fhir.server.smart_access import SmartAccess
from medagent.fhir.server.store import ReadBudgetSpent, Store, StoredResource
from medagent.fhir.server.transaction import Transaction, check_bundle, run_batch
from medagent.fhir.server.validation import check_id, check_resource_type, close_pool, validate_resource
from medagent.request_guard import BodyTooLarge, RequestGuard

FHIR_JSON = "application/fhir+json; charset=utf-8"
JSON_PATCH = "application/json-patch+json"
DEFAULT_DB_THREADS = min(8, (os.cpu_count() or 1) + 2)
INLINE_READ_SECONDS = 0.01  # a read's time on the event loop before it moves to the thread pool
BASE_URLS_KEPT = 4096  # distinct (scheme, host, root path) base URLs remembered (a slot server: one per slot)
log = logging.getLogger("medagent.fhir.server")
T = TypeVar("T")


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def version_headers(stored: StoredResource, base_url: str) -> dict[str, str]:
    modified = format_datetime(datetime.fromisoformat(stored.last_updated), usegmt=True)
    return {
        "ETag": stored.etag,
        "Last-Modified": modified,
        "Location": f"{base_url}/{stored.type}/{stored.id}/_history/{stored.version}",
    }


def resource_response(stored: StoredResource, base_url: str, status: int = 200) -> Response:
    assert stored.blob is not None
    return Response(stored.blob, status_code=status, media_type=FHIR_JSON, headers=version_headers(stored, base_url))


def written_response(request: Request, stored: StoredResource, base_url: str, status: int, done: str) -> Response:
    """The answer to a create, update or patch as ``Prefer: return=`` asks: the resource (``representation``,
    the default), no body (``minimal``) or an OperationOutcome saying what was ``done``; headers always."""
    preference = return_preference(request)
    if preference == "representation":
        return resource_response(stored, base_url, status)
    headers = {**version_headers(stored, base_url), "Preference-Applied": f"return={preference}"}
    if preference == "minimal":
        return Response(status_code=status, headers=headers)
    outcome = information(f"{done} {stored.type}/{stored.id} (version {stored.version})")
    return Response(orjson.dumps(outcome), status_code=status, media_type=FHIR_JSON, headers=headers)


def _version_from_if_match(if_match: str | None) -> int | None:
    if not if_match:
        return None
    digits = if_match.replace("W/", "").strip('"')
    try:
        return plain_int("If-Match", digits)
    except FhirError:
        raise FhirError(400, f'If-Match must be W/"<versionId>", got {if_match[:40]!r}') from None


def target_of(request: Request) -> tuple[str, str]:
    """The ``{type}/{id}`` a request names, both checked (a 400 naming the id, never a dot segment)."""
    rtype, rid = request.path_params["type"], request.path_params["id"]
    check_resource_type(rtype)
    check_id(rid)
    return rtype, rid


class FhirApp:
    """Route handlers bound to one store (or, on a slot server, to the store of each request's slot) and the
    server's policy flags."""

    def __init__(
        self,
        store: Store | None,
        *,
        strict: bool = False,
        allow_reset: bool = False,
        db_threads: int = DEFAULT_DB_THREADS,
        inline_read_seconds: float = INLINE_READ_SECONDS,
    ) -> None:
        self._store = store  # None: each request's slot (slots.request_store)
        self.strict = strict
        self.allow_reset = allow_reset
        self.inline_read_seconds = inline_read_seconds
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="fhir-db")
        self._base_urls: dict[tuple[Any, ...], str] = {}

    @property
    def store(self) -> Store:
        return self._store if self._store is not None else request_store.get()

    async def blocking(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (database, validation, planning) on the thread pool, off the event loop (in this
        request's context: on a slot server, ``self.store`` there is the request's slot)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, context.run, partial(work, *args, **kwargs)
        )

    async def reading(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read: here on the event loop within ``inline_read_seconds``, else again on the thread pool
        (``Store.read_budget``; 0 sends every read to the pool). ``work`` must not write."""
        if self.inline_read_seconds > 0:
            try:
                with self.store.read_budget(self.inline_read_seconds):
                    return work(*args, **kwargs)
            except ReadBudgetSpent:
                pass
        return await self.blocking(work, *args, **kwargs)

    def base_url(self, request: Request) -> str:
        """This server's base URL as the request names it (what Starlette's ``request.base_url`` gives),
        remembered per scheme, Host and root path: building it is a fair share of a small request's work."""
        scope = request.scope
        key = (
            scope.get("scheme"),
            request.headers.get("host"),
            scope.get("server"),
            scope.get("app_root_path", scope.get("root_path", "")),
        )
        known = self._base_urls.get(key)
        if known is None:
            if len(self._base_urls) >= BASE_URLS_KEPT:
                self._base_urls.clear()
            known = self._base_urls[key] = str(request.base_url).rstrip("/")
        return known

    def is_strict(self, request: Request) -> bool:
        prefer = request.headers.get("prefer", "")
        if "handling=strict" in prefer:
            return True
        if "handling=lenient" in prefer:
            return False
        return self.strict

    async def body_json(self, request: Request) -> Any:
        body = await request.body()  # its size is capped by the RequestGuard middleware
        if not body:
            raise FhirError(400, "request body is empty; a FHIR JSON resource is required")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FhirError(400, f"request body is not valid JSON: {exc}") from None
        check_json_depth(parsed)
        return parsed

    def conditional(self, rtype: str, params: list[tuple[str, str]]) -> list[str]:
        """Ids matching a conditional request's search (at most 2: enough to tell 0, 1 and many)."""
        return matching_ids(self.store, rtype, params, limit=2)

    def single_match(self, rtype: str, params: list[tuple[str, str]], interaction: str, several: str) -> str | None:
        """The one resource a conditional write's search selects (None: no match); several matches are a 412."""
        matches = self.conditional(rtype, params)
        if len(matches) > 1:
            raise FhirError(412, f"{interaction}: {urlencode(params)} matched more than one {rtype}; {several}")
        return matches[0] if matches else None

    # capability, search --------------------------------------------------------------------
    async def metadata(self, request: Request) -> Response:
        return fhir_response(capability_statement(self.base_url(request)))

    async def search_type(self, request: Request) -> Response:
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        params = list(request.query_params.multi_items())
        if request.method == "POST":
            form = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
            params += form
        bundle = await self.reading(
            search, self.store, rtype, params, base_url=self.base_url(request), strict=self.is_strict(request)
        )
        return fhir_response(bundle)

    async def compartment_search(self, request: Request) -> Response:
        """``GET /Patient/{id}/{type}``: a search of ``type`` within the patient's compartment."""
        compartment, rid, rtype = (request.path_params[k] for k in ("type", "id", "compartment_type"))
        check_resource_type(compartment)
        if rtype.startswith("$"):
            raise FhirError(
                404,
                f"no operation {rtype} answers GET on {compartment}/{rid}; instance operations "
                "here: POST $validate, and GET $everything on Patient",
            )
        check_resource_type(rtype)
        check_compartment(compartment)
        check_id(rid)
        bundle = await self.reading(
            search,
            self.store,
            rtype,
            list(request.query_params.multi_items()),
            base_url=self.base_url(request),
            strict=self.is_strict(request),
            patient_compartment=rid,
        )
        return fhir_response(bundle)

    async def everything(self, request: Request) -> Response:
        """``GET /Patient/$everything`` and ``GET /Patient/{id}/$everything``."""
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        if rtype != "Patient":
            raise FhirError(404, f"$everything is defined on Patient only, not {rtype}")
        if request.path_params.get("id") is not None:
            check_id(request.path_params["id"])
        bundle = await self.reading(
            everything,
            self.store,
            request.path_params.get("id"),
            list(request.query_params.multi_items()),
            base_url=self.base_url(request),
        )
        return fhir_response(bundle)

    async def lastn(self, request: Request) -> Response:
        if request.path_params["type"] != "Observation":
            check_resource_type(request.path_params["type"])
            raise FhirError(404, "$lastn is defined on Observation only: GET /Observation/$lastn?patient=...")
        params = list(request.query_params.multi_items())
        bundle = await self.reading(
            last_n, self.store, params, base_url=self.base_url(request), strict=self.is_strict(request)
        )
        return fhir_response(bundle)

    # create, conditional update/delete -----------------------------------------------------
    async def create(self, request: Request) -> Response:
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        body = await self.blocking(validate_resource, await self.body_json(request), expected_type=rtype)
        condition = request.headers.get("if-none-exist")
        params = parse_qsl(condition.split("?", 1)[-1], keep_blank_values=True) if condition else None

        def write() -> tuple[StoredResource, int]:
            with self.store.transaction():
                if params is not None:
                    matches = self.conditional(rtype, params)
                    if len(matches) > 1:
                        raise FhirError(412, f"If-None-Exist {condition!r} matched more than one {rtype}")
                    if matches:
                        existing = self.store.read(rtype, matches[0])
                        assert existing is not None
                        return existing, 200
                return self.store.create(body), 201

        stored, status = await self.blocking(write)
        return written_response(
            request, stored, self.base_url(request), status, "created" if status == 201 else "If-None-Exist matched"
        )

    async def conditional_update(self, request: Request) -> Response:
        """``PUT /Type?search``: no match creates, one match updates, several are a 412."""
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        params = list(request.query_params.multi_items())
        body = await self.blocking(validate_resource, await self.body_json(request), expected_type=rtype)

        def write() -> tuple[StoredResource, bool]:
            with self.store.transaction():
                match = self.single_match(rtype, params, "conditional update", "make the search select one resource")
                if match is None:
                    if body.get("id"):
                        check_id(body["id"])
                        return self.store.put(rtype, body["id"], body)
                    return self.store.create(body), True
                if body.get("id") not in (None, match):
                    raise FhirError(
                        400,
                        f"resource id {body['id']!r} is not the matched {rtype}/{match}",
                        expression=[f"{rtype}.id"],
                    )
                return self.store.put(rtype, match, body)

        stored, created = await self.blocking(write)
        return written_response(
            request, stored, self.base_url(request), 201 if created else 200, "created" if created else "updated"
        )

    async def conditional_delete(self, request: Request) -> Response:
        """``DELETE /Type?search``: deletes the one match; none is not an error; several are a 412."""
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        params = list(request.query_params.multi_items())

        def write() -> str:
            with self.store.transaction():
                match = self.single_match(
                    rtype, params, "conditional delete", "this server deletes one resource per conditional delete"
                )
                if match is None:
                    return f"no {rtype} matched {urlencode(params)}; nothing was deleted"
                self.store.delete(rtype, match)
                return f"deleted {rtype}/{match}"

        return fhir_response(information(await self.blocking(write)), 200)

    # instance interactions -------------------------------------------------------------------
    def _current(self, rtype: str, rid: str) -> StoredResource:
        return current_version(self.store, rtype, rid)

    async def read(self, request: Request) -> Response:
        rtype, rid = target_of(request)
        check_resource_type(rtype)
        return resource_response(await self.reading(self._current, rtype, rid), self.base_url(request))

    async def vread(self, request: Request) -> Response:
        (rtype, rid), vid = target_of(request), request.path_params["vid"]
        check_resource_type(rtype)
        try:
            version = plain_int("version id", vid)
        except FhirError:
            raise FhirError(400, f"version id must be a number, got {vid[:40]!r}") from None
        stored = await self.reading(self.store.vread, rtype, rid, version)
        if stored is None:
            raise FhirError(404, f"{rtype}/{rid}/_history/{vid} not found")
        if stored.deleted:
            raise FhirError(410, f"{rtype}/{rid} version {vid} is a deletion")
        return resource_response(stored, self.base_url(request))

    async def update(self, request: Request) -> Response:
        rtype, rid = target_of(request)
        check_resource_type(rtype)
        check_id(rid)
        body = await self.blocking(validate_resource, await self.body_json(request), expected_type=rtype)
        if body.get("id") not in (None, rid):
            raise FhirError(
                400, f"resource id {body.get('id')!r} does not match {rid!r} in the URL", expression=[f"{rtype}.id"]
            )
        expected = _version_from_if_match(request.headers.get("if-match"))
        stored, created = await self.blocking(self.store.put, rtype, rid, body, if_match=expected)
        return written_response(
            request, stored, self.base_url(request), 201 if created else 200, "created" if created else "updated"
        )

    async def patch(self, request: Request) -> Response:
        """JSON Patch (RFC 6902) of the current version; the result is validated like an update."""
        rtype, rid = target_of(request)
        check_resource_type(rtype)
        operations = await self._patch_operations(request)
        expected = _version_from_if_match(request.headers.get("if-match"))

        def write() -> StoredResource:
            with self.store.transaction():
                return self._apply_patch(rtype, rid, operations, expected)

        return written_response(request, await self.blocking(write), self.base_url(request), 200, "patched")

    async def conditional_patch(self, request: Request) -> Response:
        """``PATCH /Type?search``: patches the one match; none is a 404, several are a 412."""
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        params = list(request.query_params.multi_items())
        operations = await self._patch_operations(request)
        expected = _version_from_if_match(request.headers.get("if-match"))

        def write() -> StoredResource:
            with self.store.transaction():
                match = self.single_match(rtype, params, "conditional patch", "make the search select one resource")
                if match is None:
                    raise FhirError(
                        404, f"conditional patch: no {rtype} matched {urlencode(params)}; nothing was changed"
                    )
                return self._apply_patch(rtype, match, operations, expected)

        return written_response(request, await self.blocking(write), self.base_url(request), 200, "patched")

    async def _patch_operations(self, request: Request) -> list[tuple[dict[str, Any], jsonpatch.JsonPatch]]:
        """The body of a PATCH as (operation, its one-step patch) pairs, or a 400/415."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON_PATCH:
            raise FhirError(
                415,
                f"PATCH needs Content-Type {JSON_PATCH} (a JSON Patch document); got "
                f"{content_type or 'none'!r}. FHIRPath Patch is not supported",
            )
        operations = await self.body_json(request)
        if not isinstance(operations, list):
            raise FhirError(
                400,
                "a JSON Patch body is a JSON array of operations, e.g. "
                '[{"op": "replace", "path": "/status", "value": "final"}]',
            )
        try:
            return [(operation, jsonpatch.JsonPatch([operation])) for operation in operations]
        except (jsonpatch.InvalidJsonPatch, jsonpatch.JsonPointerException, TypeError, AttributeError) as exc:
            raise FhirError(400, f"invalid JSON Patch: {exc}") from None

    def _apply_patch(
        self, rtype: str, rid: str, operations: list[tuple[dict[str, Any], jsonpatch.JsonPatch]], expected: int | None
    ) -> StoredResource:
        """Patch the current version inside the caller's write transaction."""
        current = self._current(rtype, rid)
        if expected is not None and expected != current.version:
            raise FhirError(
                412, f"If-Match version {expected} does not match {rtype}/{rid} (version {current.version})"
            )
        patched: Any = current.body
        for index, (operation, patch) in enumerate(operations):
            try:
                patched = patch.apply(patched)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise FhirError(
                    422,
                    f"JSON Patch operation {index} ({operation.get('op')} "
                    f"{operation.get('path')}) failed on {rtype}/{rid}: {exc}",
                    code="processing",
                ) from None
        if not isinstance(patched, dict) or patched.get("resourceType") != rtype or patched.get("id") != rid:
            raise FhirError(400, "a patch may not change the resourceType or id", expression=[f"{rtype}.id"])
        validate_resource(patched, expected_type=rtype)
        return self.store.put(rtype, rid, patched, if_match=current.version)[0]

    async def delete(self, request: Request) -> Response:
        rtype, rid = target_of(request)
        check_resource_type(rtype)

        def write() -> str:
            with self.store.transaction():
                if self.store.read(rtype, rid) is None:
                    raise FhirError(404, f"{rtype}/{rid} not found")
                deleted = self.store.delete(rtype, rid)
            return f"deleted {rtype}/{rid}" if deleted else f"{rtype}/{rid} was already deleted"

        return fhir_response(information(await self.blocking(write)), 200)

    # history ------------------------------------------------------------------------------
    async def history(self, request: Request) -> Response:
        rtype = request.path_params.get("type")
        if rtype is not None:
            check_resource_type(rtype)
        if request.path_params.get("id") is not None:
            check_id(request.path_params["id"])
        bundle = await self.reading(
            history_bundle,
            self.store,
            rtype,
            request.path_params.get("id"),
            list(request.query_params.multi_items()),
            base_url=self.base_url(request),
        )
        return fhir_response(bundle)

    # operations ---------------------------------------------------------------------------
    async def validate(self, request: Request) -> Response:
        """``$validate``: 200 with an OperationOutcome listing the problems (or saying there are none)."""
        rtype = request.path_params["type"]
        check_resource_type(rtype)
        body = await self.body_json(request)
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            given = [p.get("resource") for p in body.get("parameter") or [] if p.get("name") == "resource"]
            if not given:
                raise FhirError(400, "$validate Parameters need a parameter named 'resource'")
            body = given[0]
        try:
            await self.blocking(validate_resource, body, expected_type=rtype)
        except FhirError as exc:
            return fhir_response(exc.outcome(), 200)
        return fhir_response(
            operation_outcome(
                [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": f"{rtype} is valid (no issues found)",
                    }
                ]
            )
        )

    async def bundle(self, request: Request) -> Response:
        kind, entries = await self.blocking(check_bundle, await self.body_json(request))
        if kind == "batch":
            reads = partial(read_entry, self.store, base_url=self.base_url(request), strict=self.is_strict(request))
            return fhir_response(await self.blocking(run_batch, self.store, entries, self.conditional, reads))
        transaction = await self.blocking(Transaction, entries)
        await transaction.validated()
        return fhir_response(await self.blocking(transaction.commit, self.store, self.conditional))

    # scoring ------------------------------------------------------------------------------
    def _require_reset(self) -> None:
        if not self.allow_reset:
            raise FhirError(403, "snapshot/reset/diff are disabled; start the server with --allow-reset")

    async def snapshot(self, request: Request) -> Response:
        self._require_reset()
        snapshot_id = await self.blocking(self.store.snapshot)
        return fhir_response(_parameters(snapshot=snapshot_id))

    async def reset(self, request: Request) -> Response:
        self._require_reset()
        requested = request.query_params.get("snapshot")
        snapshot_id, restored = await self.blocking(
            self.store.reset, plain_int("snapshot", requested) if requested else None
        )
        return fhir_response(_parameters(snapshot=snapshot_id, restored=restored))

    async def diff(self, request: Request) -> Response:
        """``GET $diff?snapshot=N``; ``POST $diff?snapshot=N&reset=M``: the same diff, then a reset to snapshot
        M in the same transaction (one request ends a scored task)."""
        self._require_reset()
        requested = request.query_params.get("snapshot")
        since = plain_int("snapshot", requested) if requested else None
        body: dict[str, Any] = {}
        if request.method == "POST":
            reset_to = request.query_params.get("reset")
            if reset_to is None:
                raise FhirError(400, "POST $diff resets after the diff: give reset=<snapshot> (GET $diff only reads)")
            snapshot_id, changes, (reset_id, restored) = await self.blocking(
                self.store.diff_then_reset, since, plain_int("reset", reset_to)
            )
            body["reset"] = {"snapshot": reset_id, "restored": restored}
        else:
            snapshot_id, changes = await self.blocking(self.store.diff, since)
        return Response(
            orjson.dumps({"snapshot": snapshot_id, "changes": [c.as_json() for c in changes], **body}),
            media_type="application/json",
        )


def _parameters(**values: int) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": k, "valueInteger": v} for k, v in values.items()]}


Handler = Callable[[Request], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            check_can_produce(request)
            return await handler(request)
        except FhirError as exc:
            return fhir_response(exc.outcome(), exc.status)
        except BodyTooLarge as exc:  # the request guard stopped a body growing past the limit
            return fhir_response(FhirError(exc.status, str(exc)).outcome(), exc.status)
        except RecursionError:
            return fhir_response(FhirError(400, "request is nested too deeply", code="too-costly").outcome(), 400)
        except Exception as exc:  # the server keeps serving; the client gets the reason
            log.exception("internal error on %s %s", request.method, request.url.path)
            return fhir_response(FhirError(500, f"internal server error: {exc}", code="exception").outcome(), 500)

    return endpoint


def _route(path: str, handlers: dict[str, Handler]) -> Route:
    """One route per path with every method it serves, so a 405 names them all in ``Allow``."""
    guarded = {method: _guard(handler) for method, handler in handlers.items()}
    if "GET" in guarded:
        guarded.setdefault("HEAD", guarded["GET"])

    async def endpoint(request: Request) -> Response:
        return await guarded[request.method](request)

    return Route(path, endpoint, methods=list(guarded))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (no such path, method not allowed) as OperationOutcomes too."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no FHIR interaction at {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; allowed: {headers.get('Allow', 'none')}"
    else:
        message = str(exc.detail)
    return fhir_response(FhirError(exc.status_code, message).outcome(), exc.status_code, headers)


def _load_searchable_models() -> None:
    """Import the fhir.resources models of the searchable types in the background after startup: the
    first request naming a type otherwise imports its model on the event loop (13-125 ms each, ~0.6 s
    for all), holding up every request in flight."""
    for resource_type in PARAMS:
        check_resource_type(resource_type)


def create_app(
    store: Store | SlotStores,
    *,
    strict: bool = False,
    allow_reset: bool = False,
    db_threads: int = DEFAULT_DB_THREADS,
    security: FhirServerSecurity | None = None,
    inline_read_seconds: float = INLINE_READ_SECONDS,
) -> Starlette:
    """The server app over one store, or over task databases (``SlotStores``: the API of slot ``n`` at
    ``/slots/{n}``); ``security``: Host/Origin/token/body rules (default: loopback only, no token);
    ``inline_read_seconds``: a read's budget on the event loop (:meth:`FhirApp.reading`)."""
    slots = store if isinstance(store, SlotStores) else None
    fhir = FhirApp(
        store if isinstance(store, Store) else None,
        strict=strict,
        allow_reset=allow_reset,
        db_threads=db_threads,
        inline_read_seconds=inline_read_seconds,
    )
    guard = security or FhirServerSecurity()
    routes = [
        _route("/metadata", {"GET": fhir.metadata}),
        _route("/$snapshot", {"POST": fhir.snapshot}),
        _route("/$reset", {"POST": fhir.reset}),
        _route("/$diff", {"GET": fhir.diff, "POST": fhir.diff}),
        _route("/_history", {"GET": fhir.history}),
        _route("/", {"POST": fhir.bundle}),
        _route(
            "/{type}",
            {
                "GET": fhir.search_type,
                "POST": fhir.create,
                "PUT": fhir.conditional_update,
                "PATCH": fhir.conditional_patch,
                "DELETE": fhir.conditional_delete,
            },
        ),
        _route("/{type}/_search", {"POST": fhir.search_type}),
        _route("/{type}/_history", {"GET": fhir.history}),
        _route("/{type}/$validate", {"POST": fhir.validate}),
        _route("/{type}/$lastn", {"GET": fhir.lastn}),
        _route("/{type}/$everything", {"GET": fhir.everything}),
        _route("/{type}/{id}", {"GET": fhir.read, "PUT": fhir.update, "PATCH": fhir.patch, "DELETE": fhir.delete}),
        _route("/{type}/{id}/$validate", {"POST": fhir.validate}),
        _route("/{type}/{id}/_history", {"GET": fhir.history}),
        _route("/{type}/{id}/_history/{vid}", {"GET": fhir.vread}),
        _route("/{type}/{id}/$everything", {"GET": fhir.everything}),
        _route("/{type}/{id}/{compartment_type}", {"GET": fhir.compartment_search}),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=_load_searchable_models, name="fhir-models", daemon=True).start()
        try:
            yield
        finally:  # uvicorn re-raises SIGTERM after this: close what started child processes and threads
            close_pool()
            fhir.executor.shutdown(wait=False, cancel_futures=True)

    middleware = [Middleware(RequestGuard, security=guard, refusal_body=outcome_body)]
    if slots is not None:
        middleware.append(Middleware(SlotRouting, slots=slots))
    if guard.access_tokens is not None:  # a SMART protected resource server (smart_access)
        middleware.append(Middleware(SmartAccess, policy=guard.access_tokens, fhir=fhir))
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error}, lifespan=lifespan, middleware=middleware
    )
    app.state.fhir = fhir
    return app
