"""What a record holds (types, counts, date span, most frequent codes) and words -> the codes present in the data."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any, Literal

from pydantic import Field

from medagent.tools.compact import Line, clean, code_label, join, render
from medagent.tools.context import ToolContext
from medagent.tools.dates import age_in_years, parse_fhir, up_to
from medagent.tools.registry import ToolArgs, ToolError, ToolResult, tool
from medagent.tools.rows import date_of, first_coding
from medagent.tools.search_args import (
    EXAMPLE_PATIENT,
    STOP_WORDS,
    PatientRef,
    TextArg,
    death_note,
    require_patient,
    text_phrases,
)
from medagent.vocabulary import CLINICAL_DATES

# per type: the code search parameter, the code element, the tool that reads it (the date parameter is the vocabulary's)
CLINICAL_TYPES: dict[str, tuple[str | None, str | None, str]] = {
    "Observation": ("combo-code", "code", "search_observations"),
    "Condition": ("code", "code", "search_conditions"),
    "MedicationRequest": ("code", "medicationCodeableConcept", "search_medications"),
    "Immunization": ("vaccine-code", "vaccineCode", "search_immunizations"),
    "Procedure": ("code", "code", "search_procedures"),
    "Encounter": ("type", "type", "search_encounters"),
    "DiagnosticReport": ("code", "code", "search_diagnostic_reports"),
    "AllergyIntolerance": ("code", "code", "search_allergies"),
    "CarePlan": (None, "category", "fhir_search"),
    "ImagingStudy": (None, None, "fhir_search"),
    "ServiceRequest": ("code", "code", "fhir_search"),
    "DocumentReference": ("type", "type", "fhir_search"),
}


SCAN_CAP = 2000  # resources read per type for a manifest or a code lookup


def _concepts(resource: dict[str, Any], element: str | None) -> list[dict[str, Any]]:
    if element is None:
        return []
    value = resource.get(element)
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


async def _scan(
    ctx: ToolContext, kind: str, params: list[tuple[str, str]], elements: list[str]
) -> tuple[list[dict[str, Any]], int]:
    """Up to SCAN_CAP matches with only the elements we need, and the server's total."""
    bundle = await ctx.client.search_page(kind, [*params, ("_elements", ",".join(elements)), ("_count", "1000")])
    total = int(bundle.get("total", 0))
    found = [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    if total > len(found) and len(found) < SCAN_CAP:
        async for resource in ctx.client.search_json(
            kind,
            [*params, ("_elements", ",".join(elements)), ("_count", "1000"), ("_offset", str(len(found)))],
            limit=SCAN_CAP - len(found),
        ):
            found.append(resource)
    return found, total


class ManifestArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>'."""
    top: int = Field(5, ge=1, le=15)
    """Most frequent codes to show per resource type."""


@tool(example={"patient": EXAMPLE_PATIENT})
async def record_manifest(ctx: ToolContext, args: ManifestArgs) -> ToolResult:
    """Overview of a patient's record up to now: per resource type the count, date span and most frequent codes. Call it first to plan narrow searches."""
    patient = await require_patient(ctx, args.patient)
    cutoff = up_to(ctx.now)

    async def one(kind: str) -> tuple[str, list[dict[str, Any]], int]:
        _, element, _ = CLINICAL_TYPES[kind]
        date_param = CLINICAL_DATES[kind].search_param  # a test checks each type has one
        assert date_param
        elements = [
            e
            for e in (
                element,
                "effectiveDateTime",
                "effectivePeriod",
                "onsetDateTime",
                "authoredOn",
                "occurrenceDateTime",
                "performedDateTime",
                "performedPeriod",
                "period",
                "recordedDate",
                "issued",
                "started",
                "date",
                "clinicalStatus",
                "abatementDateTime",
                "status",
            )
            if e
        ]
        found, total = await _scan(ctx, kind, [("patient", args.patient), (date_param, cutoff)], elements)
        return kind, found, total

    results = await asyncio.gather(*(one(kind) for kind in CLINICAL_TYPES))
    born = patient.get("birthDate", "")
    age = ""
    if born and len(born) >= 10:
        from datetime import date

        age = f", age {age_in_years(date.fromisoformat(born[:10]), ctx.now.date())}"
    header = (
        f"record of Patient/{args.patient} ({patient.get('gender', '?')}, born {born or '?'}{age}) "
        f"up to now {ctx.now.date().isoformat()}{death_note(patient, ctx.now)}:"
    )
    summaries = []
    for kind, found, total in results:
        if not total:
            continue
        element = CLINICAL_TYPES[kind][1]
        dates = sorted(d[:10] for d in (date_of(r) for r in found) if d)
        counts: Counter[tuple[str, str]] = Counter()
        names: dict[tuple[str, str], str] = {}
        for resource in found:
            for concept in _concepts(resource, element)[:1]:
                system, code, display = first_coding(concept)
                counts[(system, code)] += 1
                names.setdefault((system, code), display)
        extra = ""
        if kind == "Condition":
            active = sum(
                1
                for r in found
                if not r.get("abatementDateTime") or (parse_fhir(r["abatementDateTime"]) or ctx.now) > ctx.now
            )
            extra = f"{active} active at now"
        elif kind == "MedicationRequest":
            extra = f"{sum(1 for r in found if r.get('status') == 'active')} active orders"
        summaries.append((kind, total, dates, counts, names, extra))

    def lines_with(top: int) -> list[Line]:
        lines = []
        for kind, total, dates, counts, names, extra in summaries:
            best = counts.most_common(top)
            shown = [f"{clean(names[key], 50)} ({code_label(*key)}) x{n}" for key, n in best]
            span = f"{dates[0]}..{dates[-1]}" if dates else ""
            distinct = f"{len(counts)} distinct codes" if counts else ""
            row = {
                "type": kind,
                "count": total,
                "first": dates[0] if dates else None,
                "last": dates[-1] if dates else None,
                "distinct_codes": len(counts),
                "top": [{"system": s, "code": c, "display": names[(s, c)], "count": n} for (s, c), n in best],
                "tool": CLINICAL_TYPES[kind][2],
            }
            lines.append(
                Line(join(f"{kind} {total}", span, extra, distinct, ("top: " + "; ".join(shown)) if shown else ""), row)
            )
        return lines

    # every type with data is listed: fewer top codes per type until all fit the call's budget
    lines = lines_with(args.top)
    for top in range(args.top - 1, -1, -1):
        if len(header) + sum(len(line.text) + 1 for line in lines) + 200 <= ctx.char_budget:
            break
        lines = lines_with(top)
    footer = ["tools: " + ", ".join(sorted({line.row["tool"] for line in lines}))] if lines else []
    if lines and len(lines[0].row["top"]) < args.top:
        footer.insert(
            0,
            f"(top codes cut to {len(lines[0].row['top'])} per type to list every type; "
            "lookup_codes or a search by type shows the rest)",
        )
    return render(
        ctx,
        header,
        lines,
        hint="resource type (use fhir_search)",
        footer=footer,
        pageable=False,
        empty="no clinical records dated up to now",
        references=[f"Patient/{args.patient}"],
    )


# ---------- code lookup ----------

LookupType = Literal[
    "Observation",
    "Condition",
    "MedicationRequest",
    "Immunization",
    "Procedure",
    "Encounter",
    "DiagnosticReport",
    "AllergyIntolerance",
]
_CODE_LIKE = re.compile(r"^[0-9][0-9A-Za-z.\-]*$")


class LookupArgs(ToolArgs):
    text: TextArg
    """Words to look up, e.g. 'hemoglobin a1c', 'blood pressure', 'diabetes', 'metformin', or a code such as 4548-4."""
    resource_type: LookupType | None = None
    """Only codes used by this resource type (default: all clinical types)."""
    patient: PatientRef | None = None
    """Only codes present in this patient's record (default: the whole data set)."""
    limit: int = Field(10, ge=1, le=30)
    """Most codes to return."""


@tool(example={"text": "hemoglobin a1c", "resource_type": "Observation"})
async def lookup_codes(ctx: ToolContext, args: LookupArgs) -> ToolResult:
    """Map words to the codes actually present in the data (e.g. 'hemoglobin a1c' -> LOINC 4548-4), with how often each is used and by which resource type."""
    if args.patient:
        await require_patient(ctx, args.patient)
    kinds = [args.resource_type] if args.resource_type else list(LookupType.__args__)  # type: ignore[attr-defined]
    as_code = _CODE_LIKE.match(args.text.strip()) is not None
    phrases = text_phrases(args.text)
    merged = await _lookup(ctx, args, kinds, phrases, as_code)
    if not merged and not as_code and len(args.text.split()) > 1:  # words not side by side: any word, best first
        words = [w for w in args.text.lower().split() if len(w) >= 3 and w not in _STOPWORDS]
        merged = await _lookup(ctx, args, kinds, words, as_code) if words else []
    lines = []
    for (system, code, display), kind, n in merged[: args.limit]:
        row = {
            "system": system,
            "code": code,
            "display": display,
            "resource_type": kind,
            "count": n,
            "tool": CLINICAL_TYPES[kind][2],
        }
        lines.append(
            Line(
                join(
                    f"{code_label(system, code)}", display, f"{kind} x{n}", f'{CLINICAL_TYPES[kind][2]}(code="{code}")'
                ),
                row,
            )
        )
    scope = f"Patient/{args.patient}" if args.patient else "all patients"
    header = f"codes matching {args.text!r} in {scope} (up to now), best match first: {len(merged)}"
    return render(
        ctx,
        header,
        lines,
        total=len(merged),
        hint="more specific words or resource_type",
        empty="no code in the data matches; try fewer or other words (e.g. 'a1c', 'glucose', 'diabetes')",
    )


_STOPWORDS = STOP_WORDS | {"level", "test", "value", "result", "blood", "serum"}  # words naming no test


async def _lookup(
    ctx: ToolContext, args: LookupArgs, kinds: list[str], phrases: list[str], as_code: bool
) -> list[tuple[tuple[str, str, str], str, int]]:
    """(system, code, display), resource type, count for codings matching any phrase, best first."""

    async def one(kind: str) -> list[tuple[tuple[str, str, str], str, int]]:
        code_param, element, _ = CLINICAL_TYPES[kind]
        date_param = CLINICAL_DATES[kind].search_param  # a test checks each type has one
        assert code_param and element and date_param
        params = [(date_param, up_to(ctx.now))]
        if args.patient:
            params.append(("patient", args.patient))
        if as_code:
            params.append((code_param, args.text.strip()))
        else:
            params.append((f"{code_param}:text", ",".join(p.replace(",", "\\,") for p in phrases)))
        elements = [element, "component"] if kind == "Observation" else [element]
        found, _ = await _scan(ctx, kind, params, elements)
        counts: Counter[tuple[str, str, str]] = Counter()
        for resource in found:
            concepts = _concepts(resource, element)
            if kind == "Observation":
                concepts += [c.get("code") for c in resource.get("component", []) if c.get("code")]
            for concept in concepts:
                for coding in concept.get("coding", []):
                    display = clean(coding.get("display") or concept.get("text"))
                    hit = (
                        coding.get("code") == args.text.strip()
                        if as_code
                        else any(p in display.lower() for p in phrases)
                    )
                    if hit:
                        counts[(coding.get("system", ""), coding.get("code", ""), display)] += 1
        return [(key, kind, n) for key, n in counts.items()]

    try:
        results = await asyncio.gather(*(one(kind) for kind in kinds))
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    merged = [item for part in results for item in part]
    merged.sort(key=lambda item: (-_score(item[0][2], phrases, as_code), -item[2], item[0][1]))
    return merged


def _score(display: str, phrases: list[str], as_code: bool) -> float:
    """Exact and shorter names first: 'Hemoglobin A1c/Hemoglobin.total in Blood' before longer variants."""
    if as_code:
        return 1.0
    text = display.lower()
    best = 0.0
    for phrase in phrases:
        if text == phrase:
            return 10.0
        if phrase in text:
            best = max(best, 1.0 + len(phrase) / max(len(text), 1) / 2 + (0.25 if text.startswith(phrase) else 0))
    return best + sum(phrase in text for phrase in phrases)  # more of the words first
