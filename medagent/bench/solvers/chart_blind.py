"""``chart-blind``: the null baseline that never reads the chart.

It never calls a tool. It learns, from the DEV split of the set it is given (never the test answers), the
answer statistics by question form and entity (the code, group, drug or lab the question names, as in
``meta.entity``/``meta.key``/``meta.loinc``) and answers each question with the most frequent dev answer of its
(suite, category, form, entity), else of its (suite, category, form), else "yes". What it scores is what the
vocabulary of a question gives away.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medagent.bench.solvers.wrong import FixedAnswerSolver
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.scenario_files import open_set


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


class ChartBlindSolver(FixedAnswerSolver):
    """Deliberately wrong solver: answers from the dev split's answer statistics by question form and entity,
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
