"""The answer and the diff a perfect agent would produce, derived from a scenario's own spec.

This proves every expected answer and every WriteSpec satisfiable by a valid FHIR R4 resource
(tests validate them with fhir.resources) and gives the grader tests their "right" case; the
wrong solutions below mutate it. It is not the oracle: that one (``medagent.bench.solvers``) must reach
the same state through the typed tools, reading the chart like an agent would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from medagent.scenarios.answer_types import answer_type
from medagent.scenarios.clock import iso, parse_span
from medagent.scenarios.identity import fixture_id
from medagent.scenarios.models import ExpectedAnswer, Scenario, WriteSpec

LIST_FIELDS = {
    "dosageInstruction",
    "doseAndRate",
    "component",
    "category",
    "note",
    "coding",
    "event",
    "reasonCode",
    "reasonReference",
}
# elements a field rule may name whose FHIR type is a plain string (a code, a reference), not a CodeableConcept
STRING_LEAVES = {"code", "display", "system", "text", "reference"}
STRING_ELEMENTS = {"priority"}  # a request's priority is a code
# elements R4 requires that no spec constrains (the tools always write them)
REQUIRED_ELEMENTS: dict[str, dict[str, Any]] = {
    "Composition": {"title": "Reference note", "author": [{"display": "reference"}]},
}
_SEGMENT = re.compile(r"([A-Za-z_]\w*)(?:\[([^\]=]+)=([^\]]+)\])?")


def reference_answer(expected: ExpectedAnswer) -> Any:
    """A final answer in the format the task text asks for, that the grader must accept (its answer type's)."""
    return answer_type(expected.type).reference(expected)


# ---------- building resources from a spec ----------


def _split(path: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in path:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def put(node: dict[str, Any], path: str, value: Any) -> None:
    """Set a value at a dotted path, creating dicts and one-element lists; filters pick/create items."""
    segments = _split(path)
    for index, segment in enumerate(segments):
        match = _SEGMENT.fullmatch(segment)
        assert match, segment
        key, filter_path, filter_value = match.groups()
        last = index == len(segments) - 1
        if last and not filter_path:
            node[key] = value
            return
        if key in LIST_FIELDS:
            items = node.setdefault(key, [])
            chosen = None
            for item in items:
                if not filter_path or _has(item, filter_path, filter_value):
                    chosen = item
                    break
            if chosen is None:
                chosen = {}
                if filter_path:
                    put(chosen, filter_path, filter_value)
                items.append(chosen)
            node = chosen
        else:
            node = node.setdefault(key, {})


def _has(item: dict[str, Any], path: str, value: str) -> bool:
    from medagent.scenarios.writes import resolve

    return any(str(v) == value for v in resolve(item, path))


def reference_resource(spec: WriteSpec, resource_id: str) -> dict[str, Any]:
    """A resource meeting every constraint of a create spec (first accepted option of each)."""
    resource: dict[str, Any] = {"resourceType": spec.resource_type, "id": resource_id}
    if spec.subject:
        put(resource, spec.subject_path, spec.subject)
    if spec.codes:
        code_path = spec.code_path or "code.coding"
        put(resource, code_path, [{"system": spec.codes[0].system, "code": spec.codes[0].code}])
    if spec.intent:
        resource["intent"] = spec.intent[0]
    resource["status"] = spec.status[0] if spec.status else _default_status(spec.resource_type)
    for key, value in REQUIRED_ELEMENTS.get(spec.resource_type, {}).items():
        resource.setdefault(key, deepcopy(value))
    for rule in spec.quantities:
        option = rule.options[0]
        put(resource, f"{option.path}.{option.value_key}", option.value)
        put(resource, f"{option.path}.{option.unit_keys[0]}", option.unit)
    for field in spec.fields:
        leaf = _split(field.path)[-1]
        plain = field.path in STRING_ELEMENTS or ("." in field.path and leaf in STRING_LEAVES)
        put(resource, field.path if plain else f"{field.path}.text", field.any_of[0])
    for window in spec.windows:
        lo, hi = parse_span(window.not_before)[0], parse_span(window.not_after)[1]
        put(resource, window.paths[0], iso(lo + (hi - lo) / 2))
    return resource


def _default_status(resource_type: str) -> str:
    return "final" if resource_type == "Observation" else "active"


def reference_diff(scenario: Scenario) -> list[dict[str, Any]]:
    """The server diff after a perfect run: setup creations, then exactly the required writes."""
    changes: list[dict[str, Any]] = [
        {"resourceType": r["resourceType"], "id": r["id"], "action": "create", "before": None, "after": r}
        for r in scenario.setup
    ]
    for index, spec in enumerate(scenario.expected_writes):
        for copy in range(spec.count):
            if spec.action == "update":
                assert spec.target
                kind, _, target_id = spec.target.partition("/")
                before = {
                    "resourceType": kind,
                    "id": target_id,
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"coding": [{"system": "rxnorm", "code": "0"}]},
                    "subject": {"reference": f"Patient/{scenario.patient}"},
                }
                after = {**before, "status": (spec.status or ["stopped"])[0]}
                changes.append(
                    {"resourceType": kind, "id": target_id, "action": "update", "before": before, "after": after}
                )
                continue
            resource_id = fixture_id(scenario.id + ":write", index * 10 + copy)
            resource = reference_resource(spec, resource_id)
            changes.append(
                {
                    "resourceType": spec.resource_type,
                    "id": resource_id,
                    "action": "create",
                    "before": None,
                    "after": resource,
                }
            )
    return changes


# ---------- wrong solutions at the grader level ----------


def _writes(scenario: Scenario) -> list[dict[str, Any]]:
    setup_ids = {r["id"] for r in scenario.setup}
    return [c for c in reference_diff(scenario) if c["id"] not in setup_ids]


def _setup(scenario: Scenario) -> list[dict[str, Any]]:
    return [c for c in reference_diff(scenario) if c["id"] in {r["id"] for r in scenario.setup}]


def _retarget(change: dict[str, Any], patient: str) -> dict[str, Any]:
    after = json.loads(
        json.dumps(change["after"]).replace(
            change["after"].get("subject", {}).get("reference", "\0"), f"Patient/{patient}"
        )
    )
    return {**change, "after": after}


WrongSolution = Callable[[Scenario], tuple[Any, list[dict[str, Any]]]]

WRONG_SOLUTIONS: dict[str, WrongSolution] = {
    "do-nothing": lambda s: ("", _setup(s)),
    "answer-no": lambda s: ("no", _setup(s) + _writes(s)),
    "right-answer-no-writes": lambda s: (reference_answer(s.answer), _setup(s)),
    "write-twice": lambda s: (
        reference_answer(s.answer),
        _setup(s) + _writes(s) + [{**c, "id": c["id"] + "-2"} for c in _writes(s) if c["action"] == "create"],
    ),
    "wrong-patient": lambda s: (
        reference_answer(s.answer),
        _setup(s) + [_retarget(c, "not-" + s.patient) for c in _writes(s)],
    ),
}
