"""Notes on the real server: a structured note (Composition) as written, its entries checked, and notes read whole."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tools_expect import PATIENT, of_type

from medagent.fhir.resources import parse_resource
from medagent.scenarios.checkpoints import note_sections
from medagent.tools import APPROVE_WRITES, ToolContext

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)
OTHER = "132f48ba-1d72-4e0c-a220-91786d7501aa"


@pytest.fixture
def writer(clean_fhir: str, make_ctx: Callable[..., ToolContext]) -> ToolContext:
    return make_ctx(NOW, approval=APPROVE_WRITES, actor="medagent/test-model", run_id="run-notes")


def _observation_of(patient: str) -> str:
    obs = [o for o in of_type(patient, "Observation") if o["effectiveDateTime"][:10] < "2019-05-01"]
    return f"Observation/{obs[-1]['id']}"


def _note(clean_fhir: str) -> dict[str, Any]:
    [change] = httpx.get(f"{clean_fhir}/$diff", timeout=30).json()["changes"]
    return change["after"]


async def test_a_structured_note_is_a_valid_composition_with_coded_sections(
    run: Any, writer: ToolContext, clean_fhir: str
) -> None:
    obs = _observation_of(PATIENT)
    result = await run(
        "add_structured_note",
        NOW,
        ctx=writer,
        patient=PATIENT,
        title="Pre-visit planning",
        sections=[
            {"section": "results", "text": "HbA1c 7.4 % on 2019-03-01\nLDL 98 mg/dL", "entries": [obs]},
            {"section": "plan", "text": "Ordered HbA1c <today> & UACR."},
        ],
    )
    assert result.error is None and result.text.startswith("wrote Composition/")
    note = _note(clean_fhir)
    parse_resource(note)  # valid R4B, narrative included
    assert note["type"]["coding"][0]["code"] == "11506-3" and note["status"] == "final"
    assert note["subject"]["reference"] == f"Patient/{PATIENT}" and note["date"].startswith("2019-05-02T10:15")
    assert isinstance(note["identifier"], dict), "Composition.identifier is a single Identifier in R4"
    sections = note_sections(note)
    assert sections["30954-2"].entries == [obs] and "7.4 % on 2019-03-01 LDL 98" in sections["30954-2"].text
    assert "<today> & UACR" in sections["18776-5"].text, "the narrative is escaped xhtml, read back as the text"
    again = await run(
        "add_structured_note",
        NOW,
        ctx=writer,
        patient=PATIENT,
        title="Pre-visit planning",
        sections=[
            {"section": "results", "text": "HbA1c 7.4 % on 2019-03-01\nLDL 98 mg/dL", "entries": [obs]},
            {"section": "plan", "text": "Ordered HbA1c <today> & UACR."},
        ],
    )
    assert "already written by an identical earlier call" in again.text, "the conditional create finds it by identifier"


async def test_a_note_may_not_cite_another_patients_record_or_a_future_one(
    run: Any, writer: ToolContext, clean_fhir: str
) -> None:
    theirs = _observation_of(OTHER)
    result = await run(
        "add_structured_note",
        NOW,
        ctx=writer,
        patient=PATIENT,
        title="x",
        sections=[{"section": "results", "text": "x", "entries": [theirs]}],
    )
    assert result.error and f"belongs to Patient/{OTHER}" in result.error
    later = [o for o in of_type(PATIENT, "Observation") if o["effectiveDateTime"][:10] > "2019-05-03"][0]
    result = await run(
        "add_structured_note",
        NOW,
        ctx=writer,
        patient=PATIENT,
        title="x",
        sections=[{"section": "results", "text": "x", "entries": [f"Observation/{later['id']}"]}],
    )
    assert result.error and "after now" in result.error
    result = await run(
        "add_structured_note",
        NOW,
        ctx=writer,
        patient=PATIENT,
        title="x",
        sections=[{"section": "plan", "text": "a"}, {"section": "plan", "text": "b"}],
    )
    assert result.error and "plan given twice" in result.error
    assert httpx.get(f"{clean_fhir}/$diff", timeout=30).json()["changes"] == [], "nothing was written"


async def test_search_notes_reads_a_long_note_whole_and_hides_the_future(run: Any, clean_fhir: str) -> None:
    text = (
        "Statin review. "
        + "The patient reports aching thighs and calves since starting the tablet. " * 4
        + "Simvastatin stopped on 2018-03-02 because of myalgia; do not rechallenge."
    )
    assert len(text) > 300
    note = {
        "resourceType": "DocumentReference",
        "id": "note-long-1",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "date": "2018-03-02T09:00:00+00:00",
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}],
    }
    future = {**note, "id": "note-future-1", "date": "2020-01-01T09:00:00+00:00"}
    for resource in (note, future):
        httpx.put(f"{clean_fhir}/DocumentReference/{resource['id']}", json=resource, timeout=30).raise_for_status()
    result = await run("search_notes", NOW, patient=PATIENT)
    assert "because of myalgia; do not rechallenge" in result.text, "the whole note, not its first 200 characters"
    assert "DocumentReference/note-long-1" in result.references and "note-future-1" not in result.text
    found = await run("search_notes", NOW, patient=PATIENT, text="myalgia")
    assert [r["ref"] for r in found.rows] == ["DocumentReference/note-long-1"]
    assert (await run("search_notes", NOW, patient=PATIENT, text="angioedema")).rows == []
