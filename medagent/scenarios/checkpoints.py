"""Checkpoint grading of workflow tasks: each checkpoint groups answer fields, writes, forbidden writes and note facts.

A workflow task passes only when every checkpoint passes; the checkpoint rate (passed / all) is the partial
credit reported beside pass@1. Every graded thing belongs to exactly one checkpoint (``coverage_problems``
says what a scenario leaves ungraded), so a task cannot pass with a check nobody looks at. Writes are
matched by content as everywhere (``writes.match_writes``); a write no spec took is charged to the checkpoint
whose forbidden rule it breaks, else to a near miss of a checkpoint's own spec (same type and code: a wrong
dose), else to the checkpoint that forbids other writes.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from medagent.scenarios.answers import _NUMBER, find_dates, fold, strip_dates
from medagent.scenarios.models import (
    Change,
    Check,
    CheckpointVerdict,
    ForbiddenWrite,
    NoteFact,
    Scenario,
)
from medagent.scenarios.writes import WriteMatch, label, resolve, slot_check

_TAG = re.compile(r"<[^>]+>")
_DEFAULT_CODE_PATHS = {"MedicationRequest": "medicationCodeableConcept.coding", "Immunization": "vaccineCode.coding"}


# ---------- the structured note ----------


@dataclass
class NoteSection:
    """One section of a structured note (Composition): its narrative as plain text and its entry references."""

    text: str = ""
    entries: list[str] = field(default_factory=list)


def note_sections(resource: dict[str, Any]) -> dict[str, NoteSection]:
    """A Composition's sections by LOINC section code (title text also stored under ``title:<folded title>``)."""
    out: dict[str, NoteSection] = {}
    for section in resource.get("section") or []:
        div = ((section.get("text") or {}).get("div")) or ""
        text = " ".join(html.unescape(_TAG.sub(" ", div)).split())
        entries = [str(e.get("reference")) for e in section.get("entry") or [] if e.get("reference")]
        keys = [str(c.get("code")) for c in (section.get("code") or {}).get("coding") or [] if c.get("code")]
        if section.get("title"):
            keys.append(f"title:{fold(str(section['title']))}")
        for key in keys:
            part = out.setdefault(key, NoteSection())
            part.text = f"{part.text} {text}".strip()
            part.entries.extend(entries)
    return out


def numbers_in(text: str) -> list[float]:
    """Every number written in the text, dates left out (thousands separators joined)."""
    plain = re.sub(r"(\d),(\d{3})\b", r"\1\2", strip_dates(text))
    return [float(m.group()) for m in _NUMBER.finditer(plain)]


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w.%/]+", " ", fold(text)).split())


def note_fact_check(
    fact: NoteFact, sections: dict[str, NoteSection] | None, written: dict[str, list[str]] | None = None
) -> Check:
    """Whether the note (None: no note was written) holds one fact; ``written``: spec name -> references of the
    writes matched to it (for ``written`` facts)."""
    name = f"note: {fact.name}"
    if sections is None:
        return Check(name=name, passed=False, detail="no note")
    section = sections.get(fact.section)
    if section is None:
        return Check(name=name, passed=False, expected=fact.section, detail=f"no section {fact.section}")
    if fact.kind == "written":
        wanted = [ref for name in fact.any_of for ref in (written or {}).get(name, [])]
        missing = [ref for ref in wanted if ref not in section.entries]
        if len(wanted) < len(fact.any_of):
            return Check(
                name=name,
                passed=False,
                expected=fact.any_of,
                got=section.entries,
                detail="an order the note should cite was not written",
            )
        return Check(name=name, passed=not missing, expected=wanted, got=section.entries)
    if fact.kind in ("reference", "no_reference"):
        refs = set(fact.any_of)
        hit = [ref for ref in section.entries if ref in refs or ref.rsplit("/_history/", 1)[0] in refs]
        passed = bool(hit) if fact.kind == "reference" else not hit
        return Check(
            name=name,
            passed=passed,
            expected=fact.any_of if fact.kind == "reference" else f"none of {fact.any_of}",
            got=section.entries,
        )
    if fact.kind == "number":
        assert fact.value is not None
        got = numbers_in(section.text)
        passed = any(abs(v - fact.value) <= fact.tolerance + 1e-9 for v in got)
        return Check(name=name, passed=passed, expected=f"{fact.value:g} ±{fact.tolerance:g}", got=got)
    if fact.kind == "date":
        want = date.fromisoformat(fact.any_of[0][:10])
        got_dates = find_dates(section.text)
        return Check(
            name=name, passed=want in got_dates, expected=want.isoformat(), got=[d.isoformat() for d in got_dates]
        )
    text = _plain(section.text)
    passed = any(_plain(phrase) in text for phrase in fact.any_of)
    return Check(name=name, passed=passed, expected=f"one of {fact.any_of}", got=section.text[:300])


# ---------- forbidden writes ----------


def breaks(rule: ForbiddenWrite, change: Change) -> bool:
    """Whether a write is one the rule forbids."""
    if change.resourceType != rule.resource_type or change.action != rule.action:
        return False
    if rule.target and f"{change.resourceType}/{change.id}" != rule.target:
        return False
    if not rule.codes:
        return True
    path = rule.code_path or _DEFAULT_CODE_PATHS.get(rule.resource_type, "code.coding")
    pairs = {(c.get("system"), c.get("code")) for c in resolve(change.after or {}, path) if isinstance(c, dict)}
    return any((c.system, c.code) in pairs for c in rule.codes)


def _near_miss(match: WriteMatch, spec_names: set[str], c: int) -> bool:
    """A write no spec took that is an attempt at one of these specs: the right type and code (or no code rule)."""
    for s, spec in enumerate(match.slots):
        outcome = match.outcomes.get((s, c))
        if spec.name not in spec_names or outcome is None:
            continue
        if all(check.passed for check in outcome.checks if check.name in ("code", "target", "subject")):
            return True
    return False


# ---------- grading ----------


def attempts(match: WriteMatch, spec_name: str, extra: set[int]) -> list[str]:
    """The references of what the task wrote for a spec: the matched writes, else its near misses (a wrong dose
    is graded at the order's checkpoint; the note that cites it cites the order the agent placed)."""
    matched = [f"{c.resourceType}/{c.id}" for c in match.changes_of(spec_name)]
    if matched:
        return matched
    return [
        f"{match.changes[c].resourceType}/{match.changes[c].id}"
        for c in sorted(extra)
        if _near_miss(match, {spec_name}, c)
    ]


def coverage_problems(scenario: Scenario) -> list[str]:
    """What a workflow scenario leaves ungraded or grades twice (empty when every check has one checkpoint)."""
    problems = []
    fields = [f for cp in scenario.checkpoints for f in cp.answer_fields]
    expected_fields = list(scenario.answer.fields) if scenario.answer.type == "record" else []
    if sorted(fields) != sorted(expected_fields):
        problems.append(f"answer fields {sorted(expected_fields)} vs checkpoints' {sorted(fields)}")
    writes = [w for cp in scenario.checkpoints for w in cp.writes]
    notes = [cp.note for cp in scenario.checkpoints if cp.note]
    specs = [spec.name for spec in scenario.expected_writes]
    if len(set(specs)) != len(specs):
        problems.append("two write specs share a name")
    if sorted(set(writes) | set(notes)) != sorted(specs) or len(set(writes)) != len(writes):
        problems.append(f"write specs {sorted(specs)} vs checkpoints' {sorted(writes)} + notes {sorted(set(notes))}")
    if sum(cp.no_other_writes for cp in scenario.checkpoints) != 1:
        problems.append("exactly one checkpoint must forbid other writes")
    if not 4 <= len(scenario.checkpoints) <= 10:
        problems.append(f"{len(scenario.checkpoints)} checkpoints (4-10 expected)")
    return problems


def grade_checkpoints(
    scenario: Scenario, answer_checks: list[Check], match: WriteMatch
) -> tuple[list[CheckpointVerdict], list[Check]]:
    """Each checkpoint's verdict, and every check made (answer, writes, note facts) for the record."""
    slot_checks = {s: slot_check(match, s) for s in range(len(match.slots))}
    by_answer = {check.name.removeprefix("answer."): check for check in answer_checks}
    extra = {c for c in range(len(match.changes)) if c not in set(match.matched.values())}
    charged: dict[int, str] = {}
    for cp in scenario.checkpoints:  # forbidden rules first, then near misses of a checkpoint's own specs
        for c in sorted(extra - set(charged)):
            if any(breaks(rule, match.changes[c]) for rule in cp.forbidden):
                charged[c] = cp.name
    for cp in scenario.checkpoints:
        for c in sorted(extra - set(charged)):
            if _near_miss(match, set(cp.writes), c):
                charged[c] = cp.name
    required = {w for cp in scenario.checkpoints for w in cp.writes}
    note_owner: dict[str, str] = {}  # a note spec no checkpoint requires: its first note checkpoint checks it exists
    for cp in scenario.checkpoints:
        if cp.note and cp.note not in required:
            note_owner.setdefault(cp.note, cp.name)
    verdicts: list[CheckpointVerdict] = []
    all_checks: list[Check] = []
    for cp in scenario.checkpoints:
        checks = [
            by_answer[f] if f in by_answer else Check(name=f"answer.{f}", passed=False, detail="not graded")
            for f in cp.answer_fields
        ]
        own = set(cp.writes) | {name for name, owner in note_owner.items() if owner == cp.name}
        checks += [slot_checks[s] for s, spec in enumerate(match.slots) if spec.name in own]
        mine = [c for c, owner in charged.items() if owner == cp.name]
        if cp.no_other_writes:
            mine += [c for c in sorted(extra) if c not in charged]
        if cp.forbidden or cp.no_other_writes or mine:
            checks.append(
                Check(
                    name=f"no wrong writes ({cp.name})",
                    passed=not mine,
                    expected=[],
                    got=[label(match.changes[c]) for c in sorted(mine)],
                )
            )
        if cp.note is not None:
            notes = match.changes_of(cp.note)
            sections = note_sections(notes[0].after or {}) if notes else None
            written = {spec.name: attempts(match, spec.name, extra) for spec in scenario.expected_writes}
            checks += [note_fact_check(fact, sections, written) for fact in cp.note_facts]
        failed = [f"{c.name}: {c.detail or f'expected {c.expected}, got {c.got}'}" for c in checks if not c.passed]
        verdicts.append(CheckpointVerdict(name=cp.name, kind=cp.kind, passed=not failed, failed=failed))
        all_checks.extend(checks)
    return verdicts, all_checks
