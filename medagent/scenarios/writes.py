"""State-based grading of writes: match the server's diff against the scenario's WriteSpecs.

Order- and id-insensitive (a write is recognised by its content), tolerant where the clinic is
(units with stated conversions, route synonyms, time windows), strict where safety is: the
subject must be this patient, a read-only task may not write anything, every spec must be met
by exactly ``count`` writes, and no write may be left unexplained (a duplicate order fails).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medagent.scenarios.answers import fold, normalise_unit
from medagent.scenarios.clock import parse_span
from medagent.scenarios.models import Change, Check, QuantityOption, Scenario, WriteSpec

_SEGMENT = re.compile(r"([A-Za-z_][\w]*)(?:\[([^\]=]+)=([^\]]+)\])?")
_DEFAULT_CODE_PATHS = {
    "MedicationRequest": "medicationCodeableConcept.coding",
    "Immunization": "vaccineCode.coding",
}


# ---------- paths ----------


def _split_path(path: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in path:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p]


def resolve(node: Any, path: str) -> list[Any]:
    """Values at a dotted path; lists flatten; 'component[code.coding.code=8480-6]' filters items."""
    current = [node]
    for segment in _split_path(path):
        match = _SEGMENT.fullmatch(segment)
        if not match:
            raise ValueError(f"bad path segment {segment!r} in {path!r}")
        key, filter_path, filter_value = match.groups()
        found: list[Any] = []
        for item in current:
            if isinstance(item, dict) and key in item:
                value = item[key]
                found.extend(value if isinstance(value, list) else [value])
        if filter_path:
            found = [f for f in found if any(str(v) == filter_value for v in resolve(f, filter_path))]
        current = found
    return current


def strings_at(node: Any, path: str) -> list[str]:
    """Every string under a path (text, display, code ... of a CodeableConcept, or a plain string)."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for value in resolve(node, path):
        walk(value)
    return out


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w.%/]+", " ", fold(text)).split())


# ---------- constraint checks on one resource ----------


def _check_quantity_option(resource: dict[str, Any], option: QuantityOption) -> tuple[bool, Any]:
    got = []
    for node in resolve(resource, option.path):
        if not isinstance(node, dict) or not isinstance(node.get(option.value_key), int | float):
            continue
        value = float(node[option.value_key])
        units = [str(node[k]) for k in option.unit_keys if node.get(k)]
        got.append(f"{value:g} {units[0] if units else ''}".strip())
        factors = {normalise_unit(option.unit): 1.0, **{normalise_unit(u): f for u, f in option.unit_factors.items()}}
        for unit in units:  # a quantity written without a unit never passes: "40" of what?
            factor = factors.get(normalise_unit(unit))
            if factor is None:
                continue
            tol = max(option.tolerance.abs, option.tolerance.rel * abs(option.value))
            if math.isclose(value * factor, option.value, abs_tol=tol + 1e-9):
                return True, got
    return False, got


@dataclass
class _Outcome:
    """How one change fares against one spec: which named constraints it meets."""

    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def met(self) -> int:
        return sum(c.passed for c in self.checks)


def evaluate(spec: WriteSpec, change: Change) -> _Outcome:
    """All constraint checks of a spec on one change (type and action are pre-filtered)."""
    after = change.after or {}
    checks: list[Check] = []
    if spec.target:
        checks.append(
            Check(
                name="target",
                passed=f"{change.resourceType}/{change.id}" == spec.target,
                expected=spec.target,
                got=f"{change.resourceType}/{change.id}",
            )
        )
    if spec.subject:
        refs = strings_at(after, spec.subject_path)
        ok = any(r == spec.subject or r.endswith("/" + spec.subject) for r in refs)
        checks.append(Check(name="subject", passed=ok, expected=spec.subject, got=refs))
    if spec.codes:
        path = spec.code_path or _DEFAULT_CODE_PATHS.get(spec.resource_type, "code.coding")
        codings = [c for c in resolve(after, path) if isinstance(c, dict)]
        pairs = {(c.get("system"), c.get("code")) for c in codings}
        ok = any((c.system, c.code) in pairs for c in spec.codes)
        checks.append(
            Check(
                name="code",
                passed=ok,
                expected=[f"{c.system}|{c.code}" for c in spec.codes],
                got=[f"{s}|{c}" for s, c in sorted(pairs, key=str)],
            )
        )
    for field, allowed in (("intent", spec.intent), ("status", spec.status)):
        if allowed is not None:
            got = after.get(field)
            checks.append(Check(name=field, passed=got in allowed, expected=allowed, got=got))
    for rule in spec.quantities:
        got_all: list[Any] = []
        ok = False
        for option in rule.options:
            passed, got = _check_quantity_option(after, option)
            got_all.extend(got)
            ok = ok or passed
        expected = " or ".join(f"{o.path}={o.value:g} {o.unit}" for o in rule.options)
        checks.append(Check(name=rule.name, passed=ok, expected=expected, got=got_all))
    for field_rule in spec.fields:
        values = [_plain(v) for v in strings_at(after, field_rule.path)]
        wanted = [_plain(v) for v in field_rule.any_of]
        if field_rule.mode == "equals":
            ok = any(v in wanted for v in values)
        else:
            ok = any(w in v for v in values for w in wanted)
        checks.append(
            Check(name=field_rule.name, passed=ok, expected=field_rule.any_of, got=strings_at(after, field_rule.path))
        )
    for window in spec.windows:
        lo, hi = parse_span(window.not_before)[0], parse_span(window.not_after)[1]
        got = [v for path in window.paths for v in strings_at(after, path)]
        ok = False
        for value in got:
            try:
                start, end = parse_span(value)
            except ValueError:
                continue
            ok = ok or (start <= hi and end >= lo)
        checks.append(Check(name=window.name, passed=ok, expected=[window.not_before, window.not_after], got=got))
    for path in spec.unchanged:
        before_value = resolve(change.before or {}, path)
        after_value = resolve(after, path)
        checks.append(
            Check(name=f"unchanged {path}", passed=before_value == after_value, expected=before_value, got=after_value)
        )
    return _Outcome(checks)


# ---------- matching a diff against the specs ----------


def relevant_changes(scenario: Scenario, diff: Sequence[Change | dict[str, Any]]) -> list[Change]:
    """The diff as Changes, without the creation of the scenario's own setup resources."""
    setup = {(r["resourceType"], r["id"]): r for r in scenario.setup}
    changes = []
    for raw in diff:
        change = raw if isinstance(raw, Change) else Change.model_validate(raw)
        if change.action == "create" and (change.resourceType, change.id) in setup:
            continue
        changes.append(change)
    return changes


def _max_matching(edges: dict[int, list[int]], slots: int) -> dict[int, int]:
    """Maximum bipartite matching (augmenting paths): slot index -> change index."""
    slot_of_change: dict[int, int] = {}

    def assign(slot: int, seen: set[int]) -> bool:
        for change in edges.get(slot, []):
            if change in seen:
                continue
            seen.add(change)
            if change not in slot_of_change or assign(slot_of_change[change], seen):
                slot_of_change[change] = slot
                return True
        return False

    for slot in range(slots):
        assign(slot, set())
    return {slot: change for change, slot in slot_of_change.items()}


@dataclass
class WriteMatch:
    """How a diff matched a scenario's write specs: each spec slot (a spec repeated ``count`` times) to the change
    that met it, the best failed attempt per slot, and the changes no slot took."""

    changes: list[Change]
    slots: list[WriteSpec]
    matched: dict[int, int]  # slot index -> change index
    outcomes: dict[tuple[int, int], _Outcome]

    @property
    def extra(self) -> list[Change]:
        used = set(self.matched.values())
        return [change for c, change in enumerate(self.changes) if c not in used]

    def changes_of(self, spec_name: str) -> list[Change]:
        """The changes matched to the slots of the spec with this name."""
        return [
            self.changes[self.matched[s]]
            for s, spec in enumerate(self.slots)
            if spec.name == spec_name and s in self.matched
        ]


def match_writes(scenario: Scenario, diff: Sequence[Change | dict[str, Any]]) -> WriteMatch:
    """Match the diff (setup creations left out) against the scenario's expected writes, by content."""
    changes = relevant_changes(scenario, diff)
    slots = [spec for spec in scenario.expected_writes for _ in range(spec.count)]
    outcomes: dict[tuple[int, int], _Outcome] = {}
    edges: dict[int, list[int]] = {}
    for s, spec in enumerate(slots):
        for c, change in enumerate(changes):
            if change.resourceType != spec.resource_type or change.action != spec.action:
                continue
            outcome = evaluate(spec, change)
            outcomes[(s, c)] = outcome
            if outcome.passed:
                edges.setdefault(s, []).append(c)
    return WriteMatch(changes, slots, _max_matching(edges, len(slots)), outcomes)


def slot_check(match: WriteMatch, s: int) -> Check:
    """The check of one spec slot: matched, or the best failed attempt and what it missed."""
    spec = match.slots[s]
    if s in match.matched:
        return Check(name=f"write: {spec.name}", passed=True, got=label(match.changes[match.matched[s]]))
    tried = [(match.outcomes[(s, c)], c) for c in range(len(match.changes)) if (s, c) in match.outcomes]
    if not tried:
        return Check(name=f"write: {spec.name}", passed=False, detail="no such write")
    best, c = max(tried, key=lambda pair: pair[0].met)
    failed = [chk for chk in best.checks if not chk.passed]
    return Check(
        name=f"write: {spec.name}",
        passed=False,
        got=label(match.changes[c]),
        detail="; ".join(f"{chk.name}: expected {chk.expected}, got {chk.got}" for chk in failed),
    )


def grade_writes(scenario: Scenario, diff: Sequence[Change | dict[str, Any]]) -> tuple[list[Check], str | None]:
    """Checks for the writes, and the failure cause if any (missing/wrong/forbidden write)."""
    changes = relevant_changes(scenario, diff)
    if scenario.read_only or not scenario.expected_writes:
        passed = not changes
        got = [f"{c.action} {c.resourceType}/{c.id}" for c in changes]
        return [Check(name="no writes", passed=passed, expected=[], got=got)], None if passed else "forbidden_write"

    match = match_writes(scenario, diff)
    checks: list[Check] = []
    cause: str | None = None
    for s in range(len(match.slots)):
        check = slot_check(match, s)
        checks.append(check)
        if not check.passed:
            if check.detail == "no such write":
                cause = cause or "missing_write"
            else:
                cause = "wrong_write" if cause in (None, "missing_write") else cause
    extra = match.extra
    checks.append(Check(name="no other writes", passed=not extra, expected=[], got=[label(c) for c in extra]))
    if extra and cause is None:
        cause = "forbidden_write"
    return checks, cause


def label(change: Change) -> str:
    return f"{change.action} {change.resourceType}/{change.id}"
