"""Clinical notes: read a patient's notes whole (search_notes), and write a structured note (add_structured_note).

A structured note is a FHIR Composition, the resource an EHR accepts for a document with named sections: a
LOINC document type, and sections each with a LOINC section code, a narrative and entry references to the
records it rests on (the A1c Observation, the order written). Section codes are the C-CDA / US Core section
codes, so what the note says is checkable by machine (values and dates in a section's text, references in
its entries) without reading free text with a model.
"""

from __future__ import annotations

import base64
import binascii
import html
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medagent.fhir.errors import FhirNotFound
from medagent.fhir.ids import InvalidFhirId, patient_of, split_reference
from medagent.tools.compact import Line, clean, join, render
from medagent.tools.context import ToolContext
from medagent.tools.dates import DateArg, Window, WindowError, fhir_instant, parse_fhir
from medagent.tools.registry import ToolArgs, ToolError, ToolResult, tool
from medagent.tools.rows import date_of, first_coding, minute, reference
from medagent.tools.search_args import EXAMPLE_PATIENT, PatientRef, TextArg, death_note, require_patient, text_matches
from medagent.tools.write_clinical import WriteArgs, _result, create, writable_patient
from medagent.vocabulary import LOINC

# ---------- reading notes ----------

NOTE_TEXT_LIMIT = 1500  # characters of one note shown (a longer one says so)
NOTE_TYPES_READ = ("DocumentReference", "Composition")


def _document_text(resource: dict[str, Any]) -> str:
    """A DocumentReference's text attachment, decoded (empty when it has none)."""
    for content in resource.get("content", []):
        attachment = content.get("attachment") or {}
        if attachment.get("data") and (attachment.get("contentType") or "").startswith("text/"):
            try:
                return base64.b64decode(attachment["data"]).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return ""
    return str(resource.get("description") or "")


def _composition_text(resource: dict[str, Any]) -> str:
    """'Section: text [entries]' per section of a Composition."""
    parts = []
    for section in resource.get("section") or []:
        div = (section.get("text") or {}).get("div") or ""
        text = " ".join(html.unescape(_strip_tags(div)).split())
        entries = [e.get("reference") for e in section.get("entry") or [] if e.get("reference")]
        refs = f" [{', '.join(entries)}]" if entries else ""
        parts.append(f"{section.get('title') or first_coding(section.get('code'))[2]}: {text}{refs}")
    return " || ".join(parts)


def _strip_tags(div: str) -> str:
    out, inside = [], False
    for ch in div:
        if ch == "<":
            inside = True
            out.append(" ")
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)


def note_line(resource: dict[str, Any]) -> Line:
    """One line per note: time, type, title, author, status when not current/final, and the whole text."""
    kind = resource.get("resourceType")
    _, code, display = first_coding(resource.get("type"))
    when = date_of(resource)
    text = _composition_text(resource) if kind == "Composition" else _document_text(resource)
    title = resource.get("title") or resource.get("description") or ""
    authors = ", ".join(clean(a.get("display") or a.get("reference"), 60) for a in resource.get("author") or [])
    status = resource.get("status") or ""
    shown_status = "" if status in ("current", "final") else status
    body = clean(text, NOTE_TEXT_LIMIT)
    row = {
        "ref": reference(resource),
        "date": when,
        "type": display,
        "code": code,
        "title": title,
        "author": authors,
        "status": status,
        "text": text,
    }
    return Line(
        join(
            minute(when),
            f"{display} (LOINC {code})" if code else display,
            clean(title, 80),
            f"by {authors}" if authors else "",
            shown_status,
            body,
            row["ref"],
        ),
        row,
    )


class NoteSearchArgs(ToolArgs):
    patient: PatientRef
    """Patient id or 'Patient/<id>'."""
    since: DateArg | None = None
    """Earliest note date (inclusive), e.g. -1y or 2019-01-01."""
    until: DateArg | None = None
    """Latest note date (inclusive; default and maximum: now)."""
    text: TextArg | None = None
    """Only notes whose text or title contains these words, e.g. 'statin' or 'eye exam'."""
    limit: int = Field(10, ge=1, le=50)
    """Most notes to list (default 10)."""
    offset: int = Field(0, ge=0)
    """Notes to skip (the cut line gives the next offset)."""


@tool(example={"patient": EXAMPLE_PATIENT, "since": "-1y"})
async def search_notes(ctx: ToolContext, args: NoteSearchArgs) -> ToolResult:
    """Clinical notes of a patient (progress notes, outside reports, discharge summaries, structured notes), newest first, with their whole text.

    Up to 1500 characters of each note; text= keeps notes containing those words. Within ~800 tokens per call;
    the cut line gives the next offset.
    """
    patient = await require_patient(ctx, args.patient)
    try:
        window = Window(ctx.now, args.since, args.until)
    except WindowError as exc:
        raise ToolError(str(exc)) from None
    found: list[dict[str, Any]] = []
    for kind in NOTE_TYPES_READ:
        async for resource in ctx.client.search_json(
            kind, [("patient", args.patient), *window.params("date"), ("_count", "200")], limit=1000
        ):
            found.append(resource)
    found = [r for r in found if window.contains(parse_fhir(date_of(r)))]
    lines = [note_line(r) for r in found]
    if args.text:
        lines = [line for line in lines if text_matches(f"{line.row['title']} {line.row['text']}", args.text)]
    lines.sort(key=lambda line: (line.row["date"] or "", line.row["ref"]), reverse=True)
    text_filter = f", text={args.text!r}" if args.text else ""
    header = (
        f"notes of Patient/{args.patient}{death_note(patient, ctx.now)}, {window.describe()}{text_filter}: "
        f"{len(lines)} found, newest first"
    )
    page = lines[args.offset : args.offset + args.limit]
    return render(
        ctx,
        header,
        page,
        total=len(lines),
        offset=args.offset,
        limit=args.limit,
        hint="text or since/until",
        empty="no notes (notes dated after now are hidden)",
    )


# ---------- writing a structured note ----------

NOTE_DOCUMENT_TYPES = {
    "progress_note": ("11506-3", "Progress note"),
    "consult_note": ("11488-4", "Consult note"),
    "referral_note": ("57133-1", "Referral note"),
    "discharge_summary": ("18842-5", "Discharge summary"),
    "history_and_physical": ("34117-2", "History and physical note"),
}
"""Document types (LOINC) a structured note may have."""

NOTE_SECTIONS = {
    "reason_for_referral": ("42349-1", "Reason for referral"),
    "history_of_present_illness": ("10164-2", "History of present illness"),
    "problems": ("11450-4", "Problem list"),
    "medications": ("10160-0", "Medications"),
    "allergies": ("48765-2", "Allergies and adverse reactions"),
    "results": ("30954-2", "Results"),
    "vital_signs": ("8716-3", "Vital signs"),
    "immunizations": ("11369-6", "Immunizations"),
    "procedures": ("47519-4", "Procedures"),
    "hospital_course": ("8648-8", "Hospital course"),
    "assessment": ("51848-0", "Assessment"),
    "plan": ("18776-5", "Plan of care"),
}
"""Section kinds (LOINC section codes of C-CDA / US Core) a structured note may have."""

SectionKind = Literal[
    "reason_for_referral",
    "history_of_present_illness",
    "problems",
    "medications",
    "allergies",
    "results",
    "vital_signs",
    "immunizations",
    "procedures",
    "hospital_course",
    "assessment",
    "plan",
]


class NoteSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    section: SectionKind
    """Which section: reason_for_referral, history_of_present_illness, problems, medications, allergies, results,
    vital_signs, immunizations, procedures, hospital_course, assessment or plan."""
    text: str = Field(min_length=1, max_length=2000)
    """What the section says (values with units and dates, e.g. 'HbA1c 7.4 % on 2019-03-01')."""
    entries: list[str] = Field(default_factory=list, max_length=40)
    """References of the records the section rests on, e.g. ['Observation/<id>', 'MedicationRequest/<id>']."""

    @field_validator("entries")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        for ref in value:
            try:
                split_reference(ref)
            except InvalidFhirId:
                raise ValueError(f"entries must be references 'Type/id' from rows, not {ref[:80]!r}") from None
        return value


class StructuredNoteArgs(WriteArgs):
    note_type: Literal[
        "progress_note", "consult_note", "referral_note", "discharge_summary", "history_and_physical"
    ] = "progress_note"
    """Kind of document (LOINC document type)."""
    title: str = Field(min_length=1, max_length=120)
    """The note's title, e.g. 'Diabetes pre-visit planning'."""
    sections: list[NoteSection] = Field(min_length=1, max_length=12)
    """The note's sections, each once: section kind, text, and the references it rests on."""

    @field_validator("sections")
    @classmethod
    def _once_each(cls, value: list[NoteSection]) -> list[NoteSection]:
        kinds = [s.section for s in value]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            raise ValueError(f"each section kind once; {', '.join(twice)} given twice (put it all in one)")
        return value


def _narrative(text: str) -> dict[str, str]:
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{paragraphs}</div>'}


async def _check_entries(ctx: ToolContext, patient: str, entries: list[str]) -> None:
    """Every entry is a record of this patient known by now (a note cites the chart it is written in)."""
    for ref in dict.fromkeys(entries):
        kind, _, rid = ref.partition("/")
        try:
            resource = await ctx.client.read_json(kind, rid)
        except FhirNotFound:
            raise ToolError(f"entry {ref} does not exist; use references from rows", example=False) from None
        owner = patient_of(resource)
        if owner != patient:
            raise ToolError(
                f"entry {ref} belongs to {f'Patient/{owner}' if owner else 'no patient'}, not Patient/{patient}",
                example=False,
            )
        moment = parse_fhir(date_of(resource))
        if moment is not None and moment > ctx.now:
            raise ToolError(f"entry {ref} is dated after now: it is not known yet", example=False)


@tool(
    writes=True,
    example={
        "patient": EXAMPLE_PATIENT,
        "title": "Pre-visit planning",
        "sections": [
            {
                "section": "results",
                "text": "HbA1c 7.4 % on 2019-03-01",
                "entries": ["Observation/example-observation-0"],
            },
            {"section": "plan", "text": "Ordered HbA1c."},
        ],
    },
)
async def add_structured_note(ctx: ToolContext, args: StructuredNoteArgs) -> ToolResult:
    """Write a structured clinical note: a Composition (final, dated now) with a LOINC document type and named sections, each with text and the references it rests on."""
    await writable_patient(ctx, args.patient)
    for section in args.sections:
        await _check_entries(ctx, args.patient, section.entries)
    code, name = NOTE_DOCUMENT_TYPES[args.note_type]
    now = fhir_instant(ctx.now)
    sections = []
    for section in args.sections:
        section_code, section_name = NOTE_SECTIONS[section.section]
        part: dict[str, Any] = {
            "title": section_name,
            "code": {"coding": [{"system": LOINC, "code": section_code, "display": section_name}]},
            "text": _narrative(section.text),
        }
        if section.entries:
            part["entry"] = [{"reference": ref} for ref in dict.fromkeys(section.entries)]
        sections.append(part)
    resource: dict[str, Any] = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "subject": {"reference": f"Patient/{args.patient}"},
        "date": now,
        "author": [{"display": ctx.actor}],
        "title": args.title,
        "section": sections,
    }
    body, created = await create(ctx, "add_structured_note", args, resource)
    return _result("wrote", body, created, note_line(body).text)
