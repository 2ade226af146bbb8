"""The generic tools beside the specialised ones: any FHIR search with a field projection, and reading one resource.

Bounded (``limit`` default 20, max 100), date-aware (records dated after now are hidden) and
compact by default; ``fields`` projects dotted paths, ``raw`` is the full-JSON escape hatch
(still inside the call's token budget).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from medagent.fhir.errors import FhirInvalid
from medagent.fhir.paths import values_at
from medagent.tools.compact import Line, clean, join, quote_record_json, render
from medagent.tools.context import ToolContext
from medagent.tools.dates import parse_fhir, up_to
from medagent.tools.registry import ToolArgs, ToolError, ToolResult, tool
from medagent.tools.rows import (
    date_of,
    first_coding,
    generic_line,
    medication_line,
    reference,
)
from medagent.tools.search_args import (
    DEFAULT_LIMIT,
    EXAMPLE_PATIENT,
    Limit,
    Offset,
    RecordReference,
    names_of,
    resources_by_id,
)
from medagent.vocabulary import date_search_param

SearchType = Literal[
    "Patient",
    "Observation",
    "Condition",
    "MedicationRequest",
    "Medication",
    "MedicationAdministration",
    "Immunization",
    "Procedure",
    "Encounter",
    "DiagnosticReport",
    "AllergyIntolerance",
    "CarePlan",
    "ServiceRequest",
    "DocumentReference",
    "Composition",
    "Practitioner",
    "Organization",
    "Goal",
    "ImagingStudy",
    "Claim",
    "ExplanationOfBenefit",
]
_CONTROLLED = {
    "_count": "limit",
    "_elements": "fields",
    "_summary": "limit",
    "_offset": "offset",
    "_format": "nothing (JSON is used)",
    "_include": "fhir_read on the reference",
    "_revinclude": "a second search",
}
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")


def _check_fields(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 12:
        raise ValueError("fields takes 1 to 12 dotted paths, e.g. ['code.coding.code', 'valueQuantity.value']")
    for path in value:
        if not _PATH.match(path):
            raise ValueError(f"field {path!r} is not a dotted path; e.g. 'valueQuantity.value' or 'code.text'")
    return value


class SearchArgs(ToolArgs):
    resource_type: SearchType
    """FHIR resource type to search."""
    params: dict[str, str] = Field(default_factory=dict)
    """FHIR search parameters, e.g. {"patient": "<id>", "code": "http://loinc.org|4548-4", "_sort": "-date"}."""
    fields: list[str] | None = None
    """Dotted paths to return per resource instead of the default line, e.g. ["effectiveDateTime", "valueQuantity.value"]."""
    raw: bool = False
    """Return full resource JSON (large: only for a few resources); free text in it comes quoted «...» as record data."""
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0

    @field_validator("fields")
    @classmethod
    def _valid_fields(cls, value: list[str] | None) -> list[str] | None:
        return _check_fields(value)

    @field_validator("params")
    @classmethod
    def _check_params(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            base = name.split(":")[0]
            if base in _CONTROLLED:
                raise ValueError(f"do not pass {name}; use {_CONTROLLED[base]} instead")
            if not re.match(r"^_?[a-zA-Z][a-zA-Z0-9\-]*(:[A-Za-z\-]+)?$", name):
                raise ValueError(f"{name!r} is not a search parameter name; e.g. 'patient', 'code', 'date'")
        return {k: str(v) for k, v in value.items()}


def _projected_line(resource: dict[str, Any], fields: list[str]) -> Line:
    row: dict[str, Any] = {"ref": reference(resource)}
    parts = []
    for path in fields:
        values = list(values_at(resource, path))
        row[path] = values[0] if len(values) == 1 else values
        shown = ",".join(
            clean(json.dumps(v, separators=(",", ":")) if isinstance(v, dict | list) else str(v), 80) for v in values
        )
        parts.append(f"{path}={shown}" if values else f"{path}=-")
    return Line(join(*parts, row["ref"]), row)


def _raw_line(resource: dict[str, Any]) -> Line:
    """The resource JSON without narrative and meta; its strings quoted as record data (:func:`quote_record_json`)."""
    trimmed = quote_record_json({k: v for k, v in resource.items() if k not in ("text", "meta")})
    return Line(
        json.dumps(trimmed, separators=(",", ":"), ensure_ascii=False),
        {"ref": reference(resource), "resource": trimmed},
    )


@tool(
    example={
        "resource_type": "Observation",
        "params": {"patient": EXAMPLE_PATIENT, "code": "http://loinc.org|2339-0"},
        "fields": ["effectiveDateTime", "valueQuantity.value"],
        "limit": 5,
    }
)
async def fhir_search(ctx: ToolContext, args: SearchArgs) -> ToolResult:
    """Generic FHIR search for anything the other tools do not cover: any resource type and search parameters, optional field projection. Records dated after now are hidden.

    Up to 100 rows per call within ~800 tokens; the cut line gives the next offset.
    """
    params = list(args.params.items())
    date_param = date_search_param(args.resource_type)  # hides records dated after now
    if date_param:
        params.append((date_param, up_to(ctx.now)))
        if "_sort" not in args.params:
            params.append(("_sort", f"-{date_param}"))
    params.append(("_count", str(args.limit)))
    if args.offset:
        params.append(("_offset", str(args.offset)))
    try:
        body, _ = await ctx.client.request_json(
            "GET", args.resource_type, params=params, headers={"Prefer": "handling=strict"}
        )
    except FhirInvalid as exc:
        raise ToolError(f"the FHIR server rejected the search: {exc.message}") from None
    found = [e["resource"] for e in body.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    total = int(body.get("total", len(found)))
    if args.resource_type == "Patient":
        cut = ctx.now.date().isoformat()
        visible = [p for p in found if not p.get("birthDate") or p["birthDate"][:10] <= cut]
        total -= len(found) - len(visible)
        found = visible
    if args.raw:
        lines = [_raw_line(r) for r in found]
    elif args.fields:
        lines = [_projected_line(r, args.fields) for r in found]
    else:
        lines = [generic_line(r, ctx.now) for r in found]
    shown_params = "&".join(f"{k}={v}" for k, v in args.params.items())
    header = f"{args.resource_type}?{shown_params} (up to now): {total} found"
    return render(
        ctx,
        header,
        lines,
        total=total,
        offset=args.offset,
        limit=args.limit,
        hint="more search parameters (date, code, patient)",
        empty="no matches (records dated after now are hidden)",
    )


class ReadArgs(ToolArgs):
    reference: RecordReference = Field(pattern=r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
    """A reference 'Type/id' from a row, e.g. 'Practitioner/<id from a row>'."""
    fields: list[str] | None = None
    """Dotted paths to return instead of the default line, e.g. ["name", "telecom.value"]."""
    raw: bool = False
    """Return the full resource JSON (without narrative text)."""

    @field_validator("fields")
    @classmethod
    def _valid_fields(cls, value: list[str] | None) -> list[str] | None:
        return _check_fields(value)


@tool(example={"reference": "Condition/example-condition-0"})
async def fhir_read(ctx: ToolContext, args: ReadArgs) -> ToolResult:
    """Read one resource by reference (Type/id), e.g. a medication's reason Condition or its prescriber; compact line, chosen fields, or raw JSON."""
    kind, _, rid = args.reference.partition("/")
    resource = await ctx.client.read_json(kind, rid)
    moment = parse_fhir(date_of(resource))
    if moment is not None and moment > ctx.now:
        raise ToolError(f"{args.reference} is dated after now ({ctx.now_iso}): it is not known yet", example=False)
    if args.raw:
        line = _raw_line(resource)
    elif args.fields:
        line = _projected_line(resource, args.fields)
    elif kind == "MedicationRequest":  # the prescriber's name with its reference, the reason's name
        requester = (resource.get("requester") or {}).get("reference", "")
        prescribers = await names_of(ctx, [requester])
        reason_ids = [
            r.get("reference", "").rsplit("/", 1)[-1]
            for r in resource.get("reasonReference", [])
            if r.get("reference", "").startswith("Condition/")
        ]
        conditions = await resources_by_id(ctx, "Condition", reason_ids)
        line = medication_line(
            resource,
            ctx.now,
            prescribers,
            {ref: first_coding(c.get("code"))[2] for ref, c in conditions.items()},
            requester_reference=True,
        )
    else:
        line = generic_line(resource, ctx.now)
    return render(ctx, f"{args.reference}:", [line], hint="fields (a projection)", pageable=False)
