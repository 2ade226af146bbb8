"""The CDS Hooks HTTP endpoints: ``GET /cds-services`` (discovery), ``POST /cds-services/{id}`` (a hook call,
answered within the time budget or with no card) and ``POST /cds-services/{id}/feedback``.

A bad request is a 4xx in the API's one error shape before anything is fetched or recorded; a request this
service cannot get the data for is a 412 (as the specification says). Every response is checked against the
CDS Hooks JSON schema before it is sent; a card that fails is dropped and logged, never sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from medagent.fhir.client import FhirClient
from medagent.serve.cds_hooks import DEFAULT_BUDGET_SECONDS
from medagent.serve.cds_hooks.chart import Chart
from medagent.serve.cds_hooks.messages import (
    Card,
    FeedbackRequest,
    HookRequest,
    PatientContext,
)
from medagent.serve.cds_hooks.prefetch import (
    check_prefetch,
    fetch_missing,
    fill_chart,
    resolve_medications,
)
from medagent.serve.cds_hooks.records import CdsRecords
from medagent.serve.cds_hooks.schema import Definition, problems
from medagent.serve.cds_hooks.services import (
    KNOWN_HOOKS,
    SERVICES,
    CdsService,
    HookCall,
)
from medagent.serve.errors import ApiError, describe, json_object

log = logging.getLogger("medagent.serve.cds")
M = TypeVar("M", bound=BaseModel)


@dataclass
class CdsHooks:
    """The CDS Hooks side of ``medagent serve``: the time budget of a hook call and where records go."""

    records: CdsRecords
    budget_seconds: float = DEFAULT_BUDGET_SECONDS

    @classmethod
    def open(cls, records_path: Path, budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> CdsHooks:
        return cls(CdsRecords(records_path), budget_seconds)


def _cds(request: Request) -> CdsHooks:
    return request.app.state.cds


def _service(request: Request) -> CdsService:
    service_id = request.path_params["service_id"]
    service = SERVICES.get(service_id)
    if service is None:
        raise ApiError(
            404, "unknown_service", f"no CDS service {service_id!r} here; GET /cds-services lists {', '.join(SERVICES)}"
        )
    return service


def _model(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, f"invalid_{what}", f"{what}: {describe(exc)}") from None


def _checked(definition: Definition, body: dict[str, Any]) -> JSONResponse:
    found = problems(definition, body)
    if found:  # a bug of this service: never send it
        log.error("CDS Hooks %s failed the schema: %s", definition, "; ".join(found))
        raise ApiError(500, "invalid_response", f"the service built an invalid {definition}; see the server log")
    return JSONResponse(body)


async def discovery(request: Request) -> Response:
    return _checked("Discovery", {"services": [service.discovery() for service in SERVICES.values()]})


async def call_service(request: Request) -> Response:
    service = _service(request)
    body = await json_object(request, not_object=(400, "the body must be a JSON object"))
    if "context" not in body:
        raise ApiError(
            400,
            "invalid_request",
            f"the hook request has no context; {service.hook} needs {_context_fields(service.context_model)}",
        )
    hook = _model(HookRequest, body, "request")
    if hook.hook != service.hook:
        if hook.hook not in KNOWN_HOOKS:
            raise ApiError(
                400, "unknown_hook", f"unknown hook {hook.hook!r}; service {service.id} answers {service.hook}"
            )
        raise ApiError(
            400,
            "wrong_hook",
            f"service {service.id} answers {service.hook}, not {hook.hook}; "
            "GET /cds-services lists which service answers which hook",
        )
    context = _model(service.context_model, hook.context, "context")
    service.check(context)
    prefetched = check_prefetch(service.prefetch, hook, context)
    if prefetched.missing and hook.fhirServer is None:
        raise ApiError(
            412,
            "prefetch_unavailable",
            f"prefetch {', '.join(i.key for i in prefetched.missing)} not sent and no fhirServer to read it from",
        )
    cds = _cds(request)
    started = time.monotonic()
    try:
        cards = await asyncio.wait_for(
            _cards(service, hook, context, prefetched.values, prefetched.missing, cds), timeout=cds.budget_seconds
        )
    except TimeoutError:
        log.warning(
            "CDS service %s: no answer within %.1f s (hook instance %s); answering with no card",
            service.id,
            cds.budget_seconds,
            hook.hookInstance,
        )
        cards = []
    log.info("CDS service %s: %d card(s) in %.0f ms", service.id, len(cards), (time.monotonic() - started) * 1000)
    return _checked("Response", {"cards": cards})


async def _cards(
    service: CdsService,
    hook: HookRequest,
    context: PatientContext,
    values: dict[str, Any],
    missing: list[Any],
    cds: CdsHooks,
) -> list[dict[str, Any]]:
    """Fetch what is missing, run the rules, keep the cards that pass the schema, record them: within the budget."""
    client = None
    if hook.fhirServer is not None:
        token = hook.fhirAuthorization.access_token if hook.fhirAuthorization else None
        client = FhirClient(hook.fhirServer, token=token, retries=0, timeout=cds.budget_seconds)
    try:
        if missing:
            assert client is not None
            values = {**values, **await fetch_missing(missing, context, client)}
        chart = fill_chart(Chart(context.patientId), service.prefetch, values)
        await resolve_medications(chart, [*chart.medication_requests, *service.orders(context)], client)
    finally:
        if client is not None:
            await client.aclose()
    made = service.cards(HookCall(context, chart, datetime.now(UTC)))
    cards = [c for c in made if _valid_card(service, c)]
    await asyncio.to_thread(cds.records.issue, service.id, hook.hookInstance, cards)
    return [c.as_json() for c in cards]


def _valid_card(service: CdsService, card: Card) -> bool:
    found = problems("Card", card.as_json())
    if found:
        log.error("CDS service %s built a card that fails the schema (dropped): %s", service.id, "; ".join(found))
    return not found


def _context_fields(model: type[PatientContext]) -> str:
    required = [name for name, field in model.model_fields.items() if field.is_required()]
    return "context with " + ", ".join(required)


async def feedback(request: Request) -> Response:
    service = _service(request)
    body = await json_object(request, not_object=(400, "the body must be a JSON object"))
    found = problems("FeedbackRequest", body)
    if found:
        raise ApiError(400, "invalid_feedback", "; ".join(found))
    items = _model(FeedbackRequest, body, "feedback").feedback
    recorded = await asyncio.to_thread(_cds(request).records.record_feedback, service.id, items)
    return JSONResponse({"recorded": recorded})


def cds_routes() -> list[BaseRoute]:
    return [
        Route("/cds-services", discovery, methods=["GET"]),
        Route("/cds-services/{service_id}", call_service, methods=["POST"]),
        Route("/cds-services/{service_id}/feedback", feedback, methods=["POST"]),
    ]
