"""Null baselines: how far a policy gets without reading the chart, and ``medagent bench baselines``.

- ``chart-blind``: never calls a tool. It learns, from the DEV split of the set it is given (never the
  test answers), the answer statistics by question form and entity (the code, group, drug or lab the
  question names, as in ``meta.entity``/``meta.key``/``meta.loinc``) and answers each question with the
  most frequent dev answer of its (suite, category, form, entity), else of its (suite, category, form),
  else "yes". What it scores is what the vocabulary of a question gives away.
- ``none-answerer``: answers "none" to everything, reads and writes nothing (the "not found" shortcut).

``run_baselines`` runs these with the oracle, do-nothing and always-act through the real runner
(``run_benchmark``: a fresh embedded FHIR server per task, the graders) and tabulates accuracy per
suite x tier x category; for the chart-blind prior also its accuracy on yes/no questions.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medagent.bench.results import TaskRecord
from medagent.bench.wrong_policies import FixedAnswerPolicy
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.scenario_files import open_set

BASELINES = ("oracle", "do-nothing", "always-act", "chart-blind", "none-answerer")
TARGETS = {  # issue #11: the floor the sets must keep
    "do-nothing": "<= 10% per suite",
    "none-answerer": "<= 10% per suite",
    "chart-blind": "<= 55% on yes/no, <= 10% on the rest",
    "oracle": "100.0%",
}


def question_form(scenario: Scenario) -> str:
    return str(scenario.meta.get("form") or scenario.category)


def question_entity(scenario: Scenario) -> str:
    """What the question names (not what the chart holds): the entity the prior may condition on."""
    meta = scenario.meta
    if "entity" in meta:
        return str(meta["entity"])
    if scenario.suite == "ehrqa" and isinstance(meta.get("key"), list):
        return "/".join(str(k) for k in meta["key"][1:])  # v1: the codes of the key (its first part is the polarity)
    return str(meta.get("loinc") or meta.get("drug") or "")


def answer_text(expected: ExpectedAnswer) -> str:
    """How an answer of this shape is written (the prior answers with the most frequent one it saw in dev)."""
    if expected.type == "boolean":
        return "yes" if expected.value else "no"
    if expected.type == "none":
        return "done"
    if expected.type == "record":
        return json.dumps({key: _field_value(field) for key, field in expected.fields.items()})
    if expected.value is None or expected.value == []:
        return "none"
    if isinstance(expected.value, list):
        return "; ".join(expected.value)
    if expected.type == "number" and isinstance(expected.value, (int, float)):
        return f"{expected.value:g} {expected.unit or ''}".strip()
    return str(expected.value)


def _field_value(field: ExpectedAnswer) -> Any:
    if field.value is None:
        return None
    if isinstance(field.value, list):
        return field.value[0] if len(field.value) == 1 else field.value
    return field.value


class AnswerPrior:
    """Most frequent dev answer by (suite, category, form, entity), with fallbacks; built from examples only."""

    def __init__(self, examples: Iterable[Scenario]) -> None:
        self.by_entity: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        self.by_form: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for example in examples:
            if example.split != "dev":
                raise ValueError(f"the chart-blind prior learns from dev only; got {example.id} ({example.split})")
            text = answer_text(example.answer)
            form = (example.suite, example.category, question_form(example))
            self.by_entity[(*form, question_entity(example))][text] += 1
            self.by_form[form][text] += 1

    def guess(self, scenario: Scenario) -> str:
        form = (scenario.suite, scenario.category, question_form(scenario))
        for table in (self.by_entity.get((*form, question_entity(scenario))), self.by_form.get(form)):
            if table:
                return min(table.items(), key=lambda item: (-item[1], item[0]))[0]
        return "yes"


class ChartBlindPolicy(FixedAnswerPolicy):
    """Deliberately wrong policy: answers from the dev split's answer statistics by question form and entity,
    never calling a tool or writing. Built from a set folder (its dev files) or from dev scenarios."""

    name = "chart-blind"
    model: str | None = None

    def __init__(self, set_folder: Path | None = None, examples: Iterable[Scenario] | None = None) -> None:
        if examples is None:
            if set_folder is None:
                from medagent.bench.scenario_sets import default_scenarios_dir

                set_folder = default_scenarios_dir()
            examples = open_set(set_folder).load("all", "dev", "all")
        self.prior = AnswerPrior(examples)

    def answer_for(self, scenario: Scenario) -> str:
        return self.prior.guess(scenario)


class NoneAnswererPolicy(FixedAnswerPolicy):
    """Deliberately wrong policy: answers "none" to every task, reads nothing, writes nothing."""

    def __init__(self) -> None:
        super().__init__("none-answerer", "none")


# ---------- the table ----------

def baseline_table(records: dict[str, list[TaskRecord]], scenarios: list[Scenario]) -> dict[str, Any]:
    """policy -> {"rows": [{suite, tier, category, n, accuracy, boolean_n, boolean_accuracy}], "suites": {...}}."""
    by_id = {s.id: s for s in scenarios}
    table: dict[str, Any] = {}
    for policy, runs in records.items():
        groups: dict[tuple[str, str, str], list[tuple[TaskRecord, Scenario]]] = defaultdict(list)
        for record in runs:
            scenario = by_id[record.scenario_id]
            for key in ((scenario.suite, scenario.tier, scenario.category), (scenario.suite, scenario.tier, "*"),
                        (scenario.suite, "*", "*"), ("*", "*", "*")):
                groups[key].append((record, scenario))
        rows = []
        for (suite, tier, category), items in sorted(groups.items()):
            booleans = [r.passed for r, s in items if s.answer.type == "boolean"]
            others = [r.passed for r, s in items if s.answer.type != "boolean"]
            rows.append({"suite": suite, "tier": tier, "category": category, "n": len(items),
                         "accuracy": _pct([r.passed for r, _ in items]),
                         "boolean_n": len(booleans), "boolean_accuracy": _pct(booleans),
                         "other_n": len(others), "other_accuracy": _pct(others)})
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
    lines = [f"**{title}** (accuracy %, `medagent bench baselines`)", "", "| " + " | ".join(head) + " |",
             "|---|---|---|" + "---:|" * (len(head) - 3)]
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
    columns = [("oracle", "accuracy"), ("do-nothing", "accuracy"), ("always-act", "accuracy"),
               ("chart-blind", "accuracy"), ("chart-blind", "boolean_accuracy"), ("chart-blind", "other_accuracy"),
               ("none-answerer", "accuracy")]
    names = {"accuracy": "", "boolean_accuracy": " yes/no", "other_accuracy": " other"}
    keyed = {name: {p: {(r["suite"], r["tier"], r["category"]): r for r in rows} for p, rows in table.items()}
             for name, table in tables.items()}
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
        label = ["**all**" if key[0] == "*" else key[0],
                 "" if key[0] == "*" else ("**all**" if key[1] == "*" else key[1]),
                 "" if key[1] == "*" else ("**all**" if key[2] == "*" else key[2])]
        cells = list(label)
        for name, by_policy in keyed.items():
            first = next((rows[key] for rows in by_policy.values() if key in rows), None)
            cells.append(str(first["n"]) if first else "-")
            cells += [_cell(by_policy.get(p, {}).get(key, {}).get(field)) for p, field in columns]
        if key[2] == "*":
            cells = [f"**{c}**" if c and c != "-" and not c.startswith("**") else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
