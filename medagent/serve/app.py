"""The Starlette app of ``medagent serve``: JSON API, server-sent step events, OpenAPI schema, browser UI."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirClientError, FhirNotFound
from medagent.request_guard import BodyTooLarge
from medagent.serve.auth import (
    SESSION_COOKIE,
    authorized,
    guarded,
    session_value,
    token_matches,
)
from medagent.serve.cds_hooks.routes import CdsHooks, cds_routes
from medagent.serve.errors import ApiError, describe, error_response, json_object
from medagent.serve.openapi import Endpoint, openapi_document
from medagent.serve.records import patient_in_context, read_resource, search_patients
from medagent.serve.runs import RunError, RunManager, RunNotFound
from medagent.serve.schemas import (
    Decision,
    Login,
    PatientList,
    ResourceView,
    RunList,
    RunView,
    ServiceInfo,
    StartRun,
    iso_moment,
)
from medagent.serve.smart_launch import LAUNCH_COOKIE, LaunchSession, SmartLaunch
from medagent.version import __version__
from medagent.vocabulary import parse_instant

STATIC = Path(__file__).parent / "static"
STEP_COUNT = re.compile(r"[0-9]{1,9}", re.ASCII)
access_log = logging.getLogger("medagent.serve.access")
M = TypeVar("M", bound=BaseModel)


def _manager(request: Request) -> RunManager:
    return request.app.state.manager


def _launched(request: Request) -> LaunchSession | None:
    """The SMART launch this browser opened (its runs use the launch's token and patient), if any."""
    smart: SmartLaunch | None = request.app.state.smart
    return smart.session_for(request) if smart is not None else None


def _client(request: Request) -> FhirClient:
    session = _launched(request)
    return session.client if session is not None else _manager(request).client


def _visible_run(request: Request) -> str:
    """The run id of the path; a launched session sees only its own runs (others are 404, as unknown)."""
    run_id: str = request.path_params["run_id"]
    session = _launched(request)
    if session is not None and run_id not in session.runs:
        raise RunNotFound(f"no run {run_id!r} in this launch")
    return run_id


async def _body(request: Request, model: type[M]) -> M:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise ApiError(415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")
    fields = f"the body must be a JSON object with the fields of {model.__name__}"
    data = await json_object(request, not_object=(422, fields))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_body", describe(exc)) from None


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def _query_now(request: Request) -> datetime:
    value = request.query_params.get("now")
    if not value:
        return datetime.now(UTC)
    try:
        return parse_instant(iso_moment(value))
    except ValueError as exc:
        raise ApiError(422, "invalid_query", str(exc)) from None


# handlers -------------------------------------------------------------------------------------
async def start_run(request: Request) -> Response:
    body = await _body(request, StartRun)
    session = _launched(request)
    if session is None:
        view = await _manager(request).start(body.question, patient=body.patient, now=body.now)
        return _json(view, 202)
    patient = body.patient or session.patient
    if session.patient is not None and patient != session.patient:
        raise ApiError(
            403,
            "not_in_context",
            f"this launch is about Patient/{session.patient}; it cannot run about Patient/{patient}",
        )
    view = await _manager(request).start(body.question, patient=patient, now=body.now, client=session.client)
    session.runs.add(view.run_id)
    return _json(view, 202)


async def list_runs(request: Request) -> Response:
    try:
        limit = min(max(int(request.query_params.get("limit", "20")), 1), 200)
    except ValueError:
        raise ApiError(422, "invalid_query", "limit must be a whole number (1-200)") from None
    session = _launched(request)
    runs = await _manager(request).list(limit if session is None else 200)
    if session is not None:
        runs = [run for run in runs if run.run_id in session.runs][:limit]
    return _json(RunList(runs=runs))


async def get_run(request: Request) -> Response:
    return _json(await _manager(request).get(_visible_run(request)))


async def run_events(request: Request) -> Response:
    manager = _manager(request)
    run_id = _visible_run(request)
    await manager.get(run_id)  # 404 before the stream opens
    after_text = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if STEP_COUNT.fullmatch(after_text) is None:  # str.isdigit() also accepts '²' and 5,000 digits, which int() refuses
        raise ApiError(
            422, "invalid_query", f"after / Last-Event-ID must be a step count (0-999999999), got {after_text[:20]!r}"
        )

    async def stream() -> Any:
        async for event in manager.events(run_id, after=int(after_text)):
            yield ServerSentEvent(data=event.data, event=event.event, id=event.id)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


async def decide_write(request: Request) -> Response:
    body = await _body(request, Decision)
    view = await _manager(request).decide(
        _visible_run(request), pending_id=body.pending_id, approve=body.approve, reason=body.reason
    )
    return _json(view, 202)


async def resume_run(request: Request) -> Response:
    return _json(await _manager(request).resume(_visible_run(request)), 202)


async def find_patients(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    if len(query) > 100:
        raise ApiError(422, "invalid_query", "q must be at most 100 characters")
    session = _launched(request)
    if session is not None and session.patient is not None:  # the launch's patient is the only one
        rows = [await patient_in_context(session.client, session.patient, _query_now(request))]
    else:
        rows = await search_patients(_client(request), query, _query_now(request))
    return _json(PatientList(patients=rows))


async def get_resource(request: Request) -> Response:
    reference = f"{request.path_params['kind']}/{request.path_params['id']}"
    try:
        view = await read_resource(_client(request), reference, _query_now(request))
    except ValueError as exc:
        raise ApiError(400, "invalid_reference", str(exc)) from None
    except FhirNotFound:
        raise ApiError(404, "unknown_resource", f"the FHIR server has no {reference}") from None
    return _json(view)


async def service_info(request: Request) -> Response:
    return _json(request.app.state.info)


async def get_session(request: Request) -> Response:
    session = _launched(request)
    launch = (
        None
        if session is None
        else {"iss": session.iss, "patient": session.patient, "fhir_user": session.fhir_user, "scopes": session.scopes}
    )
    return JSONResponse(
        {
            "auth": request.app.state.token is not None,
            "authorized": session is not None or authorized(request, request.app.state.token),
            "launch": launch,
        }
    )


async def open_session(request: Request) -> Response:
    body = await _body(request, Login)
    token = request.app.state.token
    if token is None:
        return JSONResponse({"auth": False, "authorized": True})
    if not token_matches(token, body.token):
        raise ApiError(401, "unauthorized", "that token is not this service's token")
    response = JSONResponse({"auth": True, "authorized": True})
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def close_session(request: Request) -> Response:
    response = JSONResponse({"auth": request.app.state.token is not None, "authorized": False})
    response.delete_cookie(SESSION_COOKIE, path="/")
    if request.app.state.smart is not None:
        await request.app.state.smart.end(request)
        response.delete_cookie(LAUNCH_COOKIE, path="/")
    return response


async def openapi_schema(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def ui(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/runs",
        "Start a run (question, patient, now); it runs in the background.",
        start_run,
        body=StartRun,
        response=RunView,
        status=202,
        errors=(400, 403, 404, 415, 422),
    ),
    Endpoint(
        "GET",
        "/api/runs",
        "Recent runs, newest first (from the checkpointer).",
        list_runs,
        response=RunList,
        query=(("limit", "at most this many (default 20)"),),
    ),
    Endpoint(
        "GET",
        "/api/runs/{run_id}",
        "A run: state, steps, answer, citations, pending write, tokens.",
        get_run,
        response=RunView,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/api/runs/{run_id}/events",
        "The run's steps as server-sent events: step, action, approval, "
        "status, done (ids count steps; Last-Event-ID resumes).",
        run_events,
        media="text/event-stream",
        errors=(404,),
        query=(("after", "skip this many steps (like Last-Event-ID)"),),
    ),
    Endpoint(
        "POST",
        "/api/runs/{run_id}/decision",
        "Approve or reject the write the run waits on.",
        decide_write,
        body=Decision,
        response=RunView,
        status=202,
        errors=(404, 409, 415, 422),
    ),
    Endpoint(
        "POST",
        "/api/runs/{run_id}/resume",
        "Continue an interrupted run from its last checkpoint.",
        resume_run,
        response=RunView,
        status=202,
        errors=(404, 409),
    ),
    Endpoint(
        "GET",
        "/api/patients",
        "Patients for the picker: name words or a birth date.",
        find_patients,
        response=PatientList,
        tags=("records",),
        query=(("q", "name words or YYYY-MM-DD"), ("now", "ages at this time")),
    ),
    Endpoint(
        "GET",
        "/api/resources/{kind}/{id}",
        "A cited FHIR resource with its one-line summary.",
        get_resource,
        response=ResourceView,
        errors=(400, 404),
        tags=("records",),
        query=(("now", "the run's clock"),),
    ),
    Endpoint(
        "GET",
        "/api/info",
        "The model, approval mode and FHIR server this service uses.",
        service_info,
        response=ServiceInfo,
        tags=("service",),
    ),
]


class AccessLogMiddleware:
    """One log line per request: method, route template, status, time and the run id; never patient data."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            template, run_id = self._route(scope)
            access_log.info(
                "%s %s %s %.1f ms%s",
                scope["method"],
                template,
                status["code"],
                (time.perf_counter() - started) * 1000,
                f" run={run_id}" if run_id else "",
            )

    def _route(self, scope: Scope) -> tuple[str, str | None]:
        for route in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", "?"), child.get("path_params", {}).get("run_id")
        return "(unrouted)", None


async def _run_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RunError)
    return error_response(exc.status, exc.code, exc.message)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


async def _too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return error_response(413, "body_too_large", str(exc))


async def _fhir_error(request: Request, exc: Exception) -> Response:
    return error_response(502, "fhir_error", f"the FHIR server answered with an error: {exc}")


def create_app(
    manager: RunManager,
    *,
    info: ServiceInfo,
    token: str | None = None,
    loopback: bool = True,
    smart: SmartLaunch | None = None,
    cds: CdsHooks | None = None,
) -> Starlette:
    """The app over a RunManager, behind the FHIR server's request guard; ``token`` set: the API needs it;
    ``loopback``: served on a loopback address (only loopback Host names are answered); ``smart``: the service
    is also a SMART app (``/launch``; :mod:`medagent.serve.smart_launch`); ``cds``: also serve the CDS Hooks
    services (``/cds-services``; :mod:`medagent.serve.cds_hooks`)."""
    routes: list[BaseRoute] = [Route(e.path, e.handler, methods=[e.method]) for e in ENDPOINTS]
    if cds is not None:
        routes += cds_routes()
    routes += [
        Route("/", ui, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
        Route("/api/session", get_session, methods=["GET"]),
        Route("/api/session", open_session, methods=["POST"]),
        Route("/api/session", close_session, methods=["DELETE"]),
        Route("/openapi.json", openapi_schema, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *(smart.routes() if smart is not None else []),
    ]
    middleware = [
        Middleware(AccessLogMiddleware, routes=routes),
        Middleware(guarded, token=token, loopback=loopback, launch=smart),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            RunError: _run_error,
            ApiError: _api_error,
            FhirClientError: _fhir_error,
            BodyTooLarge: _too_large,
        },
    )
    app.state.manager = manager
    app.state.token = token
    app.state.smart = smart
    app.state.info = info
    app.state.cds = cds
    app.state.openapi = openapi_document(ENDPOINTS, title="medagent serve", version=__version__)
    return app
