"""Clinical read tools: observations, conditions, medications, immunizations, procedures, encounters, reports, allergies.

Every tool is scoped to one patient, hides what is dated after now, sorts newest first (or oldest), and
returns one compact line per resource with its reference.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any, Literal

from medagent.tools.compact import Line, number, render
from medagent.tools.context import ToolContext
from medagent.tools.dates import DateArg, Window, WindowError, up_to
from medagent.tools.registry import ToolArgs, ToolError, ToolResult, tool
from medagent.tools.rows import (
    allergy_line,
    condition_line,
    encounter_line,
    first_coding,
    immunization_line,
    medication_line,
    observation_line,
    procedure_line,
    report_line,
)
from medagent.tools.search_args import (
    EXAMPLE_PATIENT,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CodeArg,
    Limit,
    PatientRef,
    TextArg,
    names_of,
    require_patient,
    resources_by_id,
    text_param,
    text_phrases,
    token_param,
)



class PatientWindowArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>'."""
    since: DateArg | None = None
    """Earliest date, e.g. 2018-01-01 or -90d (relative to now)."""
    until: DateArg | None = None
    """Latest date (default and maximum: now), e.g. 2018-12-31."""
    order: Literal["newest", "oldest"] = "newest"
    """newest first (default), or oldest first for 'first'/'earliest' questions."""
    limit: Limit = DEFAULT_LIMIT


def _sort(args: PatientWindowArgs, date_param: str) -> tuple[str, str]:
    return ("_sort", f"-{date_param}" if args.order == "newest" else date_param)


def _window(ctx: ToolContext, args: PatientWindowArgs) -> Window:
    try:
        return Window(ctx.now, args.since, args.until)
    except WindowError as exc:
        raise ToolError(str(exc)) from None


async def _search(ctx: ToolContext, kind: str, params: list[tuple[str, str]],
                  count: int) -> tuple[list[dict[str, Any]], int]:
    """One page of matches and the server's total."""
    bundle = await ctx.client.search_page(kind, [*params, ("_count", str(count))])
    found = [e["resource"] for e in bundle.get("entry", [])
             if e.get("search", {}).get("mode", "match") == "match" and "resource" in e]
    return found, int(bundle.get("total", len(found)))


def _patient_query(ctx: ToolContext, args: PatientWindowArgs, date_param: str,
                   code_param: str = "code") -> tuple[Window, list[tuple[str, str]]]:
    """Search parameters shared by the per-type tools: patient, the date window at now, order, and the
    optional ``code`` (token) and ``text`` (words of the display) filters on ``code_param``."""
    window = _window(ctx, args)
    params = [("patient", args.patient), *window.params(date_param), _sort(args, date_param)]
    code, text = getattr(args, "code", None), getattr(args, "text", None)
    if code:
        params.append((code_param, token_param(code)[0]))
    if text:
        params.append((f"{code_param}:text", text_param(text)))
    return window, params


def _filters(args: ToolArgs, *names: str) -> str:
    values = args.model_dump(exclude_none=True)
    parts = [f"{n}={values[n]!r}" for n in names if values.get(n) not in (None, "all", False)]
    return (", " + ", ".join(parts)) if parts else ""


# ---------- observations ----------

class ObservationArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """LOINC code(s), e.g. 4548-4 (HbA1c), 8480-6 (systolic BP), 2339-0 (glucose); comma = any of."""
    text: TextArg | None = None
    """Words of the test name when the code is unknown, e.g. 'hemoglobin a1c' (lookup_codes finds codes)."""
    category: Literal["vital-signs", "laboratory", "survey", "exam", "social-history", "procedure",
                      "imaging"] | None = None
    """Observation category."""
    latest: int | None = None
    """Only the N most recent results of each code (e.g. 1 for 'the latest value'; with order=oldest the N earliest)."""


@tool(example={"patient": EXAMPLE_PATIENT, "code": "4548-4", "latest": 1})
async def search_observations(ctx: ToolContext, args: ObservationArgs) -> ToolResult:
    """Lab results and vital signs of a patient by LOINC code or name, in a date window (newest first), with units.

    Use latest=1 for the most recent value. A blood-pressure component (8480-6 systolic, 8462-4 diastolic)
    is found inside its panel. When several values of one code are listed, a summary line gives n/mean/min/max.
    """
    if args.latest is not None and not 1 <= args.latest <= 20:
        raise ToolError("latest must be between 1 and 20 (1 = only the most recent value of each code)")
    await require_patient(ctx, args.patient)
    window = _window(ctx, args)
    params = [("patient", args.patient), *window.params("date"), _sort(args, "date")]
    focus: set[str] | None = None
    if args.code:
        value, focus = token_param(args.code)
        params.append(("combo-code", value))
    phrases = text_phrases(args.text) if args.text else []
    if args.text:
        params.append(("combo-code:text", text_param(args.text)))
    if args.category:
        params.append(("category", args.category))
    fetch = MAX_LIMIT if args.latest else args.limit
    found, total = await _search(ctx, "Observation", params, max(fetch, args.limit))
    lines = []
    for resource in found:
        codes = focus
        if phrases and not codes:
            own = " ".join(c.get("display", "") for c in resource.get("code", {}).get("coding", [])).lower()
            if not any(p in own for p in phrases):
                codes = {c["code"] for comp in resource.get("component", []) for c in comp.get("code", {}).get("coding", [])
                         if any(p in (c.get("display") or "").lower() for p in phrases)}
        lines.append(observation_line(resource, ctx.now, codes or None))
    note = ""
    if args.latest:
        per_code: dict[str, int] = defaultdict(int)
        kept = []
        for line in lines:
            key = line.row.get("component") or line.row["code"]
            per_code[key] += 1
            if per_code[key] <= args.latest:
                kept.append(line)
        lines = kept[: args.limit]
        which = "latest" if args.order == "newest" else "earliest"
        note = f", {which} {args.latest} per code" + (f" among the {len(found)} {args.order}" if total > len(found) else "")
        total = len(kept)
    footer = _stats(lines)
    header = (f"observations of Patient/{args.patient}, {window.describe()}"
              f"{_filters(args, 'code', 'text', 'category')}{note}: {total} found, {args.order} first")
    return render(ctx, header, lines, total=total, footer=footer,
                  empty="none found (dates after now are hidden); try lookup_codes(text=...) for the right code, "
                        "or widen since/until")


def _stats(lines: list[Line]) -> list[str]:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    names: dict[tuple[str, str], str] = {}
    for line in lines:
        value = line.row.get("value")
        if isinstance(value, float) and not line.row.get("components"):
            key = (line.row.get("component") or line.row["code"], line.row.get("unit") or "")
            groups[key].append(value)
            names[key] = key[0]
    out = []
    for (code, unit), values in groups.items():
        if len(values) >= 2:
            out.append(f"{code}: n={len(values)} listed, mean {number(mean(values))}, min {number(min(values))}, "
                       f"max {number(max(values))} {unit}".rstrip())
    return out if len(out) <= 3 else []


# ---------- conditions ----------

class ConditionArgs(PatientWindowArgs):
    status: Literal["active", "resolved", "all"] = "all"
    """Clinical status at now: active (not abated by now), resolved, or all."""
    code: CodeArg | None = None
    """SNOMED code(s), e.g. 44054006 (diabetes)."""
    text: TextArg | None = None
    """Words of the condition name, e.g. 'diabetes' (also finds 'prediabetes', 'neuropathy due to type 2 diabetes')."""


@tool(example={"patient": EXAMPLE_PATIENT, "text": "diabetes"})
async def search_conditions(ctx: ToolContext, args: ConditionArgs) -> ToolResult:
    """Diagnoses (problem list) of a patient: onset date, SNOMED code, and status at now (active, or resolved with the abatement date).

    since/until filter on the onset date. Newest onset first.
    """
    await require_patient(ctx, args.patient)
    window, params = _patient_query(ctx, args, "onset-date")
    found, total = await _search(ctx, "Condition", params, MAX_LIMIT)
    lines = [condition_line(r, ctx.now) for r in found]
    if args.status != "all":
        lines = [line for line in lines if (line.row["status"] == "active") == (args.status == "active")]
        total = len(lines) + max(0, total - len(found))
    active = sum(1 for line in lines if line.row["status"] == "active")
    header = (f"conditions of Patient/{args.patient}, onset {window.describe()}{_filters(args, 'status', 'code', 'text')}"
              f": {total} found ({active} active at now), {args.order} onset first")
    return render(ctx, header, lines[: args.limit], total=total, hint="text/code or since/until",
                  empty="none found (onsets after now are hidden); try other words or lookup_codes")


# ---------- medications ----------

class MedicationArgs(PatientWindowArgs):
    status: Literal["current", "past", "all"] = "all"
    """current: orders with status active authored by now; past: stopped/completed orders; all."""
    code: CodeArg | None = None
    """RxNorm code(s), e.g. 316049."""
    text: TextArg | None = None
    """Words of the medication name, e.g. 'hydrochlorothiazide'."""


@tool(example={"patient": EXAMPLE_PATIENT, "status": "current"})
async def search_medications(ctx: ToolContext, args: MedicationArgs) -> ToolResult:
    """Medication orders (MedicationRequest) of a patient: date written, drug + RxNorm code, status, prescriber name, reason (the condition it treats), dose.

    status=current lists orders that are active at now. since/until filter on the date written. Newest first.
    """
    await require_patient(ctx, args.patient)
    window, params = _patient_query(ctx, args, "authoredon")
    if args.status == "current":
        params.append(("status", "active"))
    elif args.status == "past":
        params.append(("status:not", "active"))
    found, total = await _search(ctx, "MedicationRequest", params, args.limit)
    prescribers = await names_of(ctx, [(r.get("requester") or {}).get("reference", "") for r in found])
    reason_ids = [ref.get("reference", "").rsplit("/", 1)[-1] for r in found for ref in r.get("reasonReference", [])
                  if ref.get("reference", "").startswith("Condition/")]
    conditions = await resources_by_id(ctx, "Condition", reason_ids)
    reasons = {ref: first_coding(c.get("code"))[2] for ref, c in conditions.items()}
    lines = [medication_line(r, ctx.now, prescribers, reasons) for r in found]
    extra_refs = sorted({ref for line in lines for ref in [*line.row["reasons"], line.row["requester"] or ""] if ref})
    header = (f"medication orders of Patient/{args.patient}, written {window.describe()}"
              f"{_filters(args, 'status', 'code', 'text')}: {total} found, {args.order} first")
    return render(ctx, header, lines, total=total, hint="text/code, status or since/until",
                  references=extra_refs, empty="none found (orders written after now are hidden)")


# ---------- immunizations, procedures ----------

class ImmunizationArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """CVX code(s), e.g. 140 (influenza), 113 (Td)."""
    text: TextArg | None = None
    """Words of the vaccine name, e.g. 'influenza'."""


@tool(example={"patient": EXAMPLE_PATIENT, "code": "140"})
async def search_immunizations(ctx: ToolContext, args: ImmunizationArgs) -> ToolResult:
    """Vaccinations of a patient: date, vaccine + CVX code (newest first; order=oldest for the first dose)."""
    await require_patient(ctx, args.patient)
    window, params = _patient_query(ctx, args, "date", code_param="vaccine-code")
    found, total = await _search(ctx, "Immunization", params, args.limit)
    header = (f"immunizations of Patient/{args.patient}, {window.describe()}{_filters(args, 'code', 'text')}: "
              f"{total} found, {args.order} first")
    return render(ctx, header, [immunization_line(r, ctx.now) for r in found], total=total,
                  hint="code/text or since/until", empty="none found (dates after now are hidden)")


class ProcedureArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """SNOMED code(s) of the procedure."""
    text: TextArg | None = None
    """Words of the procedure name, e.g. 'colonoscopy'."""


@tool(example={"patient": EXAMPLE_PATIENT, "text": "colonoscopy"})
async def search_procedures(ctx: ToolContext, args: ProcedureArgs) -> ToolResult:
    """Procedures performed on a patient: date, procedure + SNOMED code, reason (newest first)."""
    await require_patient(ctx, args.patient)
    window, params = _patient_query(ctx, args, "date")
    found, total = await _search(ctx, "Procedure", params, args.limit)
    header = (f"procedures of Patient/{args.patient}, {window.describe()}{_filters(args, 'code', 'text')}: "
              f"{total} found, {args.order} first")
    return render(ctx, header, [procedure_line(r, ctx.now) for r in found], total=total,
                  hint="code/text or since/until", empty="none found (dates after now are hidden)")


# ---------- encounters, diagnostic reports, allergies ----------

class EncounterArgs(PatientWindowArgs):
    encounter_class: Literal["AMB", "EMER", "IMP", "HH", "VR", "OBSENC"] | None = None
    """AMB ambulatory, EMER emergency, IMP inpatient, HH home health, VR virtual, OBSENC observation."""
    text: TextArg | None = None
    """Words of the encounter type, e.g. 'check up'."""


@tool(example={"patient": EXAMPLE_PATIENT, "since": "-1y"})
async def search_encounters(ctx: ToolContext, args: EncounterArgs) -> ToolResult:
    """Visits of a patient: start time, class (AMB/EMER/IMP), type + SNOMED code, reason (newest first)."""
    await require_patient(ctx, args.patient)
    window = _window(ctx, args)
    params = [("patient", args.patient), *window.params("date"), _sort(args, "date")]
    if args.encounter_class:
        params.append(("class", args.encounter_class))
    if args.text:
        params.append(("type:text", text_param(args.text)))
    found, total = await _search(ctx, "Encounter", params, args.limit)
    header = (f"encounters of Patient/{args.patient}, {window.describe()}{_filters(args, 'encounter_class', 'text')}: "
              f"{total} found, {args.order} first")
    return render(ctx, header, [encounter_line(r, ctx.now) for r in found], total=total,
                  hint="since/until or encounter_class", empty="none found (visits after now are hidden)")


class ReportArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """LOINC code(s) of the report/panel, e.g. 51990-0 (basic metabolic panel)."""
    text: TextArg | None = None
    """Words of the report name, e.g. 'lipid panel'."""
    results: bool = False
    """Also list each result's value (costs more tokens)."""


@tool(example={"patient": EXAMPLE_PATIENT, "text": "metabolic panel", "results": True, "limit": 1})
async def search_diagnostic_reports(ctx: ToolContext, args: ReportArgs) -> ToolResult:
    """Diagnostic reports (lab panels) of a patient: date, panel + LOINC code, its results (names, or values with results=true), newest first."""
    await require_patient(ctx, args.patient)
    window, params = _patient_query(ctx, args, "date")
    found, total = await _search(ctx, "DiagnosticReport", params, args.limit)
    results: dict[str, Line] | None = None
    if args.results:
        ids = [ref["reference"].rsplit("/", 1)[-1] for r in found for ref in r.get("result", [])
               if ref.get("reference", "").startswith("Observation/")]
        observations = await resources_by_id(ctx, "Observation", ids)
        results = {ref: observation_line(obs, ctx.now) for ref, obs in observations.items()}
    header = (f"diagnostic reports of Patient/{args.patient}, {window.describe()}{_filters(args, 'code', 'text')}: "
              f"{total} found, {args.order} first")
    return render(ctx, header, [report_line(r, ctx.now, results) for r in found], total=total,
                  hint="code/text, since/until or a smaller limit", empty="none found (dates after now are hidden)")


class AllergyArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>'."""
    status: Literal["active", "inactive", "resolved", "all"] = "all"
    """Clinical status as recorded."""
    text: TextArg | None = None
    """Words of the allergy, e.g. 'peanut'."""
    limit: Limit = DEFAULT_LIMIT


@tool(example={"patient": EXAMPLE_PATIENT, "status": "active"})
async def search_allergies(ctx: ToolContext, args: AllergyArgs) -> ToolResult:
    """Allergies and intolerances of a patient: substance + SNOMED code, category, criticality, status, date recorded."""
    await require_patient(ctx, args.patient)
    params = [("patient", args.patient), ("date", up_to(ctx.now)), ("_sort", "-date")]
    if args.status != "all":
        params.append(("clinical-status", args.status))
    if args.text:
        params.append(("code:text", text_param(args.text)))
    found, total = await _search(ctx, "AllergyIntolerance", params, args.limit)
    header = f"allergies of Patient/{args.patient} recorded by now{_filters(args, 'status', 'text')}: {total} found"
    return render(ctx, header, [allergy_line(r, ctx.now) for r in found], total=total, hint="status or text",
                  empty="no allergies recorded (by now)")
