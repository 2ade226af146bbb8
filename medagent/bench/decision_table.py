"""Baselines by decision: how often a policy passes, and how often it takes the right side of a binary decision.

A binary decision is the branch of a conditional task (act / no-action: right when every write check passes,
i.e. it wrote what that branch needs and nothing else) and, for abstention, each lab's recorded / not recorded
(right when the answer gives a number exactly where the chart has one). Chance is 50% on both (the sets
balance them). ``decision_summary`` groups records by suite x tier (and category); ``render_decision_table`` draws
one Markdown table with a "pass % / decisions %" cell per policy, "-" where a policy was not run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from medagent.bench.results import TaskRecord
from medagent.scenarios.answers import is_none_answer, record_parts
from medagent.scenarios.models import Scenario

TARGETS = "binary decisions at most chance + 5 points (55%), everything else at most 10% (issue #27)"


def decisions(record: TaskRecord, scenario: Scenario) -> list[bool]:
    """Right/wrong per binary decision the item holds (none for most items)."""
    if scenario.branch is not None:
        checks = (record.verdict or {}).get("checks", [])
        return [record.verdict is not None and all(c["passed"] for c in checks if not c["name"].startswith("answer"))]
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
    """policy -> "suite/tier" or "suite/tier/category" -> {n, pass, decision_n, decisions} (percentages)."""
    by_id = {s.id: s for s in scenarios}
    out: dict[str, dict[str, Any]] = {}
    for policy, runs in records.items():
        groups: dict[str, list[tuple[bool, list[bool]]]] = defaultdict(list)
        for record in runs:
            scenario = by_id[record.scenario_id]
            made = (record.passed, decisions(record, scenario))
            for key in (f"{scenario.suite}/{scenario.tier}", f"{scenario.suite}/{scenario.tier}/{scenario.category}",
                        "all"):
                groups[key].append(made)
        out[policy] = {}
        for key, items in groups.items():
            flat = [d for _, ds in items for d in ds]
            out[policy][key] = {"n": len(items), "pass": _pct(sum(p for p, _ in items), len(items)),
                                "decision_n": len(flat), "decisions": _pct(sum(flat), len(flat))}
    return out


def render_decision_table(summary: dict[str, dict[str, Any]], title: str, *, categories: bool = True) -> str:
    """Rows: suite x tier (then its categories); a column per policy: "pass % / decisions %" (n of the policy's
    items in the first policy's column header order)."""
    policies = list(summary)
    keys = sorted({k for rows in summary.values() for k in rows if k != "all"},
                  key=lambda k: (k.split("/")[:2], len(k.split("/")), k))
    if not categories:
        keys = [k for k in keys if k.count("/") == 1]
    lines = [f"**{title}** (pass % / binary decisions %; {TARGETS})", "",
             "| suite / tier / category | " + " | ".join(policies) + " |", "|---|" + "---:|" * len(policies)]
    for key in [*keys, "all"]:
        cells = []
        for policy in policies:
            row = summary[policy].get(key)
            if not row:
                cells.append("-")
                continue
            decided = f" / {row['decisions']:.1f}" if row["decisions"] is not None else ""
            cells.append(f"{row['pass']:.1f}{decided} (n={row['n']})")
        label = key if key.count("/") != 1 and key != "all" else f"**{key}**"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
