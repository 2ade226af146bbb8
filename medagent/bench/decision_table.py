"""Baselines by decision: how often a policy passes, and how often it takes the right side of a binary decision.

A binary decision is the branch of a conditional task (act / no-action: right when the policy made the branch's
own write, i.e. wrote more than the writes both branches need (the blood-pressure reading), exactly on the act
branch; not a workflow task, whose branch only says whether anything is ordered: it is graded at checkpoints) and, for abstention, each lab's recorded / not recorded (right when the answer gives a number exactly
where the chart has one); a yes/no question is one decision too. Chance is 50% on all of them (the
sets balance them). ``decision_summary`` groups records by suite x tier (and category); ``render_decision_table``
draws one Markdown table with an "other items passed % / decisions %" cell per policy, "-" where a policy was not
run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from medagent.bench.results import TaskRecord
from medagent.scenarios.answers import is_none_answer, record_parts
from medagent.scenarios.models import Scenario

TARGETS = "binary decisions at most chance + 5 points (55%), everything else at most 10% (issue #27)"


def both_branches(scenarios: list[Scenario]) -> dict[str, int]:
    """Per conditional category, the writes its no-action branch needs too (a blood-pressure reading: 1; else 0)."""
    out: dict[str, int] = {}
    for s in scenarios:
        if s.branch == "no-action":
            out[s.category] = max(out.get(s.category, 0), sum(spec.count for spec in s.expected_writes))
    return out


def decisions(record: TaskRecord, scenario: Scenario, always: dict[str, int] | None = None) -> list[bool]:
    """Right/wrong per binary decision the item holds (none for most items); ``always``: ``both_branches``."""
    if scenario.checkpoints:
        return []  # a workflow task holds several decisions, each graded at its own checkpoint: its pass rate counts
    if scenario.branch is not None:
        setup = {r["id"] for r in scenario.setup}
        written = sum(1 for c in record.changes if c.id not in setup)
        acted = written > (always or {}).get(scenario.category, 0)
        return [acted == (scenario.branch == "act")]
    if scenario.answer.type == "boolean":
        return [record.passed]
    if scenario.category == "abstention" and scenario.answer.type == "record":
        parts = record_parts(scenario.answer, record.outcome.answer or "")
        out = []
        for key, field in scenario.answer.fields.items():
            given = parts.get(key)
            said_none = given is None or is_none_answer(str(given))
            out.append(said_none == (field.value is None))
        return out
    return []


def _pct(hits: int, n: int) -> float | None:
    return round(100.0 * hits / n, 1) if n else None


def decision_summary(records: dict[str, list[TaskRecord]], scenarios: list[Scenario]) -> dict[str, dict[str, Any]]:
    """policy -> "suite/tier" or "suite/tier/category" -> {n, pass, other_n, other_pass, decision_n, decisions}
    (percentages; "other": the items that hold no binary decision)."""
    by_id = {s.id: s for s in scenarios}
    always = both_branches(scenarios)
    out: dict[str, dict[str, Any]] = {}
    for policy, runs in records.items():
        groups: dict[str, list[tuple[bool, list[bool]]]] = defaultdict(list)
        for record in runs:
            scenario = by_id[record.scenario_id]
            made = (record.passed, decisions(record, scenario, always))
            for key in (
                f"{scenario.suite}/{scenario.tier}",
                f"{scenario.suite}/{scenario.tier}/{scenario.category}",
                "all",
            ):
                groups[key].append(made)
        out[policy] = {}
        for key, items in groups.items():
            flat = [d for _, ds in items for d in ds]
            other = [p for p, ds in items if not ds]
            out[policy][key] = {
                "n": len(items),
                "pass": _pct(sum(p for p, _ in items), len(items)),
                "other_n": len(other),
                "other_pass": _pct(sum(other), len(other)),
                "decision_n": len(flat),
                "decisions": _pct(sum(flat), len(flat)),
            }
    return out


def render_decision_table(summary: dict[str, dict[str, Any]], title: str, *, categories: bool = True) -> str:
    """Rows: suite x tier (then its categories); a column per policy: "other items passed % / decisions %" ("-"
    where a group has none of that kind) and the policy's number of items."""
    policies = list(summary)
    keys = sorted(
        {k for rows in summary.values() for k in rows if k != "all"},
        key=lambda k: (k.split("/")[:2], len(k.split("/")), k),
    )
    if not categories:
        keys = [k for k in keys if k.count("/") == 1]
    lines = [
        f"**{title}** (items without a binary decision passed % / binary decisions right %; {TARGETS})",
        "",
        "| suite / tier / category | " + " | ".join(policies) + " |",
        "|---|" + "---:|" * len(policies),
    ]
    for key in [*keys, "all"]:
        cells = []
        for policy in policies:
            row = summary[policy].get(key)
            if not row:
                cells.append("-")
                continue
            passed = "-" if row["other_pass"] is None else f"{row['other_pass']:.1f}"
            decided = "-" if row["decisions"] is None else f"{row['decisions']:.1f}"
            cells.append(f"{passed} / {decided} (n={row['n']})")
        label = key if key.count("/") != 1 and key != "all" else f"**{key}**"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
