"""How the workflow oracle reads a chart: through the agent's tools only, with the clinician's reading rules.

``ToolCaller`` is all the oracle needs from the bench (``ToolSession.call`` is one): a tool's name and
arguments in, its result (rows, text, references, error, rows left out) back. The helpers page where a
result is cut (each page is a tool call, as it would be for the agent) and apply the rules of
``record.py`` to what the tools show: a row whose status is entered-in-error is skipped, a second feed's
copy counts once, other units are converted, a laboratory's local code is found by the test's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from medagent.scenarios.clock import parse_instant
from medagent.scenarios.tool_caller import ToolCaller, ToolGap
from medagent.scenarios.workflow.record import INVALID_RESULT, NOT_DIAGNOSED, Reading, canonical

PAGE = 100


class OracleGap(ToolGap):
    """The tools did not show what the oracle needs: a tool gap (or a ground-truth bug) to fix."""


def at(row_date: str | None) -> datetime:
    if not row_date:
        raise OracleGap("a row has no date")
    return parse_instant(row_date)


async def every_row(tools: ToolCaller, tool: str, **arguments: Any) -> list[dict[str, Any]]:
    """Every row of a search, page by page (offset) while the result says rows were left out."""
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        result = await tools.call(tool, offset=offset or None, **arguments)
        if getattr(result, "error", None):
            raise OracleGap(f"{tool}({arguments}) failed: {getattr(result, 'error', None)}")
        rows.extend(result.rows)
        if not getattr(result, "truncated", 0) or not result.rows:
            return rows
        offset += len(result.rows)


def readings_of(rows: Iterable[dict[str, Any]], code: str) -> list[Reading]:
    """Rows of one test as readings: valid only, canonical unit, a second feed's copy counted once, oldest first."""
    groups: dict[tuple[datetime, float], list[str]] = {}
    for row in rows:
        if row.get("status") in INVALID_RESULT or not isinstance(row.get("value"), int | float):
            continue
        value = canonical(code, float(row["value"]), row.get("unit") or "")
        if value is None:
            raise OracleGap(f"{row['ref']}: unit {row.get('unit')!r} of {code} is not one the oracle converts")
        groups.setdefault((at(row["date"]), round(value, 3)), []).append(row["ref"])
    return [Reading(when, value, tuple(sorted(refs))) for (when, value), refs in sorted(groups.items())]


async def lab_readings(
    tools: ToolCaller, patient: str, code: str, words: str | None = None, *, since: str | None = None
) -> tuple[list[Reading], list[dict[str, Any]]]:
    """A test's readings by its LOINC and, with ``words``, by its name (a local code carries only text); and every
    row seen (the entered-in-error ones included, so a note can avoid citing them)."""
    rows = await every_row(tools, "search_observations", patient=patient, code=code, since=since, limit=PAGE)
    by_ref = {row["ref"]: row for row in rows if (row.get("component") or row.get("code")) == code}
    if words:
        for row in await every_row(tools, "search_observations", patient=patient, text=words, since=since, limit=PAGE):
            if row.get("component") or row["ref"] in by_ref:
                continue
            if row.get("system") != "http://loinc.org" or row.get("code") == code:
                by_ref[row["ref"]] = row
    seen = list(by_ref.values())
    return readings_of(seen, code), seen


def invalid_refs(rows: Iterable[dict[str, Any]]) -> list[str]:
    return sorted({row["ref"] for row in rows if row.get("status") in INVALID_RESULT})


async def medication_rows(tools: ToolCaller, patient: str, *, status: str = "all") -> list[dict[str, Any]]:
    return await every_row(tools, "search_medications", patient=patient, status=status, limit=PAGE)


def active_of(rows: Iterable[dict[str, Any]], codes: Iterable[str]) -> list[dict[str, Any]]:
    wanted = set(codes)
    return [row for row in rows if row.get("status") == "active" and row.get("code") in wanted]


async def diagnoses(tools: ToolCaller, patient: str, codes: Iterable[str]) -> list[dict[str, Any]]:
    """Diagnoses of these codes in force at now: active, not refuted or entered in error."""
    rows = await every_row(tools, "search_conditions", patient=patient, code=",".join(sorted(set(codes))), limit=PAGE)
    return [row for row in rows if row.get("status") == "active" and row.get("verification") not in NOT_DIAGNOSED]


async def note_rows(
    tools: ToolCaller, patient: str, *, since: str | None = None, text: str | None = None
) -> list[dict[str, Any]]:
    return await every_row(tools, "search_notes", patient=patient, since=since, text=text, limit=10)


async def open_chart(tools: ToolCaller, patient: str, mrn: str) -> None:
    """How every workflow starts: confirm the patient by the MRN the task gives (two identifiers), then the
    record's overview (the tool's own advice: plan narrow searches from it)."""
    found = await tools.call("find_patients", identifier=mrn)
    if [row.get("ref") for row in found.rows] != [f"Patient/{patient}"]:
        raise OracleGap(f"MRN {mrn} does not name Patient/{patient} alone: {[r.get('ref') for r in found.rows]}")
    await tools.call("record_manifest", patient=patient)


class ChartSummary:
    """What every workflow note summarises, as the tools show it: active problems, drug allergies, current orders."""

    def __init__(
        self, problems: list[dict[str, Any]], allergies: list[dict[str, Any]], medications: list[dict[str, Any]]
    ) -> None:
        self.problems, self.allergies, self.medications = problems, allergies, medications

    def add_to(
        self, note: NoteDraft, *, stopped: Iterable[str] = (), started: Iterable[str] = (), medications_text: str = ""
    ) -> NoteDraft:
        """The problems, allergies and medications sections (the task's own medication text appended)."""
        stopped = set(stopped)
        current = [row for row in self.medications if row["ref"] not in stopped]
        note.add(
            "problems",
            "; ".join(row["display"] for row in self.problems) or "No active problems.",
            entries=[row["ref"] for row in self.problems],
        )
        names = [row["display"] for row in self.allergies]
        note.add("allergies", ("Drug allergies: " + "; ".join(names)) if names else "No known drug allergies.")
        listing = "; ".join(row["display"] for row in current) or "no active orders"
        note.add(
            "medications",
            f"Current medications: {listing}. {medications_text}".strip(),
            entries=[row["ref"] for row in current],
            cite=list(started),
        )
        return note


async def read_chart_summary(tools: ToolCaller, patient: str) -> ChartSummary:
    problems = await every_row(tools, "search_conditions", patient=patient, status="active", limit=PAGE)
    allergies = await every_row(tools, "search_allergies", patient=patient, limit=PAGE)
    drug = [
        row
        for row in allergies
        if "medication" in (row.get("category") or [])
        and row.get("status") == "active"
        and row.get("verification") not in NOT_DIAGNOSED
    ]
    medications = await medication_rows(tools, patient, status="current")
    return ChartSummary(problems, drug, medications)


def answer_json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(", ", ": "))


# ---------- acting on a plan ----------


class Action:
    """One write the oracle would make: a tool and its arguments, under a name the note can cite it by."""

    def __init__(self, key: str, tool: str, **arguments: Any) -> None:
        self.key, self.tool, self.arguments = key, tool, arguments

    def __repr__(self) -> str:
        return f"Action({self.key!r}, {self.tool}, {self.arguments})"


class NoteDraft:
    """The structured note: sections (kind, text, cited records) and, per section, the actions it cites."""

    def __init__(self, note_type: str, title: str) -> None:
        self.note_type, self.title = note_type, title
        self.sections: list[tuple[str, str, list[str], list[str]]] = []

    def add(self, kind: str, text: str, entries: Iterable[str] = (), cite: Iterable[str] = ()) -> NoteDraft:
        """Add a section, or extend the section of that kind (text appended, entries and citations merged)."""
        for i, (other, old_text, old_entries, old_cite) in enumerate(self.sections):
            if other == kind:
                self.sections[i] = (
                    kind,
                    f"{old_text} {text}".strip(),
                    list(dict.fromkeys([*old_entries, *entries])),
                    list(dict.fromkeys([*old_cite, *cite])),
                )
                return self
        self.sections.append((kind, text, list(dict.fromkeys(entries)), list(cite)))
        return self


class Plan:
    """What a workflow's protocol leads to: the writes, the note and the answer; ``alternatives`` are the writes
    of every decision's other branch (the always-act policy makes them too)."""

    def __init__(
        self, actions: list[Action], note: NoteDraft, answer: dict[str, Any], alternatives: list[Action] | None = None
    ) -> None:
        self.actions, self.note, self.answer = actions, note, answer
        self.alternatives = alternatives or []


async def solve_workflow(tools: ToolCaller, sc: Any, solve_plan: Any) -> tuple[str, list[str]]:
    """The workflow oracle: open the chart, read and decide (the category's ``solve_plan``), carry the plan out
    (with every other branch's writes too for the always-act solver); the note's entries are the citations."""
    await open_chart(tools, sc.patient, str(sc.meta["mrn"]))
    plan = await solve_plan(tools, sc)
    actions = [*plan.actions, *plan.alternatives] if getattr(tools, "act_on_every_branch", False) else plan.actions
    answer = await carry_out(tools, sc.patient, plan, actions=actions)
    cited = [ref for _, _, entries, _ in plan.note.sections for ref in entries]
    return answer, list(dict.fromkeys(cited))[:20]


async def carry_out(
    tools: ToolCaller, patient: str, plan: Plan, *, actions: list[Action] | None = None, note: bool = True
) -> str:
    """Make the plan's writes (or the given ones), then the note citing them; returns the JSON answer."""
    wrote: dict[str, list[str]] = {}
    for action in plan.actions if actions is None else actions:
        result = await tools.call(action.tool, **action.arguments)
        wrote.setdefault(action.key, []).extend(getattr(result, "wrote", []))
    if note:
        sections = []
        for kind, text, entries, cite in plan.note.sections:
            cited = [ref for key in cite for ref in wrote.get(key, [])]
            sections.append({"section": kind, "text": text, "entries": list(dict.fromkeys([*entries, *cited]))})
        await tools.call(
            "add_structured_note",
            patient=patient,
            note_type=plan.note.note_type,
            title=plan.note.title,
            sections=sections,
        )
    return answer_json(plan.answer)
