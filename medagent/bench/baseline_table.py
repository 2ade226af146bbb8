"""The null baselines' table (``medagent bench baselines``): accuracy per suite x tier x category, per solver.

The baselines (``medagent.bench.solvers``: the oracle, do-nothing, always-act, the chart-blind prior, the
none-answerer) run through the real runner (``run_benchmark``: a fresh embedded FHIR server per task, the
graders); this tabulates their records, for the chart-blind prior also its accuracy on yes/no questions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from medagent.bench.results import TaskRecord
from medagent.scenarios.models import Scenario

BASELINES = (
    "oracle",
    "do-nothing",
    "always-act",
    "chart-blind",
    "none-answerer",
    "nearest-dev",
    "stated-number",
    "setup-only",
    "first-sentences",
    "lab-name-prior",
)
TARGETS = {  # issue #11: the floor the sets must keep
    "do-nothing": "<= 10% per suite",
    "none-answerer": "<= 10% per suite",
    "chart-blind": "<= 55% on yes/no, <= 10% on the rest",
    "oracle": "100.0%",
}


# ---------- the table ----------


def baseline_table(records: dict[str, list[TaskRecord]], scenarios: list[Scenario]) -> dict[str, Any]:
    """policy -> {"rows": [{suite, tier, category, n, accuracy, boolean_n, boolean_accuracy}], "suites": {...}}."""
    by_id = {s.id: s for s in scenarios}
    table: dict[str, Any] = {}
    for policy, runs in records.items():
        groups: dict[tuple[str, str, str], list[tuple[TaskRecord, Scenario]]] = defaultdict(list)
        for record in runs:
            scenario = by_id[record.scenario_id]
            for key in (
                (scenario.suite, scenario.tier, scenario.category),
                (scenario.suite, scenario.tier, "*"),
                (scenario.suite, "*", "*"),
                ("*", "*", "*"),
            ):
                groups[key].append((record, scenario))
        rows = []
        for (suite, tier, category), items in sorted(groups.items()):
            booleans = [r.passed for r, s in items if s.answer.type == "boolean"]
            others = [r.passed for r, s in items if s.answer.type != "boolean"]
            rows.append(
                {
                    "suite": suite,
                    "tier": tier,
                    "category": category,
                    "n": len(items),
                    "accuracy": _pct([r.passed for r, _ in items]),
                    "boolean_n": len(booleans),
                    "boolean_accuracy": _pct(booleans),
                    "other_n": len(others),
                    "other_accuracy": _pct(others),
                }
            )
        table[policy] = rows
    return table


def _pct(values: list[bool]) -> float | None:
    return round(100.0 * sum(values) / len(values), 1) if values else None


def render_markdown(table: dict[str, Any], title: str) -> str:
    """One Markdown table: a row per suite x tier x category, a column per policy (chart-blind: all / yes-no)."""
    policies = list(table)
    keyed = {p: {(r["suite"], r["tier"], r["category"]): r for r in rows} for p, rows in table.items()}
    keys = list(keyed[policies[0]]) if policies else []
    order = sorted(keys, key=lambda k: (k[0] == "*", k[0], k[1] == "*", k[1], k[2] == "*", k[2]))
    head = ["suite", "tier", "category", "n"]
    for p in policies:
        head += [p, f"{p} yes/no", f"{p} other"] if p == "chart-blind" else [p]
    lines = [
        f"**{title}** (accuracy %, `medagent bench baselines`)",
        "",
        "| " + " | ".join(head) + " |",
        "|---|---|---|" + "---:|" * (len(head) - 3),
    ]
    for key in order:
        first = keyed[policies[0]][key]
        suite, tier, category = ("**all**" if v == "*" else v for v in key)
        cells = [suite, tier if key[0] != "*" else "", category if key[1] != "*" else "", str(first["n"])]
        for p in policies:
            row = keyed[p].get(key, {})
            cells.append(_cell(row.get("accuracy")))
            if p == "chart-blind":
                cells += [_cell(row.get("boolean_accuracy")), _cell(row.get("other_accuracy"))]
        if key[2] == "*":
            cells = [f"**{c}**" if c and not c.startswith("**") else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_side_by_side(tables: dict[str, dict[str, Any]], title: str) -> str:
    """The baselines of several sets (e.g. v2 beside v1) in one Markdown table: a row per suite x tier x category,
    per set the columns oracle, do-nothing, always-act, chart-blind (all, yes/no, other), none-answerer."""
    columns = [
        ("oracle", "accuracy"),
        ("do-nothing", "accuracy"),
        ("always-act", "accuracy"),
        ("chart-blind", "accuracy"),
        ("chart-blind", "boolean_accuracy"),
        ("chart-blind", "other_accuracy"),
        ("none-answerer", "accuracy"),
    ]
    names = {"accuracy": "", "boolean_accuracy": " yes/no", "other_accuracy": " other"}
    keyed = {
        name: {p: {(r["suite"], r["tier"], r["category"]): r for r in rows} for p, rows in table.items()}
        for name, table in tables.items()
    }
    keys: list[tuple[str, str, str]] = []
    for by_policy in keyed.values():
        for rows in by_policy.values():
            keys += [k for k in rows if k not in keys]
    keys.sort(key=lambda k: (k[0] == "*", k[0], k[1] == "*", k[1], k[2] == "*", k[2]))
    head = ["suite", "tier", "category"]
    for name in tables:
        head += [f"{name} n"] + [f"{name} {p}{names[field]}" for p, field in columns]
    lines = [title, "", "| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for key in keys:
        label = [
            "**all**" if key[0] == "*" else key[0],
            "" if key[0] == "*" else ("**all**" if key[1] == "*" else key[1]),
            "" if key[1] == "*" else ("**all**" if key[2] == "*" else key[2]),
        ]
        cells = list(label)
        for by_policy in keyed.values():
            first = next((rows[key] for rows in by_policy.values() if key in rows), None)
            cells.append(str(first["n"]) if first else "-")
            cells += [_cell(by_policy.get(p, {}).get(key, {}).get(field)) for p, field in columns]
        if key[2] == "*":
            cells = [f"**{c}**" if c and c != "-" and not c.startswith("**") else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
