"""Clinical read tools: observations, conditions, medications, immunizations, procedures, encounters, reports, allergies.

Every tool is scoped to one patient, hides what is dated after now, sorts newest first (or oldest), and
returns one compact line per resource with its reference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from statistics import mean
from typing import Any, Literal

from pydantic import Field

from medagent.fhir.errors import FhirNotFound
from medagent.tools.aggregate import group_lines
from medagent.tools.compact import Line, code_label, number, render
from medagent.tools.context import ToolContext
from medagent.tools.dates import (
    DateArg,
    Window,
    WindowError,
    is_record_reference,
    parse_fhir,
    up_to,
)
from medagent.tools.record_codes import codes_on_record
from medagent.tools.registry import ToolArgs, ToolError, ToolResult, tool
from medagent.tools.rows import (
    allergy_line,
    condition_line,
    date_of,
    encounter_line,
    first_coding,
    immunization_line,
    medication_line,
    minute,
    observation_line,
    procedure_line,
    report_line,
)
from medagent.tools.search_args import (
    DEFAULT_LIMIT,
    EXAMPLE_PATIENT,
    LOINC_COMPONENTS,
    CodeArg,
    Limit,
    Offset,
    PatientRef,
    TextArg,
    death_note,
    names_of,
    require_patient,
    resources_by_id,
    text_matches,
    text_param,
    text_params,
    token_param,
)


class PatientWindowArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>'."""
    since: DateArg | None = None
    """Earliest date (inclusive), e.g. 2018-01-01, -90d (relative to now) or a record such as MedicationRequest/<id>."""
    until: DateArg | None = None
    """Latest date (inclusive; default and maximum: now), e.g. 2018-12-31 (the whole day) or a record such as
    MedicationRequest/<id> (that record's time: records at the same moment are listed)."""
    order: Literal["newest", "oldest"] = "newest"
    """newest first (default), or oldest first for 'first'/'earliest' questions."""
    latest: int | None = Field(None, ge=1, le=20)
    """Only the N most recent rows of each code (1 = the latest value; with order=oldest the N earliest)."""
    group_by: Literal["year", "month", "name"] | None = None
    """Count instead of listing: one line per year, month, or distinct name (code), with n, first and last time
    and their references (name = distinct names, first/last occurrence). Counts are exact over every match."""
    count: bool = False
    """Only the exact number of matches (n), no rows."""
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


def _sort(args: PatientWindowArgs, date_param: str) -> tuple[str, str]:
    return ("_sort", f"-{date_param}" if args.order == "newest" else date_param)


async def _anchor(ctx: ToolContext, value: str | None, name: str) -> tuple[str | None, str]:
    """A since/until argument with a record reference replaced by that record's own time (and a note saying so)."""
    if not value or not is_record_reference(value):
        return value, ""
    kind, _, rid = value.partition("/")
    try:
        resource = await ctx.client.read_json(kind, rid)
    except FhirNotFound:
        raise ToolError(f"{name}={value!r}: no such record; use a reference from a row", example=False) from None
    when = date_of(resource)
    moment = parse_fhir(when)
    if moment is None:
        raise ToolError(f"{name}={value!r}: that record has no date to anchor at", example=False)
    if moment > ctx.now:
        raise ToolError(f"{name}={value!r} is dated after now: it is not known yet", example=False)
    return moment.isoformat(timespec="seconds"), f"{name}={value} ({minute(when)}, inclusive)"


async def _window(ctx: ToolContext, args: PatientWindowArgs) -> tuple[Window, str]:
    """The [since, until] window at now, and a note for anchors given as record references."""
    since, since_note = await _anchor(ctx, args.since, "since")
    until, until_note = await _anchor(ctx, args.until, "until")
    try:
        window = Window(ctx.now, since, until)
    except WindowError as exc:
        raise ToolError(str(exc)) from None
    notes = [n for n in (since_note, until_note) if n]
    return window, (" [" + "; ".join(notes) + "]") if notes else ""


async def _search(
    ctx: ToolContext, kind: str, params: list[tuple[str, str]], count: int, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of matches (from ``offset``) and the server's total."""
    page = [*params, ("_count", str(count))] + ([("_offset", str(offset))] if offset else [])
    bundle = await ctx.client.search_page(kind, page)
    found = [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
    ]
    return found, int(bundle.get("total", len(found)))


ALL_CAP = 5000  # matches read for counts, groups, value filters and latest-per-code


async def _search_all(ctx: ToolContext, kind: str, params: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], int]:
    """Every match (up to ALL_CAP) and the server's total."""
    bundle = await ctx.client.search_page(kind, [*params, ("_count", "1000")])
    total = int(bundle.get("total", 0))
    if total > ALL_CAP:
        raise ToolError(
            f"{total} {kind} records match, more than the {ALL_CAP} that counts, groups, value filters "
            "and latest read; narrow by code/text or since/until first",
            example=False,
        )
    found = [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
    ]
    if total > len(found):
        async for resource in ctx.client.search_json(
            kind, [*params, ("_count", "1000"), ("_offset", str(len(found)))], limit=min(total, ALL_CAP) - len(found)
        ):
            found.append(resource)
    return found, total


def _needs_all(args: PatientWindowArgs, *filters: Any) -> bool:
    """Whether the answer needs every match (counting, grouping, latest per code, a filter applied here)."""
    return bool(args.count or args.group_by or args.latest or any(f for f in filters))


async def _patient_query(
    ctx: ToolContext, args: PatientWindowArgs, kind: str, date_param: str, code_param: str = "code"
) -> tuple[Window, str, list[tuple[str, str]]]:
    """Search parameters shared by the per-type tools: patient, the date window at now, order, and the
    optional ``code`` (token) and ``text`` (words of the display) filters on ``code_param``."""
    window, anchors = await _window(ctx, args)
    params = [("patient", args.patient), *window.params(date_param), _sort(args, date_param)]
    code, text = getattr(args, "code", None), getattr(args, "text", None)
    if code:
        params.append((code_param, token_param(code)[0]))
    if text:
        params += await _text_filter(ctx, kind, params, code_param, text)
    return window, anchors, params


async def _text_filter(
    ctx: ToolContext, kind: str, params: list[tuple[str, str]], code_param: str, text: str
) -> list[tuple[str, str]]:
    """The ``:text`` parameters for ``text``: the phrase as written when it matches (as precise as before),
    else every word in any order (:func:`text_params`); one count-only search decides."""
    loose = text_params(code_param, text)
    phrase = [(f"{code_param}:text", text_param(text))]
    if loose == phrase:
        return loose
    bundle = await ctx.client.search_page(kind, [*params, *phrase, ("_summary", "count")])
    return phrase if int(bundle.get("total", 0)) else loose


def _filters(args: ToolArgs, *names: str) -> str:
    values = args.model_dump(exclude_none=True)
    parts = [f"{n}={values[n]!r}" for n in names if values.get(n) not in (None, "all", False)]
    return (", " + ", ".join(parts)) if parts else ""


def _latest_per_code(lines: list[Line], n: int) -> list[Line]:
    seen: dict[str, int] = defaultdict(int)
    kept = []
    for line in lines:
        key = line.row.get("component") or line.row.get("code") or line.row.get("display") or ""
        seen[key] += 1
        if seen[key] <= n:
            kept.append(line)
    return kept


def _answer(
    ctx: ToolContext,
    args: PatientWindowArgs,
    header: str,
    lines: list[Line],
    total: int,
    *,
    paged_here: bool,
    hint: str,
    empty: str,
    footer: list[str] | None = None,
    references: list[str] | None = None,
) -> ToolResult:
    """Rows, a count or groups, under the header; ``paged_here``: ``lines`` are every match (page them here)."""
    if args.count:
        result = render(ctx, f"{header}; count only", [], total=0, empty=f"n={total}", pageable=False)
        result.rows = [{"count": total}]
        return result
    if args.group_by:
        groups = group_lines(lines, args.group_by)
        text = f"{header}; grouped by {args.group_by}: {len(groups)} groups, n={total} in all"
        return render(
            ctx,
            text,
            groups[args.offset : args.offset + args.limit],
            total=len(groups),
            offset=args.offset,
            limit=args.limit,
            hint=hint,
            empty=empty,
        )
    page = lines[args.offset : args.offset + args.limit] if paged_here else lines
    return render(
        ctx,
        header,
        page,
        total=total,
        offset=args.offset,
        limit=args.limit,
        hint=hint,
        empty=empty,
        footer=footer or [],
        references=references or [],
    )


# ---------- observations ----------


class ObservationArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """LOINC code(s), e.g. 4548-4 (HbA1c), 8480-6 (systolic BP), 2339-0 (glucose); comma = any of."""
    text: TextArg | None = None
    """Words of the test name when the code is unknown, e.g. 'hemoglobin a1c' (lookup_codes finds codes)."""
    category: (
        Literal["vital-signs", "laboratory", "survey", "exam", "social-history", "procedure", "imaging"] | None
    ) = None
    """Observation category."""
    value_gt: float | None = None
    """Only results with a numeric value above this (in the result's own unit), e.g. 100 for glucose > 100 mg/dL."""
    value_lt: float | None = None
    """Only results with a numeric value below this."""


@tool(example={"patient": EXAMPLE_PATIENT, "code": "4548-4", "latest": 1})
async def search_observations(ctx: ToolContext, args: ObservationArgs) -> ToolResult:
    """Lab results and vital signs of a patient by LOINC code or name, in a date window (newest first), with units.

    Use latest=1 for the most recent value; value_gt/value_lt, count and group_by (year, month, name) count
    exactly without reading rows. A blood-pressure component (8480-6 systolic, 8462-4 diastolic) is found inside
    its panel. When several values of one code are listed, a summary line gives n/mean/min/max.
    Up to 100 rows per call within ~800 tokens; the cut line gives the next offset.
    """
    patient = await require_patient(ctx, args.patient)
    window, anchors = await _window(ctx, args)
    params = [("patient", args.patient), *window.params("date"), _sort(args, "date")]
    focus: set[str] | None = None
    if args.code:
        value, focus = token_param(args.code)
        params.append(("combo-code", value))
    if args.text:
        params += await _text_filter(ctx, "Observation", params, "combo-code", args.text)
    if args.category:
        params.append(("category", args.category))
    valued = args.value_gt is not None or args.value_lt is not None
    everything = _needs_all(args, valued)
    if everything:
        found, total = await _search_all(ctx, "Observation", params)
    else:
        found, total = await _search(ctx, "Observation", params, args.limit, args.offset)
    lines = []
    for resource in found:
        codes = focus
        if args.text and not codes:
            own = " ".join(c.get("display", "") for c in resource.get("code", {}).get("coding", []))
            if not text_matches(own, args.text):
                codes = {
                    c["code"]
                    for comp in resource.get("component", [])
                    for c in comp.get("code", {}).get("coding", [])
                    if text_matches(c.get("display") or "", args.text)
                }
        lines.append(observation_line(resource, ctx.now, codes or None))
    if valued:
        lines = [
            line
            for line in lines
            if isinstance(line.row.get("value"), float)
            and (args.value_gt is None or line.row["value"] > args.value_gt)
            and (args.value_lt is None or line.row["value"] < args.value_lt)
        ]
    note = ""
    if args.latest:
        lines = _latest_per_code(lines, args.latest)
        note = f", {'latest' if args.order == 'newest' else 'earliest'} {args.latest} per code"
    if everything:
        total = len(lines)
    shown = lines[args.offset : args.offset + args.limit] if everything else lines
    header = (
        f"observations of Patient/{args.patient}{death_note(patient, ctx.now)}, {window.describe()}{anchors}"
        f"{_filters(args, 'code', 'text', 'category', 'value_gt', 'value_lt')}{note}: {total} found, "
        f"{args.order} first"
    )
    empty = (
        "none found (dates after now are hidden); try lookup_codes(text=...) for the right code, or widen since/until"
    )
    if not lines and args.code and not valued:
        empty = (
            await _sibling_codes(ctx, args.patient, focus or set())
            or await codes_on_record(ctx, "Observation", args.patient, focus or set(), "observations")
            or empty
        )
    return _answer(
        ctx,
        args,
        header,
        lines,
        total,
        paged_here=everything,
        hint="code/text or since/until",
        empty=empty,
        footer=_stats(shown),
    )


async def _sibling_codes(ctx: ToolContext, patient: str, codes: set[str]) -> str:
    """'none found' that names codes of this patient's record measuring the same thing (same LOINC component)."""
    names = {LOINC_COMPONENTS[c] for c in codes if c in LOINC_COMPONENTS}
    for code in sorted(codes):
        bundle = await ctx.client.search_page(
            "Observation", [("combo-code", code), ("_count", "1"), ("_elements", "code,component")]
        )
        for entry in bundle.get("entry", []):
            for concept in [
                entry["resource"].get("code") or {},
                *[c.get("code") or {} for c in entry["resource"].get("component", [])],
            ]:
                for coding in concept.get("coding", []):
                    if coding.get("code") == code and coding.get("display"):
                        names.add(loinc_component(coding["display"]))
    siblings: dict[str, tuple[str, int]] = {}
    for name in sorted(n for n in names if n):
        bundle = await ctx.client.search_page(
            "Observation",
            [
                ("patient", patient),
                ("combo-code:text", name),
                ("date", up_to(ctx.now)),
                ("_count", "1000"),
                ("_elements", "code"),
            ],
        )
        for entry in bundle.get("entry", []):
            _, code, display = first_coding(entry["resource"].get("code"))
            if code not in codes and loinc_component(display) == name:
                siblings[code] = (display, siblings.get(code, ("", 0))[1] + 1)
    if not siblings:
        return ""
    listed = "; ".join(f"{display} (LOINC {code}) x{n}" for code, (display, n) in sorted(siblings.items()))
    return (
        f"none found for code {', '.join(sorted(codes))}; this record measures the same component under: "
        f"{listed} (search with that code)"
    )


def loinc_component(display: str) -> str:
    """The component of a LOINC display name: 'Sodium [Moles/volume] in Serum or Plasma' -> 'sodium'."""
    head = display.split("[")[0].split(" in ")[0].split(" - ")[0]
    return " ".join(head.lower().split())


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
            out.append(
                f"{code}: n={len(values)} listed, mean {number(mean(values))}, min {number(min(values))}, "
                f"max {number(max(values))} {unit}".rstrip()
            )
    return out if len(out) <= 3 else []


# ---------- conditions ----------


class ConditionArgs(PatientWindowArgs):
    status: Literal["active", "resolved", "all"] = "all"
    """Clinical status at now: active (not abated by now, not refuted or entered in error), resolved, or all."""
    code: CodeArg | None = None
    """SNOMED code(s), e.g. 44054006 (diabetes)."""
    text: TextArg | None = None
    """Words of the condition name, e.g. 'diabetes' (also finds 'prediabetes', 'neuropathy due to type 2 diabetes')."""


@tool(example={"patient": EXAMPLE_PATIENT, "text": "diabetes"})
async def search_conditions(ctx: ToolContext, args: ConditionArgs) -> ToolResult:
    """Diagnoses (problem list) of a patient: onset time, SNOMED code, and status at now (active, or resolved with the abatement date).

    since/until filter on the onset date. Newest onset first. count and group_by (year, month, name) count
    exactly. A diagnosis named only as a visit's reason has no Condition: then 'none found' names those visits.
    Up to 100 rows per call within ~800 tokens; the cut line gives the next offset.
    """
    patient = await require_patient(ctx, args.patient)
    window, anchors, params = await _patient_query(ctx, args, "Condition", "onset-date")
    everything = _needs_all(args, args.status != "all")
    if everything:
        found, total = await _search_all(ctx, "Condition", params)
    else:
        found, total = await _search(ctx, "Condition", params, args.limit, args.offset)
    lines = [condition_line(r, ctx.now) for r in found]
    if args.status != "all":
        lines = [line for line in lines if _active(line.row) == (args.status == "active")]
    if args.latest:
        lines = _latest_per_code(lines, args.latest)
    if everything:
        total = len(lines)
    active = sum(1 for line in lines if _active(line.row))
    active_text = f" ({active} active at now)" if everything else ""
    header = (
        f"conditions of Patient/{args.patient}{death_note(patient, ctx.now)}, onset {window.describe()}{anchors}"
        f"{_filters(args, 'status', 'code', 'text')}: {total} found{active_text}, {args.order} onset first"
    )
    empty = "none found (onsets after now are hidden); try other words or lookup_codes"
    reasons: list[str] = []
    if (args.text or args.code) and not found:
        empty, reasons = await _encounter_reasons(ctx, args, window)
    return _answer(
        ctx,
        args,
        header,
        lines,
        total,
        paged_here=everything,
        hint="text/code or since/until",
        empty=empty,
        references=reasons,
    )


def _active(row: dict[str, Any]) -> bool:
    """A diagnosis in force at now: not abated, and not refuted or entered in error."""
    return row["status"] == "active" and row.get("verification") not in ("refuted", "entered-in-error")


REASONS_SHOWN = 5


async def _encounter_reasons(ctx: ToolContext, args: ConditionArgs, window: Window) -> tuple[str, list[str]]:
    """The 'none found' of a condition search: the visits (in the same window) whose reason carries the code or
    words asked for, since a diagnosis named only as a visit's reason has no Condition; and their references."""
    params = [("patient", args.patient), *window.params("date"), ("_sort", "-date")]
    codes: set[str] = set()
    if args.code:
        value, codes = token_param(args.code)
        params.append(("reason-code", value))
    if args.text:
        params += text_params("reason-code", args.text)
    found, total = await _search(ctx, "Encounter", params, REASONS_SHOWN)
    if not total:
        return (
            "none found (onsets after now are hidden), and no visit lists it as a reason; try other words or "
            "lookup_codes"
        ), []
    shown = []
    for encounter in found:
        names = [
            f"{coding.get('display', '')} ({code_label(coding.get('system'), coding.get('code'))})"
            for concept in encounter.get("reasonCode", [])
            for coding in concept.get("coding", [])
            if (codes and coding.get("code") in codes)
            or (args.text and text_matches(coding.get("display") or "", args.text))
        ]
        when = minute((encounter.get("period") or {}).get("start"))
        shown.append(f"{when} {'; '.join(names) or 'reason'} Encounter/{encounter['id']}")
    more = f"; and {total - len(shown)} more (search_encounters lists them)" if total > len(shown) else ""
    return (
        f"no Condition; encounter(s) list it as a reason ({total}): {', '.join(shown)}{more}",
        [f"Encounter/{e['id']}" for e in found],
    )


# ---------- medications ----------


class MedicationArgs(PatientWindowArgs):
    status: Literal["current", "past", "all"] = "all"
    """current: orders with status active authored by now (for a deceased patient: active at death); past:
    stopped/completed orders; all."""
    code: CodeArg | None = None
    """RxNorm code(s), e.g. 316049."""
    text: TextArg | None = None
    """Words of the medication name, e.g. 'hydrochlorothiazide'."""
    reason: TextArg | None = None
    """Words of the condition the order documents as its reason, e.g. 'hypertension' (the orders for it)."""


@tool(example={"patient": EXAMPLE_PATIENT, "status": "current"})
async def search_medications(ctx: ToolContext, args: MedicationArgs) -> ToolResult:
    """Medication orders (MedicationRequest) of a patient: time written, drug + RxNorm code, status, prescriber name, reason (the condition it treats), dose.

    status=current lists orders that are active at now. since/until filter on the time written. Newest first.
    count and group_by (year, month, name = distinct medications with first/last order) count exactly.
    Up to 100 rows per call within ~800 tokens; the cut line gives the next offset. reason keeps the orders
    whose documented reason (the condition they treat) matches its words, as text matches names.
    """
    patient = await require_patient(ctx, args.patient)
    window, anchors, params = await _patient_query(ctx, args, "MedicationRequest", "authoredon")
    if args.status == "current":
        params.append(("status", "active"))
    elif args.status == "past":
        params.append(("status:not", "active"))
    everything = _needs_all(args, args.reason)
    if everything:
        found, total = await _search_all(ctx, "MedicationRequest", params)
    else:
        found, total = await _search(ctx, "MedicationRequest", params, args.limit, args.offset)
    named_rows = [] if args.count or args.group_by else found
    prescribers = await names_of(ctx, [(r.get("requester") or {}).get("reference", "") for r in named_rows])
    reason_ids = [
        ref.get("reference", "").rsplit("/", 1)[-1]
        for r in (found if args.reason else named_rows)
        for ref in r.get("reasonReference", [])
        if ref.get("reference", "").startswith("Condition/")
    ]
    conditions = await resources_by_id(ctx, "Condition", reason_ids)
    reasons = {ref: first_coding(c.get("code"))[2] for ref, c in conditions.items()}
    lines = [medication_line(r, ctx.now, prescribers, reasons) for r in found]
    if args.reason:
        lines = [line for line in lines if any(text_matches(name, args.reason) for name in line.row["reason_names"])]
    if args.latest:
        lines = _latest_per_code(lines, args.latest)
    if everything:
        total = len(lines)
    shown = lines[args.offset : args.offset + args.limit] if everything else lines
    extra_refs = sorted({ref for line in shown for ref in [*line.row["reasons"], line.row["requester"] or ""] if ref})
    header = (
        f"medication orders of Patient/{args.patient}{death_note(patient, ctx.now)}, written {window.describe()}"
        f"{anchors}{_filters(args, 'status', 'code', 'text', 'reason')}: {total} found, {args.order} first"
    )
    return _answer(
        ctx,
        args,
        header,
        lines,
        total,
        paged_here=everything,
        hint="text/code, reason, status or since/until",
        references=extra_refs,
        empty="none found (orders written after now are hidden)",
    )


# ---------- immunizations, procedures ----------


class ImmunizationArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """CVX code(s), e.g. 140 (influenza), 113 (Td)."""
    text: TextArg | None = None
    """Words of the vaccine name, e.g. 'influenza'."""


async def _simple(
    ctx: ToolContext,
    args: PatientWindowArgs,
    kind: str,
    date_param: str,
    code_param: str,
    what: str,
    make_line: Any,
    extra: Sequence[tuple[str, str]] | None = None,
    filters: tuple[str, ...] = ("code", "text"),
    hint: str = "code/text or since/until",
    empty: str = "none found (dates after now are hidden)",
) -> ToolResult:
    """A per-type search: page on the server, or every match for count/group_by/latest."""
    patient = await require_patient(ctx, args.patient)
    window, anchors, params = await _patient_query(ctx, args, kind, date_param, code_param=code_param)
    params += extra or []
    everything = _needs_all(args)
    if everything:
        found, total = await _search_all(ctx, kind, params)
    else:
        found, total = await _search(ctx, kind, params, args.limit, args.offset)
    lines = [make_line(r, ctx.now) for r in found]
    if args.latest:
        lines = _latest_per_code(lines, args.latest)
    if everything:
        total = len(lines)
    header = (
        f"{what} of Patient/{args.patient}{death_note(patient, ctx.now)}, {window.describe()}{anchors}"
        f"{_filters(args, *filters)}: {total} found, {args.order} first"
    )
    code = getattr(args, "code", None)
    if not lines and code:
        empty = await codes_on_record(ctx, kind, args.patient, token_param(code)[1], what) or empty
    return _answer(ctx, args, header, lines, total, paged_here=everything, hint=hint, empty=empty)


@tool(example={"patient": EXAMPLE_PATIENT, "code": "140"})
async def search_immunizations(ctx: ToolContext, args: ImmunizationArgs) -> ToolResult:
    """Vaccinations of a patient: time, vaccine + CVX code (newest first; order=oldest for the first dose).

    latest, count and group_by (year, month, name) as in the other searches; up to 100 rows per call within
    ~800 tokens, the cut line gives the next offset.
    """
    return await _simple(ctx, args, "Immunization", "date", "vaccine-code", "immunizations", immunization_line)


class ProcedureArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """SNOMED code(s) of the procedure."""
    text: TextArg | None = None
    """Words of the procedure name, e.g. 'colonoscopy'."""


@tool(example={"patient": EXAMPLE_PATIENT, "text": "colonoscopy"})
async def search_procedures(ctx: ToolContext, args: ProcedureArgs) -> ToolResult:
    """Procedures performed on a patient: time, procedure + SNOMED code, reason (newest first).

    latest, count and group_by (year, month, name) as in the other searches; up to 100 rows per call within
    ~800 tokens, the cut line gives the next offset.
    """
    return await _simple(ctx, args, "Procedure", "date", "code", "procedures", procedure_line)


# ---------- encounters, diagnostic reports, allergies ----------


class EncounterArgs(PatientWindowArgs):
    encounter_class: Literal["AMB", "EMER", "IMP", "HH", "VR", "OBSENC"] | None = None
    """AMB ambulatory, EMER emergency, IMP inpatient, HH home health, VR virtual, OBSENC observation."""
    text: TextArg | None = None
    """Words of the encounter type, e.g. 'check up'."""


@tool(example={"patient": EXAMPLE_PATIENT, "since": "-1y"})
async def search_encounters(ctx: ToolContext, args: EncounterArgs) -> ToolResult:
    """Visits of a patient: start time, class (AMB/EMER/IMP), type + SNOMED code, reason (newest first).

    count and group_by (year, month, name) count exactly (e.g. encounters in 2013: since=2013, until=2013,
    count=true); up to 100 rows per call within ~800 tokens, the cut line gives the next offset.
    """
    extra = [("class", args.encounter_class)] if args.encounter_class else []
    return await _simple(
        ctx,
        args,
        "Encounter",
        "date",
        "type",
        "encounters",
        encounter_line,
        extra=extra,
        filters=("encounter_class", "text"),
        hint="since/until or encounter_class",
        empty="none found (visits after now are hidden)",
    )


class ReportArgs(PatientWindowArgs):
    code: CodeArg | None = None
    """LOINC code(s) of the report/panel, e.g. 51990-0 (basic metabolic panel)."""
    text: TextArg | None = None
    """Words of the report name, e.g. 'lipid panel'."""
    results: bool = False
    """Also list each result's value (costs more tokens)."""


@tool(example={"patient": EXAMPLE_PATIENT, "text": "metabolic panel", "results": True, "limit": 1})
async def search_diagnostic_reports(ctx: ToolContext, args: ReportArgs) -> ToolResult:
    """Diagnostic reports (lab panels) of a patient: time, panel + LOINC code, its results (names, or values with results=true), newest first.

    latest, count and group_by (year, month, name) as in the other searches; up to 100 rows per call within
    ~800 tokens, the cut line gives the next offset.
    """
    patient = await require_patient(ctx, args.patient)
    window, anchors, params = await _patient_query(ctx, args, "DiagnosticReport", "date")
    if _needs_all(args):
        return await _simple(ctx, args, "DiagnosticReport", "date", "code", "diagnostic reports", report_line)
    found, total = await _search(ctx, "DiagnosticReport", params, args.limit, args.offset)
    results: dict[str, Line] | None = None
    if args.results:
        ids = [
            ref["reference"].rsplit("/", 1)[-1]
            for r in found
            for ref in r.get("result", [])
            if ref.get("reference", "").startswith("Observation/")
        ]
        observations = await resources_by_id(ctx, "Observation", ids)
        results = {ref: observation_line(obs, ctx.now) for ref, obs in observations.items()}
    header = (
        f"diagnostic reports of Patient/{args.patient}{death_note(patient, ctx.now)}, {window.describe()}"
        f"{anchors}{_filters(args, 'code', 'text')}: {total} found, {args.order} first"
    )
    return render(
        ctx,
        header,
        [report_line(r, ctx.now, results) for r in found],
        total=total,
        offset=args.offset,
        limit=args.limit,
        hint="code/text or since/until",
        empty="none found (dates after now are hidden)",
    )


class AllergyArgs(PatientWindowArgs):
    status: Literal["active", "inactive", "resolved", "all"] = "all"
    """Clinical status as recorded."""
    text: TextArg | None = None
    """Words of the allergy, e.g. 'peanut'."""


@tool(example={"patient": EXAMPLE_PATIENT, "status": "active"})
async def search_allergies(ctx: ToolContext, args: AllergyArgs) -> ToolResult:
    """Allergies and intolerances of a patient: substance + code, category, type, criticality, clinical status,
    verification status (when not confirmed: unconfirmed, refuted, entered-in-error), reaction, date recorded.

    since/until filter on the date recorded (newest first; order=oldest for the first). latest, count and
    group_by (year, month, name) as in the other searches; up to 100 rows per call within ~800 tokens, the cut
    line gives the next offset.
    """
    extra = [("clinical-status", args.status)] if args.status != "all" else []
    return await _simple(
        ctx,
        args,
        "AllergyIntolerance",
        "date",
        "code",
        "allergies",
        allergy_line,
        extra=extra,
        filters=("status", "text"),
        hint="status, text or since/until",
        empty="no allergies recorded (by now)",
    )
