"""Patient tools: find patients by name, birth date or identifier (MRN); demographics and age at now."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from medagent.tools.compact import Line, clean, guard_record_text, join, render
from medagent.tools.context import ToolContext
from medagent.tools.dates import age_in_years, check_date_arg, parse_fhir
from medagent.tools.registry import ToolArgs, ToolResult, tool
from medagent.tools.rows import mrn_of, person_name, reference
from medagent.tools.search_args import (
    DEFAULT_LIMIT,
    EXAMPLE_PATIENT,
    Limit,
    PatientRef,
    require_patient,
)


def _absolute_date(value: str) -> str:
    text = check_date_arg(value)
    if not text[:4].isdigit():
        raise ValueError(f"birth_date must be a calendar date such as 1949-11-29 (or 1949, 1949-11), got {value!r}")
    return text[:10]


FULL_MRN_LENGTH = 36  # Synthea MRNs are UUIDs; a shorter hex value is a fragment of one


class FindPatientsArgs(ToolArgs):
    name: str | None = Field(None, min_length=2, max_length=100)
    """Given and/or family name, e.g. 'Adalberto Hartmann' (each word matches the start of a name part)."""
    birth_date: Annotated[str, AfterValidator(_absolute_date)] | None = None
    """Birth date YYYY-MM-DD (or YYYY, YYYY-MM)."""
    identifier: str | None = Field(None, min_length=1, max_length=100)
    """Medical record number (MRN) or another identifier value."""
    gender: Literal["male", "female", "other", "unknown"] | None = None
    """Administrative gender."""
    limit: Limit = DEFAULT_LIMIT

    @model_validator(mode="after")
    def _one_criterion(self) -> FindPatientsArgs:
        if not (self.name or self.birth_date or self.identifier):
            raise ValueError("give at least one of name, birth_date or identifier")
        return self


def _age_text(patient: dict[str, Any], now: datetime) -> tuple[int | None, str]:
    born = patient.get("birthDate")
    if not born:
        return None, "birth date unknown"
    try:
        birth = date.fromisoformat(born[:10]) if len(born) >= 10 else date(int(born[:4]), 1, 1)
    except ValueError:  # a server that does not validate: the row says so rather than failing the call
        return None, "birth date unreadable"
    death = parse_fhir(patient.get("deceasedDateTime"))
    today = now.date()
    if death is not None and death <= now:
        return None, f"born {born}, died {death.date().isoformat()} aged {age_in_years(birth, death.date())}"
    if birth > today:
        return None, f"born {born} (after now)"
    return age_in_years(birth, today), f"born {born}, age {age_in_years(birth, today)}"


def patient_row(patient: dict[str, Any], now: datetime) -> dict[str, Any]:
    age, _ = _age_text(patient, now)
    death = parse_fhir(patient.get("deceasedDateTime"))
    official = next(
        (n for n in patient.get("name", []) if n.get("use") == "official"), (patient.get("name") or [{}])[0]
    )
    address = (patient.get("address") or [{}])[0]
    return {
        "ref": reference(patient),
        "name": person_name(patient),
        "given": " ".join(official.get("given", [])),
        "family": official.get("family"),
        "birthDate": patient.get("birthDate"),
        "gender": patient.get("gender"),
        "age": age,
        "mrn": mrn_of(patient),
        "deceased": patient.get("deceasedDateTime") if death and death <= now else None,
        "city": address.get("city"),
        "state": address.get("state"),
    }


def patient_line(patient: dict[str, Any], now: datetime) -> Line:
    row = patient_row(patient, now)
    _, age_text = _age_text(patient, now)
    return Line(join(row["name"], row["gender"], age_text, f"MRN {row['mrn']}" if row["mrn"] else "", row["ref"]), row)


@tool(example={"name": "Jane Doe", "birth_date": "1960-01-31"})
async def find_patients(ctx: ToolContext, args: FindPatientsArgs) -> ToolResult:
    """Find patients by name, birth date and/or identifier (MRN). Returns name, gender, birth date, age at now, MRN and the Patient id."""
    words = (args.name or "").replace(",", " ").split()
    params: list[tuple[str, str]] = []
    if args.birth_date:
        params.append(("birthdate", args.birth_date))
    if args.identifier:
        params.append(("identifier", args.identifier))
    if args.gender:
        params.append(("gender", args.gender))
    params += [("_sort", "family"), ("_count", str(args.limit))]
    bundle = await ctx.client.search_page("Patient", [*(("name", w) for w in words), *params])
    if not bundle.get("total") and len(words) > 1:  # a word inside a name part ("Miguel Ángel")
        bundle = await ctx.client.search_page("Patient", [*(("name:contains", w) for w in words), *params])
    found = [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    visible = [p for p in found if not p.get("birthDate") or p["birthDate"][:10] <= ctx.now.date().isoformat()]
    total = int(bundle.get("total", len(found))) - (len(found) - len(visible))
    for patient in visible:
        ctx.cache.setdefault("patients", {})[patient["id"]] = patient
    criteria = ", ".join(f"{k}={v!r}" for k, v in args.model_dump(exclude_none=True, exclude={"limit"}).items())
    return render(
        ctx,
        f"patients matching {criteria}: {total}",
        [patient_line(p, ctx.now) for p in visible],
        total=total,
        hint="birth_date or a fuller name",
        empty=_no_match_hint(args),
        pageable=False,
    )


def _no_match_hint(args: FindPatientsArgs) -> str:
    """What to do when nobody matches; never loosens a match the question made exact (an MRN, name + birth date)."""
    if args.identifier:
        value = args.identifier.strip()
        partial = len(value) < FULL_MRN_LENGTH and re.fullmatch(r"[0-9a-fA-F-]+", value) is not None
        note = (
            f"; {value!r} looks like a partial MRN ({len(value)} characters; MRNs here have {FULL_MRN_LENGTH}): "
            "identifiers match whole values only"
            if partial
            else ""
        )
        return (
            f"no patient has identifier {value!r}{note}. Report that no patient matches this MRN; do not "
            "substitute a patient found by name or birth date"
        )
    if args.name and args.birth_date:
        return (
            "no patient matches both this name and this birth date. Report that no patient matches; do not "
            "drop the birth date or loosen the name to pick someone else"
        )
    if args.birth_date:
        return "no patient was born on this date"
    return "no patient matches; check the spelling or try only the family name"


class PatientArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>' (find_patients gives it)."""


@tool(example={"patient": f"Patient/{EXAMPLE_PATIENT}"})
async def get_patient(ctx: ToolContext, args: PatientArgs) -> ToolResult:
    """Demographics of one patient: name, gender, birth date, age in completed years at now, death, MRN, address, language."""
    patient = await require_patient(ctx, args.patient)
    row = patient_row(patient, ctx.now)
    _, age_text = _age_text(patient, ctx.now)
    lines = [
        join(
            f"{row['ref']}: {guard_record_text(row['name'])}",
            row["gender"],
            f"{age_text} (now {ctx.now.date().isoformat()})",
            sep=", ",
        )
    ]
    identifiers = []
    for identifier in patient.get("identifier", []):
        kind = (identifier.get("type") or {}).get("text") or ""
        code = next((c.get("code") for c in (identifier.get("type") or {}).get("coding", [])), None)
        if code in ("MR", "SS", "DL", "PPN"):
            identifiers.append(f"{'MRN' if code == 'MR' else kind} {identifier.get('value')}")
    if identifiers:
        lines.append("identifiers: " + join(*identifiers, sep="; "))
    address = (patient.get("address") or [{}])[0]
    place = ", ".join(
        filter(None, [*address.get("line", []), address.get("city"), address.get("state"), address.get("postalCode")])
    )
    extra = []
    if place:
        extra.append(f"address {clean(place, 80)}")
    languages = [
        c.get("language", {}).get("text") or (c.get("language", {}).get("coding") or [{}])[0].get("display")
        for c in patient.get("communication", [])
    ]
    if any(languages):
        extra.append("language " + ", ".join(filter(None, languages)))
    marital = (patient.get("maritalStatus") or {}).get("text") or (
        (patient.get("maritalStatus") or {}).get("coding") or [{}]
    )[0].get("code")
    if marital:
        extra.append(f"marital status {marital}")
    if extra:
        lines.append(join(*extra, sep="; "))
    return ToolResult(text="\n".join(lines), rows=[row], references=[row["ref"]])
