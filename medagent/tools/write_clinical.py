"""Write tools: record a vital sign or observation, order a medication or a lab/referral, add a note, stop a medication.

Every write is decided by the run's approval policy (by the registry, before it gets here), validated with
fhir.resources R4B before it is sent, idempotent (a conditional create on an identifier that
hashes tool, clinical arguments, patient and run: a retried call returns the first resource),
dated at the run's now unless told otherwise, and audited: who/what/why is in the resource
(``meta.tag`` actor and run, an ``urn:medagent:audit`` extension) and in ``ctx.audit``.

Every write goes through :func:`create` or :func:`update`. In a preview context (``ctx.preview``) those
two prepare the write exactly as they would send it and raise :class:`PreparedWrite` instead of sending
(:meth:`medagent.tools.registry.Registry.preview`): a reviewer sees the resource itself, built by the same code.

Notes are DocumentReferences (not Communications): a clinical note is a document about the
patient (US Core "clinical notes" use DocumentReference with a LOINC note type), while a
Communication is a message between parties.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from medagent.fhir.errors import FhirForbidden
from medagent.fhir.ids import check_fhir_id, patient_of
from medagent.fhir.resources import parse_resource
from medagent.tools.approval import WritePreview
from medagent.tools.compact import number
from medagent.tools.context import AuditEntry, PreparedWrite, ToolContext
from medagent.tools.dates import DateArg, fhir_instant, parse_fhir, resolve
from medagent.tools.registry import RecordOf, ToolArgs, ToolError, ToolResult, tool
from medagent.tools.rows import (
    generic_line,
    medication_line,
    observation_line,
    reference,
)
from medagent.tools.search_args import (
    EXAMPLE_PATIENT,
    PatientRef,
    check_record_reference,
    require_patient,
)
from medagent.vocabulary import (
    ACTOR_SYSTEM,
    AUDIT_EXTENSION_URL,
    CVX,
    LOINC,
    NDC,
    OBSERVATION_CATEGORY,
    RUN_SYSTEM,
    RXNORM,
    SNOMED,
    UCUM,
    US_CORE_DOCUMENT_CATEGORY,
)

REQUEST_SYSTEM = "urn:medagent:request"
SINGLE_IDENTIFIER = ("Composition",)  # types whose identifier is one Identifier, not a list (R4)
AUDIT_URL = AUDIT_EXTENSION_URL
_LOINC_CODE = re.compile(r"^\d{1,7}-\d$")
_SNOMED_CODE = re.compile(r"^\d{6,18}$")
_RXNORM_CODE = re.compile(r"^\d{1,9}$")
_NDC_CODE = re.compile(r"^(\d{4,5}-\d{3,4}-\d{1,2}|\d{10,11})$")
_CVX_CODE = re.compile(r"^\d{1,3}$")


class WriteArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>'."""
    reason: str | None = Field(None, max_length=300)
    """Why you write this (kept in the audit trail), e.g. 'potassium 3.1 mmol/L below 3.5'."""


# ---------- shared write path ----------


def request_key(tool_name: str, args: WriteArgs, ctx: ToolContext) -> str:
    """The idempotency key: same tool + same clinical arguments + same patient + same run = same key."""
    clinical = args.model_dump(mode="json", exclude={"reason"}, exclude_none=True)
    canonical = json.dumps(
        {"tool": tool_name, "args": clinical, "run": ctx.run_id}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _code_text(text: str) -> str:
    return " ".join(text.split())[:200] or "unknown"


def stamp(resource: dict[str, Any], ctx: ToolContext, tool_name: str, reason: str | None) -> dict[str, Any]:
    """Add the audit trail: actor and run tags, and an extension with who/what/why/when."""
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("system") not in (ACTOR_SYSTEM, RUN_SYSTEM)]
    tags += [
        {"system": ACTOR_SYSTEM, "code": _code_text(ctx.actor)},
        {"system": RUN_SYSTEM, "code": _code_text(ctx.run_id)},
    ]
    meta["tag"] = tags
    resource["meta"] = meta
    audit: dict[str, Any] = {
        "url": AUDIT_URL,
        "extension": [
            {"url": "actor", "valueString": ctx.actor},
            {"url": "tool", "valueString": tool_name},
            {"url": "run", "valueString": ctx.run_id},
            {"url": "at", "valueDateTime": fhir_instant(ctx.now)},
        ],
    }
    if reason:
        audit["extension"].append({"url": "reason", "valueString": reason})
    resource["extension"] = [*resource.get("extension", []), audit]
    return resource


def validate(resource: dict[str, Any]) -> None:
    """fhir.resources R4B validation before sending; the first problems become a ToolError."""
    try:
        parse_resource(resource)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        raise ToolError(f"the {resource['resourceType']} would be invalid FHIR: {problems}") from None


def check_write_patient(ctx: ToolContext, resource: dict[str, Any]) -> None:
    """The write path sends only a record of the patient the write was decided for (``ctx.write_patient``,
    set by the registry after the approval policy decided): a tool cannot write to another patient."""
    owner = patient_of(resource)
    if ctx.write_patient is None or owner != ctx.write_patient:
        decided = f"Patient/{ctx.write_patient}" if ctx.write_patient else "no patient (not through the registry)"
        raise ToolError(
            f"refused: the {resource.get('resourceType')} is a record of Patient/{owner}, but this "
            f"write was decided for {decided}",
            example=False,
        )


def written_line(resource: dict[str, Any], now: datetime) -> str:
    """The compact line of a written (or about to be written: no id yet, 'new <Type>') resource."""
    line = generic_line(resource, now).text
    if resource.get("id"):
        return line
    return f"{line.removesuffix(reference(resource)).rstrip(' |')} | new {resource.get('resourceType')}"


async def create(
    ctx: ToolContext, tool_name: str, args: WriteArgs, resource: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Validate, then conditionally create; returns (resource on the server, created now?).

    A preview context raises :class:`PreparedWrite` instead: the resource as it would be POSTed, or
    ``none`` when an identical earlier call already wrote it (the conditional create would return that one).
    """
    check_write_patient(ctx, resource)
    key = request_key(tool_name, args, ctx)
    marker = {"system": REQUEST_SYSTEM, "value": key}
    if resource["resourceType"] in SINGLE_IDENTIFIER:
        resource["identifier"] = marker
    else:
        resource["identifier"] = [*resource.get("identifier", []), marker]
    stamp(resource, ctx, tool_name, args.reason)
    validate(resource)
    same_request = _same_request_search(resource, key)
    if ctx.preview:
        async for existing in ctx.client.search_json(resource["resourceType"], same_request, limit=1):
            ref = reference(existing)
            raise PreparedWrite(
                WritePreview(
                    action="none",
                    resource=existing,
                    reference=ref,
                    summary=f"already written by an identical earlier call: {written_line(existing, ctx.now)} "
                    "(nothing new would be written)",
                )
            )
        raise PreparedWrite(WritePreview(action="create", resource=resource, summary=written_line(resource, ctx.now)))
    body, created = await ctx.client.create_or_find_json(
        resource, if_none_exist="&".join(f"{name}={value}" for name, value in same_request)
    )
    ref = reference(body)
    _audit(ctx, tool_name, args, ref, created=created)
    return body, created


def _same_request_search(resource: dict[str, Any], key: str) -> list[tuple[str, str]]:
    """The search that finds an earlier write of the same request: its identifier, within its patient (a
    server that limits a token to one patient, as SMART patient/ scopes do, refuses a search naming none)."""
    params = [("identifier", f"{REQUEST_SYSTEM}|{key}")]
    patient = str((resource.get("subject") or resource.get("patient") or {}).get("reference") or "")
    if patient.startswith("Patient/"):
        params.append(("patient", patient.removeprefix("Patient/")))
    return params


async def update(ctx: ToolContext, tool_name: str, args: ToolArgs, resource: dict[str, Any]) -> dict[str, Any]:
    """Stamp, validate, then update (If-Match on the version read); returns the resource on the server.

    A preview context raises :class:`PreparedWrite` instead: the resource as it would be PUT.
    """
    check_write_patient(ctx, resource)
    stamp(resource, ctx, tool_name, getattr(args, "reason", None))
    validate(resource)
    ref = reference(resource)
    if ctx.preview:
        raise PreparedWrite(
            WritePreview(action="update", resource=resource, reference=ref, summary=written_line(resource, ctx.now))
        )
    version = (resource.get("meta") or {}).get("versionId")
    body = await ctx.client.update_json(resource, if_match=f'W/"{version}"' if version else None)
    _audit(ctx, tool_name, args, ref, created=False)
    return body


def _audit(ctx: ToolContext, tool_name: str, args: ToolArgs, ref: str, *, created: bool) -> None:
    """The run context's audit entry of a write that reached the server (the one place it is built)."""
    ctx.audit.append(
        AuditEntry(
            at=fhir_instant(ctx.now),
            actor=ctx.actor,
            run_id=ctx.run_id,
            tool=tool_name,
            arguments=args.model_dump(mode="json", exclude_none=True),
            reason=getattr(args, "reason", None) or "",
            reference=ref,
            created=created,
        )
    )


async def writable_patient(ctx: ToolContext, patient_id: str) -> dict[str, Any]:
    patient = await require_patient(ctx, patient_id)
    died = parse_fhir(patient.get("deceasedDateTime"))
    if died is not None and died <= ctx.now:
        raise ToolError(
            f"Patient/{patient_id} died on {patient['deceasedDateTime'][:10]}: no new records or orders", example=False
        )
    return patient


def when(ctx: ToolContext, value: str | None, name: str, *, future: bool) -> str:
    """A write's date: default now; measurements cannot be in the future, orders cannot be in the past."""
    if value is None:
        return fhir_instant(ctx.now)
    moment = resolve(value, ctx.now)
    if not future and moment > ctx.now:
        raise ToolError(
            f"{name}={value!r} is after now ({fhir_instant(ctx.now)}); a measurement cannot be in the future"
        )
    if future and moment < ctx.now.replace(second=0, microsecond=0):
        raise ToolError(
            f"{name}={value!r} is before now ({fhir_instant(ctx.now)}); give a time from now on, e.g. 'tomorrow 08:00'"
        )
    return fhir_instant(moment)


def _result(verb: str, resource: dict[str, Any], created: bool, line: str) -> ToolResult:
    ref = reference(resource)
    head = f"{verb} {ref}" if created else f"already written by an identical earlier call: {ref} (nothing new written)"
    return ToolResult(text=f"{head}\n{line}", rows=[{"ref": ref, "created": created}], references=[ref], wrote=[ref])


async def _display_in_data(
    ctx: ToolContext, kind: str, param: str, system: str, code: str, element: str, patient: str
) -> str | None:
    """The display the data already uses for a code (so written codes read like the rest of the record); where
    the server allows only the patient's own data (SMART patient/ scopes), the patient's record is looked in."""
    search: dict[str, str | int] = {param: f"{system}|{code}", "_count": 1, "_elements": element}
    try:
        return await _first_display(ctx, kind, search, code, element)
    except FhirForbidden:
        return await _first_display(ctx, kind, {**search, "patient": patient}, code, element)


async def _first_display(
    ctx: ToolContext, kind: str, search: dict[str, str | int], code: str, element: str
) -> str | None:
    async for resource in ctx.client.search_json(kind, search, limit=1):
        value = resource.get(element)
        concepts = value if isinstance(value, list) else [value]
        for concept in concepts:
            for coding in (concept or {}).get("coding", []):
                if coding.get("code") == code and coding.get("display"):
                    return str(coding["display"])
    return None


# ---------- vital signs and observations ----------

VitalKind = Literal[
    "blood_pressure",
    "heart_rate",
    "respiratory_rate",
    "body_temperature",
    "body_weight",
    "body_height",
    "bmi",
    "oxygen_saturation",
    "pain_score",
]
# kind -> (LOINC, display, UCUM code, plausible range, accepted units -> converter to the UCUM unit)
_SAME = lambda v: v  # noqa: E731
VITALS: dict[str, tuple[str, str, str, tuple[float, float], dict[str, Any]]] = {
    "heart_rate": ("8867-4", "Heart rate", "/min", (20, 300), {"/min": _SAME, "bpm": _SAME, "beats/min": _SAME}),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min", (4, 80), {"/min": _SAME, "breaths/min": _SAME}),
    "body_temperature": (
        "8310-5",
        "Body temperature",
        "Cel",
        (25, 45),
        {
            "cel": _SAME,
            "c": _SAME,
            "°c": _SAME,
            "degc": _SAME,
            "[degf]": lambda v: (v - 32) * 5 / 9,
            "f": lambda v: (v - 32) * 5 / 9,
            "°f": lambda v: (v - 32) * 5 / 9,
            "degf": lambda v: (v - 32) * 5 / 9,
        },
    ),
    "body_weight": (
        "29463-7",
        "Body Weight",
        "kg",
        (0.2, 400),
        {
            "kg": _SAME,
            "g": lambda v: v / 1000,
            "lb": lambda v: v * 0.45359237,
            "lbs": lambda v: v * 0.45359237,
            "[lb_av]": lambda v: v * 0.45359237,
        },
    ),
    "body_height": (
        "8302-2",
        "Body Height",
        "cm",
        (20, 260),
        {"cm": _SAME, "m": lambda v: v * 100, "in": lambda v: v * 2.54, "[in_i]": lambda v: v * 2.54},
    ),
    "bmi": ("39156-5", "Body Mass Index", "kg/m2", (5, 100), {"kg/m2": _SAME, "kg/m^2": _SAME}),
    "oxygen_saturation": ("2708-6", "Oxygen saturation in Arterial blood", "%", (50, 100), {"%": _SAME}),
    "pain_score": (
        "72514-3",
        "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        "{score}",
        (0, 10),
        {"{score}": _SAME, "score": _SAME},
    ),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_PARTS = {
    "systolic": ("8480-6", "Systolic blood pressure", (50, 300)),
    "diastolic": ("8462-4", "Diastolic blood pressure", (20, 200)),
}
_MMHG = {"mm[hg]", "mmhg", "mm hg"}


class VitalArgs(WriteArgs):
    vital: VitalKind
    """Which vital sign."""
    value: float | None = None
    """The measured value (all vitals except blood_pressure)."""
    systolic: float | None = None
    """Systolic pressure in mmHg (blood_pressure only)."""
    diastolic: float | None = None
    """Diastolic pressure in mmHg (blood_pressure only)."""
    unit: str | None = Field(None, max_length=20)
    """Unit when not the standard one (kg, cm, Cel, /min, %, mm[Hg]); lb, in and degF are converted."""
    effective: DateArg | None = None
    """When it was measured (default now)."""

    @model_validator(mode="after")
    def _values(self) -> VitalArgs:
        if self.vital == "blood_pressure":
            if self.systolic is None or self.diastolic is None:
                raise ValueError("blood_pressure needs systolic and diastolic, e.g. systolic=120, diastolic=80")
            if self.value is not None:
                raise ValueError("blood_pressure takes systolic and diastolic, not value")
        elif self.value is None:
            raise ValueError(f"{self.vital} needs value, e.g. value=72")
        elif self.systolic is not None or self.diastolic is not None:
            raise ValueError("systolic/diastolic are only for vital='blood_pressure'")
        return self


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 4), "unit": unit, "system": UCUM, "code": unit}


def _vital_resource(args: VitalArgs, effective: str) -> dict[str, Any]:
    low: float
    high: float
    category = [
        {
            "coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}],
            "text": "Vital Signs",
        }
    ]
    base = {
        "resourceType": "Observation",
        "status": "final",
        "category": category,
        "subject": {"reference": f"Patient/{args.patient}"},
        "effectiveDateTime": effective,
        "issued": effective,
    }
    if args.vital == "blood_pressure":
        if args.unit and args.unit.lower() not in _MMHG:
            raise ToolError(f"blood pressure is recorded in mm[Hg], not {args.unit!r}; omit unit or use 'mm[Hg]'")
        components = []
        for part, value in (("systolic", args.systolic), ("diastolic", args.diastolic)):
            code, display, (low, high) = BP_PARTS[part]
            assert value is not None
            if not low <= value <= high:
                raise ToolError(f"{part}={number(value)} mmHg is not plausible (expected {low}-{high})")
            components.append(
                {
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                    "valueQuantity": _quantity(value, "mm[Hg]"),
                }
            )
        assert args.systolic is not None and args.diastolic is not None
        if args.diastolic >= args.systolic:
            raise ToolError(f"diastolic ({number(args.diastolic)}) must be below systolic ({number(args.systolic)})")
        code, display = BP_PANEL
        return {
            **base,
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "component": components,
        }
    code, display, unit, (low, high), units = VITALS[args.vital]
    assert args.value is not None
    given = (args.unit or unit).strip()
    convert = units.get(given.lower()) or units.get(given)
    if convert is None:
        raise ToolError(f"unit {given!r} is not accepted for {args.vital}; use one of {', '.join(units)}")
    value = convert(args.value)
    if not low <= value <= high:
        raise ToolError(f"{args.vital}={number(value)} {unit} is not plausible (expected {low}-{high} {unit})")
    return {
        **base,
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "valueQuantity": _quantity(value, unit),
    }


@tool(writes=True, example={"patient": EXAMPLE_PATIENT, "vital": "blood_pressure", "systolic": 128, "diastolic": 82})
async def record_vital_sign(ctx: ToolContext, args: VitalArgs) -> ToolResult:
    """Record a vital sign as an Observation (status final, category vital-signs, LOINC coded, effective now by default).

    Blood pressure is a panel (LOINC 85354-9) with systolic 8480-6 and diastolic 8462-4 components in mm[Hg].
    """
    await writable_patient(ctx, args.patient)
    resource = _vital_resource(args, when(ctx, args.effective, "effective", future=False))
    body, created = await create(ctx, "record_vital_sign", args, resource)
    return _result("recorded", body, created, observation_line(body, ctx.now).text)


class ObservationWriteArgs(WriteArgs):
    code: str
    """LOINC code, e.g. 2339-0 (glucose)."""
    display: str | None = Field(None, max_length=200)
    """Name of the test (default: the name the data uses for the code)."""
    value: float | None = None
    """Numeric result."""
    unit: str | None = Field(None, max_length=30)
    """UCUM unit of a numeric result, e.g. mg/dL, mmol/L, %."""
    value_text: str | None = Field(None, max_length=500)
    """A text result instead of a number."""
    category: Literal["laboratory", "vital-signs", "survey", "exam", "social-history"] = "laboratory"
    """Observation category."""
    effective: DateArg | None = None
    """When it was measured (default now)."""

    @field_validator("code")
    @classmethod
    def _loinc(cls, value: str) -> str:
        code = value.strip().removeprefix("http://loinc.org|").removeprefix("loinc|").removeprefix("LOINC ")
        if not _LOINC_CODE.match(code):
            raise ValueError(f"{value!r} is not a LOINC code; e.g. 2339-0 (glucose) or 6298-4 (potassium)")
        return code

    @model_validator(mode="after")
    def _one_value(self) -> ObservationWriteArgs:
        if (self.value is None) == (self.value_text is None):
            raise ValueError("give exactly one of value (with unit) or value_text")
        if self.value is not None and not self.unit:
            raise ValueError("a numeric value needs its unit, e.g. unit='mg/dL'")
        return self


@tool(writes=True, example={"patient": EXAMPLE_PATIENT, "code": "2339-0", "value": 105, "unit": "mg/dL"})
async def record_observation(ctx: ToolContext, args: ObservationWriteArgs) -> ToolResult:
    """Record a lab result or other observation (any LOINC code) with a numeric value + unit or a text value, effective now by default."""
    await writable_patient(ctx, args.patient)
    effective = when(ctx, args.effective, "effective", future=False)
    display = (
        args.display
        or await _display_in_data(ctx, "Observation", "code", LOINC, args.code, "code", args.patient)
        or args.code
    )
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": args.category}]}],
        "code": {"coding": [{"system": LOINC, "code": args.code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{args.patient}"},
        "effectiveDateTime": effective,
        "issued": effective,
    }
    if args.value is not None:
        assert args.unit
        resource["valueQuantity"] = _quantity(args.value, args.unit)
    else:
        resource["valueString"] = args.value_text
    body, created = await create(ctx, "record_observation", args, resource)
    return _result("recorded", body, created, observation_line(body, ctx.now).text)


# ---------- medication orders ----------

ROUTES = {
    "oral": ("26643006", "Oral route"),
    "po": ("26643006", "Oral route"),
    "by mouth": ("26643006", "Oral route"),
    "iv": ("47625008", "Intravenous route"),
    "intravenous": ("47625008", "Intravenous route"),
    "im": ("78421000", "Intramuscular route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "sc": ("34206005", "Subcutaneous route"),
    "subq": ("34206005", "Subcutaneous route"),
    "topical": ("6064005", "Topical route"),
    "inhaled": ("447694001", "Respiratory tract route"),
    "inhalation": ("447694001", "Respiratory tract route"),
    "sublingual": ("37839007", "Sublingual route"),
    "rectal": ("37161004", "Rectal route"),
    "nasal": ("46713006", "Nasal route"),
    "transdermal": ("45890007", "Transdermal route"),
}
TIME_UNITS = {
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "min": "min",
    "minute": "min",
    "minutes": "min",
    "mins": "min",
    "d": "d",
    "day": "d",
    "days": "d",
    "s": "s",
    "wk": "wk",
    "week": "wk",
    "weeks": "wk",
}
DOSE_UNITS = {
    "meq": ("mEq", "meq"),
    "mmol": ("mmol", "mmol"),
    "mg": ("mg", "mg"),
    "g": ("g", "g"),
    "gram": ("g", "g"),
    "grams": ("g", "g"),
    "mcg": ("mcg", "ug"),
    "ug": ("mcg", "ug"),
    "ml": ("mL", "mL"),
    "l": ("L", "L"),
    "unit": ("U", "U"),
    "units": ("U", "U"),
    "u": ("U", "U"),
    "iu": ("IU", "[iU]"),
    "tablet": ("tablet", "{tbl}"),
    "tablets": ("tablet", "{tbl}"),
    "capsule": ("capsule", "{cap}"),
    "capsules": ("capsule", "{cap}"),
    "puff": ("puff", "{puff}"),
    "puffs": ("puff", "{puff}"),
    "drop": ("drop", "[drp]"),
    "drops": ("drop", "[drp]"),
}


def _dose_quantity(value: float, unit: str) -> dict[str, Any]:
    known = DOSE_UNITS.get(unit.strip().lower())
    if known is None:
        raise ToolError(f"dose unit {unit!r} is not known; use one of: {', '.join(sorted(DOSE_UNITS))}")
    shown, code = known
    return {"value": value, "unit": shown, "system": UCUM, "code": code}


ReasonReference = Annotated[
    str, Field(pattern=r"^(Condition|Observation)/[A-Za-z0-9\-.]{1,64}$"), AfterValidator(check_record_reference)
]
"""A Condition or an Observation of the patient: why something is ordered."""


class MedicationOrderArgs(WriteArgs):
    code: str
    """RxNorm code (e.g. 316049), NDC code (e.g. 40032-917-01) or CVX vaccine code (e.g. 140, with system cvx)."""
    system: Literal["rxnorm", "ndc", "cvx"] | None = None
    """Code system (default: NDC for codes with dashes, else RxNorm; cvx for a vaccine order)."""
    display: str | None = Field(None, max_length=200)
    """Medication name (default: the name the data uses for the code)."""
    dose_value: float | None = Field(None, gt=0)
    """Dose per administration, e.g. 40."""
    dose_unit: str | None = None
    """Unit of the dose: mEq, mg, g, mL, tablet, ..."""
    route: str | None = None
    """Route: oral, iv, im, subcutaneous, topical, inhaled, sublingual, rectal, nasal, transdermal."""
    rate_value: float | None = Field(None, gt=0)
    """Infusion rate, e.g. 1 (with rate_unit g/h)."""
    rate_unit: str | None = Field(None, max_length=20)
    """Unit of the rate, e.g. g/h, mL/h."""
    duration_value: float | None = Field(None, gt=0)
    """How long one administration lasts (e.g. an infusion over 2 h)."""
    duration_unit: str | None = None
    """Unit of the duration: min, h, d."""
    instructions: str | None = Field(None, max_length=300)
    """Free-text dosage instructions, e.g. 'once daily with food'."""
    reason_reference: Annotated[ReasonReference | None, RecordOf()] = None
    """Why it is ordered: the Condition treated or the Observation (a result) that triggered it, e.g. 'Condition/<id>'."""

    @model_validator(mode="after")
    def _check(self) -> MedicationOrderArgs:
        code = self.code.strip()
        system = self.system or ("ndc" if "-" in code else "rxnorm")
        pattern = {"ndc": _NDC_CODE, "cvx": _CVX_CODE}.get(system, _RXNORM_CODE)
        if not pattern.match(code):
            example = {"ndc": "40032-917-01", "cvx": "140"}.get(system, "316049")
            raise ValueError(f"{self.code!r} is not a valid {system} code, e.g. {example}")
        self.system = system
        self.code = code
        for value, unit, name in (
            (self.dose_value, self.dose_unit, "dose"),
            (self.rate_value, self.rate_unit, "rate"),
            (self.duration_value, self.duration_unit, "duration"),
        ):
            if (value is None) != (unit is None):
                raise ValueError(f"{name}_value and {name}_unit go together")
        if self.duration_unit and self.duration_unit.strip().lower() not in TIME_UNITS:
            raise ValueError(f"duration_unit {self.duration_unit!r} unknown; use min, h or d")
        if self.route and self.route.strip().lower() not in ROUTES:
            raise ValueError(f"route {self.route!r} unknown; use one of {', '.join(sorted(set(ROUTES)))}")
        return self


@tool(
    writes=True,
    example={
        "patient": EXAMPLE_PATIENT,
        "code": "40032-917-01",
        "system": "ndc",
        "dose_value": 40,
        "dose_unit": "mEq",
        "route": "oral",
    },
)
async def order_medication(ctx: ToolContext, args: MedicationOrderArgs) -> ToolResult:
    """Order a medication or a vaccine: a MedicationRequest (status active, intent order, authored now) with RxNorm/NDC/CVX code, dose, route, rate, duration and reason."""
    await writable_patient(ctx, args.patient)
    system = {"ndc": NDC, "cvx": CVX}.get(args.system or "", RXNORM)
    display = args.display or await _display_in_data(
        ctx, "MedicationRequest", "code", system, args.code, "medicationCodeableConcept", args.patient
    )
    if display is None and args.system == "cvx":
        display = await _display_in_data(
            ctx, "Immunization", "vaccine-code", system, args.code, "vaccineCode", args.patient
        )
    label = {"ndc": "NDC", "cvx": "CVX"}.get(args.system or "", "RxNorm")
    display = display or f"{label} {args.code}"
    dosage: dict[str, Any] = {}
    if args.instructions:
        dosage["text"] = args.instructions
    if args.route:
        code, name = ROUTES[args.route.strip().lower()]
        dosage["route"] = {"coding": [{"system": SNOMED, "code": code, "display": name}], "text": args.route.strip()}
    dose_rate: dict[str, Any] = {}
    if args.dose_value is not None and args.dose_unit:
        dose_rate["doseQuantity"] = _dose_quantity(args.dose_value, args.dose_unit)
    if args.rate_value is not None and args.rate_unit:
        dose_rate["rateQuantity"] = {
            "value": args.rate_value,
            "unit": args.rate_unit,
            "system": UCUM,
            "code": args.rate_unit,
        }
    if dose_rate:
        dosage["doseAndRate"] = [dose_rate]
    if args.duration_value is not None and args.duration_unit:
        dosage["timing"] = {
            "repeat": {"duration": args.duration_value, "durationUnit": TIME_UNITS[args.duration_unit.strip().lower()]}
        }
    authored = fhir_instant(ctx.now)
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": system, "code": args.code, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{args.patient}"},
        "authoredOn": authored,
        "requester": {"display": ctx.actor},
    }
    if dosage:
        resource["dosageInstruction"] = [dosage]
    if args.reason_reference:  # a record of the same patient: checked by the registry before the write was decided
        resource["reasonReference"] = [{"reference": args.reason_reference}]
    body, created = await create(ctx, "order_medication", args, resource)
    return _result("ordered", body, created, medication_line(body, ctx.now, {}, {}).text)


# ---------- lab orders and referrals ----------

SERVICE_CATEGORIES = {
    "lab": ("108252007", "Laboratory procedure"),
    "referral": ("3457005", "Patient referral"),
    "imaging": ("363679005", "Imaging"),
    "procedure": ("387713003", "Surgical procedure"),
}


class ServiceOrderArgs(WriteArgs):
    code: str
    """LOINC code of a lab test (e.g. 2823-3) or SNOMED code of a referral/procedure (e.g. 183545006)."""
    system: Literal["loinc", "snomed"] | None = None
    """Code system (default: LOINC for codes like 1234-5, else SNOMED)."""
    display: str | None = Field(None, max_length=200)
    """Name of the test or service (default: the name the data uses for the code)."""
    kind: Literal["lab", "referral", "imaging", "procedure"] = "lab"
    """What is ordered."""
    occurrence: DateArg | None = None
    """When it should happen, e.g. 'tomorrow 08:00' or 2019-05-03T08:00 (default: unspecified, as soon as possible)."""
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    """Priority."""
    note: str | None = Field(None, max_length=2000)
    """Free text for the performer (e.g. the referral's situation/background/assessment/recommendation)."""
    reason_reference: Annotated[ReasonReference | None, RecordOf()] = None
    """The Condition or Observation that motivates the order."""

    @model_validator(mode="after")
    def _check(self) -> ServiceOrderArgs:
        code = self.code.strip()
        system = self.system or ("loinc" if _LOINC_CODE.match(code) else "snomed")
        pattern = _LOINC_CODE if system == "loinc" else _SNOMED_CODE
        if not pattern.match(code):
            example = "2823-3" if system == "loinc" else "183545006"
            raise ValueError(f"{self.code!r} is not a valid {system} code, e.g. {example}")
        self.system, self.code = system, code
        return self


@tool(
    writes=True, example={"patient": EXAMPLE_PATIENT, "code": "2823-3", "kind": "lab", "occurrence": "tomorrow 08:00"}
)
async def order_service(ctx: ToolContext, args: ServiceOrderArgs) -> ToolResult:
    """Order a lab test, referral, imaging or procedure: a ServiceRequest (status active, intent order, authored now) with LOINC/SNOMED code, time, priority and note."""
    await writable_patient(ctx, args.patient)
    system = LOINC if args.system == "loinc" else SNOMED
    display = args.display
    if display is None:
        for kind, param, element in (
            ("Observation", "code", "code"),
            ("DiagnosticReport", "code", "code"),
            ("Procedure", "code", "code"),
            ("ServiceRequest", "code", "code"),
        ):
            display = await _display_in_data(ctx, kind, param, system, args.code, element, args.patient)
            if display:
                break
    display = display or f"{'LOINC' if args.system == 'loinc' else 'SNOMED'} {args.code}"
    category_code, category_name = SERVICE_CATEGORIES[args.kind]
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "priority": args.priority,
        "category": [{"coding": [{"system": SNOMED, "code": category_code, "display": category_name}]}],
        "code": {"coding": [{"system": system, "code": args.code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{args.patient}"},
        "authoredOn": fhir_instant(ctx.now),
        "requester": {"display": ctx.actor},
    }
    if args.occurrence:
        resource["occurrenceDateTime"] = when(ctx, args.occurrence, "occurrence", future=True)
    if args.note:
        resource["note"] = [{"text": args.note, "time": fhir_instant(ctx.now), "authorString": ctx.actor}]
    if args.reason_reference:
        resource["reasonReference"] = [{"reference": args.reason_reference}]
    body, created = await create(ctx, "order_service", args, resource)
    return _result("ordered", body, created, generic_line(body, ctx.now).text)


# ---------- notes ----------

NOTE_TYPES = {
    "progress_note": ("11506-3", "Progress note"),
    "consult_note": ("11488-4", "Consult note"),
    "discharge_summary": ("18842-5", "Discharge summary"),
    "nursing_note": ("34746-8", "Nurse note"),
    "history_and_physical": ("34117-2", "History and physical note"),
}


class NoteArgs(WriteArgs):
    text: str = Field(min_length=1, max_length=5000)
    """The note's text."""
    title: str | None = Field(None, max_length=120)
    """Short title (default: the note type)."""
    note_type: Literal["progress_note", "consult_note", "discharge_summary", "nursing_note", "history_and_physical"] = (
        "progress_note"
    )
    """Kind of clinical note (LOINC document type)."""


@tool(
    writes=True, example={"patient": EXAMPLE_PATIENT, "text": "Patient reports improved sleep; continue current plan."}
)
async def add_note(ctx: ToolContext, args: NoteArgs) -> ToolResult:
    """Add a clinical note to the patient's chart (a DocumentReference with a LOINC note type, dated now, plain text)."""
    await writable_patient(ctx, args.patient)
    code, name = NOTE_TYPES[args.note_type]
    now = fhir_instant(ctx.now)
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "category": [
            {"coding": [{"system": US_CORE_DOCUMENT_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]}
        ],
        "subject": {"reference": f"Patient/{args.patient}"},
        "date": now,
        "author": [{"display": ctx.actor}],
        "description": args.title or name,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "title": args.title or name,
                    "creation": now,
                    "data": base64.b64encode(args.text.encode()).decode(),
                }
            }
        ],
    }
    body, created = await create(ctx, "add_note", args, resource)
    return _result("added", body, created, generic_line(body, ctx.now).text)


# ---------- stopping a medication ----------


def check_medication_request(value: str) -> str:
    """'MedicationRequest/<id>' or the bare id, checked by the one id validator (no '.' or '..')."""
    check_fhir_id(value.removeprefix("MedicationRequest/"))
    return value


class DiscontinueArgs(ToolArgs):
    medication_request: Annotated[
        str, AfterValidator(check_medication_request), RecordOf(resource_type="MedicationRequest")
    ] = Field(pattern=r"^(MedicationRequest/)?[A-Za-z0-9\-.]{1,64}$")
    """The order to stop: 'MedicationRequest/<id>' from search_medications."""
    reason: str | None = Field(None, max_length=300)
    """Why it is stopped (recorded as the status reason and in the audit trail)."""


@tool(
    writes=True,
    destructive=True,
    example={"medication_request": "MedicationRequest/example-medicationrequest-0", "reason": "adverse reaction"},
)
async def discontinue_medication(ctx: ToolContext, args: DiscontinueArgs) -> ToolResult:
    """Stop an active medication order (sets the MedicationRequest's status to stopped, with the reason). Stopping a stopped order changes nothing."""
    rid = args.medication_request.removeprefix("MedicationRequest/")
    resource = await ctx.client.read_json("MedicationRequest", rid)
    ref = f"MedicationRequest/{rid}"
    authored = parse_fhir(resource.get("authoredOn"))
    if authored is not None and authored > ctx.now:
        raise ToolError(f"{ref} is dated after now; it is not known yet", example=False)
    patient = (resource.get("subject") or {}).get("reference", "").rsplit("/", 1)[-1]
    await writable_patient(ctx, patient)
    line = medication_line(resource, ctx.now, {}, {}).text
    if resource.get("status") in ("stopped", "cancelled", "completed", "entered-in-error"):
        return ToolResult(
            text=f"{ref} is already {resource['status']}; nothing changed\n{line}",
            rows=[{"ref": ref, "created": False, "status": resource["status"]}],
            references=[ref],
        )
    before = resource.get("status")
    resource["status"] = "stopped"
    if args.reason:
        resource["statusReason"] = {"text": args.reason}
    body = await update(ctx, "discontinue_medication", args, resource)
    return ToolResult(
        text=f"stopped {ref} (was {before})\n{medication_line(body, ctx.now, {}, {}).text}",
        rows=[{"ref": ref, "status": "stopped", "previous_status": before}],
        references=[ref],
        wrote=[ref],
    )
