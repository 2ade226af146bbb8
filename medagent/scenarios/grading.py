"""grade(scenario, final_answer, diff) -> Verdict: the one entry point the bench runner calls.

A scenario passes only if every check passes: the final answer (when one is asked) and the
writes (required ones present exactly once, nothing else written, nothing at all in a read-only
task). ``score`` is the fraction of checks passed, for partial-credit diagnostics; ``passed`` is
the benchmark metric. ``failure_cause`` names the first thing to look at: a write problem
outranks a wrong answer, because a wrong order reaches the patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medagent.scenarios.answers import grade_answer
from medagent.scenarios.checkpoints import grade_checkpoints
from medagent.scenarios.models import Change, Scenario, Verdict
from medagent.scenarios.writes import grade_writes, match_writes

_CAUSE_OF_KIND = {
    "order": "wrong_write",
    "no_order": "forbidden_write",
    "safety": "forbidden_write",
    "note": "wrong_write",
    "fact": "wrong_answer",
}


def grade(
    scenario: Scenario, final_answer: str | dict[str, Any] | None, diff: Sequence[Change | dict[str, Any]]
) -> Verdict:
    answer_checks = grade_answer(scenario.answer, final_answer)
    if scenario.checkpoints:
        return _grade_workflow(scenario, answer_checks, diff)
    write_checks, write_cause = grade_writes(scenario, diff)
    checks = write_checks + answer_checks
    passed = all(check.passed for check in checks)
    cause = write_cause
    if cause is None and not all(check.passed for check in answer_checks):
        cause = "wrong_answer"
    score = sum(check.passed for check in checks) / len(checks) if checks else 1.0
    return Verdict(
        scenario_id=scenario.id,
        passed=passed,
        score=round(score, 4),
        checks=checks,
        failure_cause=None if passed else cause,
    )


def diff_changes(diff_response: dict[str, Any] | list[Any]) -> list[Change]:
    """Accept the server's whole ``GET /$diff`` body ({"snapshot", "changes"}) or the list itself."""
    raw = diff_response.get("changes", []) if isinstance(diff_response, dict) else diff_response
    return [c if isinstance(c, Change) else Change.model_validate(c) for c in raw]


def _grade_workflow(scenario: Scenario, answer_checks: list[Any], diff: Sequence[Change | dict[str, Any]]) -> Verdict:
    """A workflow task: passed when every checkpoint passes; score is the checkpoint rate."""
    verdicts, checks = grade_checkpoints(scenario, answer_checks, match_writes(scenario, diff))
    failing = [v for v in verdicts if not v.passed]
    passed = not failing
    cause = None
    if failing:
        writes_first = sorted(failing, key=lambda v: v.kind == "fact")
        cause = _CAUSE_OF_KIND[writes_first[0].kind]
        if cause == "wrong_write" and any("no such write" in f for f in writes_first[0].failed):
            cause = "missing_write"
    score = sum(v.passed for v in verdicts) / len(verdicts)
    return Verdict(
        scenario_id=scenario.id,
        passed=passed,
        score=round(score, 4),
        checks=checks,
        failure_cause=cause,
        checkpoints=verdicts,
    )
