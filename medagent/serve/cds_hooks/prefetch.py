"""Prefetch: each service's templates, the data a CDS client sent for them (checked against the context's patient
before anything else happens), and the rest fetched through the request's ``fhirServer`` with its bearer token.

Per the specification: a key the client left out is fetched; ``null`` means the client has no data for it; an
OperationOutcome (the client could not fetch it) is fetched again; a searchset page with a ``next`` link is
fetched whole when the rules need every match and a ``fhirServer`` is given (templates sorted newest first need
only their first page). A missing key and no ``fhirServer`` to fetch it from is a 412.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirClientError
from medagent.serve.cds_hooks.chart import Chart
from medagent.serve.cds_hooks.messages import HookRequest, PatientContext
from medagent.serve.errors import ApiError

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
# where each resource type names its patient (FHIR R4)
PATIENT_ELEMENT = {
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "AllergyIntolerance": "patient",
    "Encounter": "subject",
    "Procedure": "subject",
}
MAX_RESOURCES = 2000  # per prefetch key fetched from the FHIR server


@dataclass(frozen=True)
class PrefetchItem:
    """One prefetch template and the Chart field its data fills."""

    key: str
    template: str
    chart_field: str  # "patient" (a read) or a list field of Chart
    first_page: bool = False  # sorted newest first and read for the latest results: the first page is enough

    @property
    def resource_type(self) -> str:
        return self.template.split("?")[0].split("/")[0]

    @property
    def is_read(self) -> bool:
        return "?" not in self.template


def render(template: str, context: PatientContext) -> str:
    """The relative FHIR URL of a template, its tokens replaced from the context."""

    def value(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            found = context.model_dump(mode="json").get(token[len("context.") :])
            if not isinstance(found, str | int | float):
                raise ValueError(f"prefetch token {{{{{token}}}}} names no primitive context field")
            return str(found)
        kind, _, rid = context.userId.partition("/")
        if _USER_TOKENS.get(token) == kind:
            return rid
        raise ValueError(f"prefetch token {{{{{token}}}}} has no value in this context")

    return _TOKEN.sub(value, template)


@dataclass
class Prefetched:
    """What the client sent that can be used, and the items still to fetch."""

    values: dict[str, Any]
    missing: list[PrefetchItem]


def check_prefetch(items: tuple[PrefetchItem, ...], request: HookRequest, context: PatientContext) -> Prefetched:
    """Sort the sent prefetch into usable and to-fetch; data for another patient, or not what the template asks
    for, is a 400 naming the key (nothing is fetched or written)."""
    sent = request.prefetch or {}
    values: dict[str, Any] = {}
    missing: list[PrefetchItem] = []
    for item in items:
        if item.key not in sent:
            missing.append(item)
            continue
        value = sent[item.key]
        if value is None:
            values[item.key] = None
            continue
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise ApiError(400, "invalid_prefetch", f"prefetch {item.key!r} must be a FHIR resource, a Bundle or null")
        if value["resourceType"] == "OperationOutcome":
            missing.append(item)
            continue
        if item.is_read:
            _check_read(item, value, context.patientId)
            values[item.key] = value
            continue
        if value["resourceType"] != "Bundle":
            raise ApiError(
                400,
                "invalid_prefetch",
                f"prefetch {item.key!r} must be a searchset Bundle of "
                f"{item.resource_type} ({item.template}), got {value['resourceType']}",
            )
        resources = _check_bundle(item, value, context.patientId)
        paged = any(link.get("relation") == "next" for link in value.get("link") or [] if isinstance(link, dict))
        if paged and not item.first_page and request.fhirServer is not None:
            missing.append(item)  # one page of several: the whole search is read from the FHIR server
        else:
            values[item.key] = resources
    return Prefetched(values, missing)


def _check_read(item: PrefetchItem, value: dict[str, Any], patient_id: str) -> None:
    if value["resourceType"] != item.resource_type:
        raise ApiError(
            400,
            "invalid_prefetch",
            f"prefetch {item.key!r} must be a {item.resource_type} ({item.template}), got {value['resourceType']}",
        )
    if item.resource_type == "Patient" and value.get("id") != patient_id:
        raise ApiError(
            400,
            "prefetch_patient_mismatch",
            f"prefetch {item.key!r} is Patient/{value.get('id')}, not the context's patient Patient/{patient_id}",
        )


def _check_bundle(item: PrefetchItem, bundle: dict[str, Any], patient_id: str) -> list[dict[str, Any]]:
    resources = []
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise ApiError(400, "invalid_prefetch", f"prefetch {item.key!r} entry {index} has no resource")
        if resource.get("resourceType") == "OperationOutcome":
            continue
        if resource.get("resourceType") != item.resource_type:
            if (entry.get("search") or {}).get("mode") == "include":
                continue
            raise ApiError(
                400,
                "invalid_prefetch",
                f"prefetch {item.key!r} entry {index} is a "
                f"{resource.get('resourceType')}, not a {item.resource_type} "
                f"({item.template})",
            )
        subject = patient_reference(resource)
        if subject != f"Patient/{patient_id}":
            raise ApiError(
                400,
                "prefetch_patient_mismatch",
                f"prefetch {item.key!r} entry {index} "
                f"({item.resource_type}/{resource.get('id', '?')}) is for "
                f"{subject or 'no patient'}, not the context's patient "
                f"Patient/{patient_id}",
            )
        resources.append(resource)
    return resources


def patient_reference(resource: dict[str, Any]) -> str | None:
    """``Patient/<id>`` the resource is about (absolute URLs and versions stripped), or None."""
    element = PATIENT_ELEMENT.get(resource.get("resourceType", ""), "subject")
    ref = (resource.get(element) or {}).get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


async def fetch_missing(items: list[PrefetchItem], context: PatientContext, client: FhirClient) -> dict[str, Any]:
    """Fetch the missing items through the CDS client's FHIR server, all at once; a failure is a 412."""
    urls = [render(item.template, context) for item in items]
    try:
        found = await asyncio.gather(*(_fetch(item, url, client) for item, url in zip(items, urls, strict=True)))
    except FhirClientError as exc:
        raise ApiError(
            412,
            "fhir_unavailable",
            f"could not read the data this service needs from fhirServer {client.base_url}: {exc}",
        ) from None
    return {item.key: value for item, value in zip(items, found, strict=True)}


async def _fetch(item: PrefetchItem, url: str, client: FhirClient) -> Any:
    path, _, query = url.partition("?")
    if item.is_read:
        kind, _, rid = path.partition("/")
        return await client.read_json(kind, rid)
    params = parse_qsl(query, keep_blank_values=True)
    if item.first_page:
        page = await client.search_page(path, params)
        return [
            e["resource"]
            for e in page.get("entry") or []
            if (e.get("search") or {}).get("mode", "match") == "match" and "resource" in e
        ]
    return await client.search_all_json(path, params, limit=MAX_RESOURCES)


def fill_chart(chart: Chart, items: tuple[PrefetchItem, ...], values: dict[str, Any]) -> Chart:
    for item in items:
        value = values.get(item.key)
        if value is None:
            continue
        if item.chart_field == "patient":
            chart.patient = value
        else:
            getattr(chart, item.chart_field).extend(value)
    return chart


async def resolve_medications(chart: Chart, orders: list[dict[str, Any]], client: FhirClient | None) -> None:
    """Read the Medications that orders reference by ``Medication/<id>`` (contained ones need no read)."""
    wanted = {
        ref
        for order in orders
        if (ref := (order.get("medicationReference") or {}).get("reference", "")).startswith("Medication/")
        and ref not in chart.medications
    }
    if not wanted or client is None:
        return
    try:
        found = await asyncio.gather(*(client.resolve(ref) for ref in sorted(wanted)))
    except FhirClientError as exc:
        raise ApiError(
            412, "fhir_unavailable", f"could not read the ordered Medication from fhirServer {client.base_url}: {exc}"
        ) from None
    chart.medications.update({f"Medication/{m['id']}": m for m in found})
