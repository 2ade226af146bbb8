"""What every core EHRQA category shares: the answer formats, the question layout and the chart's facts by code."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from medagent.scenarios.category import ChartInput
from medagent.scenarios.chart import Chart, ConditionFact, ObservationFact
from medagent.scenarios.clock import day_of, iso, whole_years_between
from medagent.scenarios.codes import LabInfo
from medagent.scenarios.expect import rounding_phrase
from medagent.scenarios.identity import rng_for, scenario_id
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.population import Population

FORMAT_BOOLEAN = "Answer yes or no."
FORMAT_DATE = "Answer with one date in YYYY-MM-DD format."
FORMAT_MEDICATIONS = (
    "Answer with the medication names exactly as written in the chart, separated by "
    "semicolons, or 'none' if there are none."
)
FORMAT_MEDS_SINCE = (
    'Answer as JSON: {"medications": [the medication names exactly as written in the chart], '
    '"first_ordered": "YYYY-MM-DD" (the date of the earliest of those orders)}.'
)
FORMAT_PERSON = "Answer with the practitioner's full name (given name and family name)."

# At least five phrasings per form; the LAST one of each list is used only in the test split, so a model
# fine-tuned on dev has never seen it (``TEST_ONLY_PHRASINGS``).
TEST_ONLY_PHRASINGS = 1


def phrasings_for(every: Sequence[str], test: bool) -> Sequence[str]:
    """The phrasings a question may use: all of them in the test split, all but the test-only ones in dev."""
    return every if test else every[:-TEST_ONLY_PHRASINGS]


def number_format(info: LabInfo, decimals: int) -> str:
    return f"Answer with one number in {info.unit}, {rounding_phrase(decimals)}."


@dataclass
class EhrqaBuilder:
    """Turns facts of one chart into Scenarios: shared clock, text, ids and random streams."""

    chart: Chart
    population: Population
    seed: int
    test: bool = False  # the patient is in the test split (test-only phrasings allowed)
    phrasings: Mapping[str, Sequence[str]] = field(default_factory=dict)  # form -> templates (the category's)

    @classmethod
    def of(cls, given: ChartInput, phrasings: Mapping[str, Sequence[str]]) -> EhrqaBuilder:
        return cls(given.chart, given.population, given.seed, given.test, phrasings)

    @property
    def now(self) -> datetime:
        assert self.chart.record_end is not None
        return self.chart.record_end

    def rng(self, *key: object) -> random.Random:
        return rng_for(self.seed, "ehrqa", self.chart.patient_id, *key)

    def plausible(self, code: str | Iterable[str]) -> bool:
        """A "no" a clinician could ask of this patient (sex, age at now): see ``Population.plausible_for``."""
        age = whole_years_between(self.chart.birth_date, day_of(self.now))
        return self.population.plausible_for(code, self.chart.gender, age)

    def make(
        self,
        category: str,
        key: tuple[object, ...],
        phrases: str,
        fmt: str,
        answer: ExpectedAnswer,
        provenance: Iterable[str],
        entity: str | None = None,
        hard: bool = False,
        **words: object,
    ) -> Scenario:
        every = self.phrasings[phrases]
        template = self.rng(category, *key).choice(phrasings_for(every, self.test))
        question = template.format(**words)
        text = (
            f"It is now {iso(self.now)}. The patient is {self.chart.name} "
            f"(Patient/{self.chart.patient_id}).\nQuestion: {question}\nAnswer format: {fmt}"
        )
        meta: dict[str, object] = {"form": phrases, "key": [str(k) for k in key], "phrasing": every.index(template)}
        if answer.type == "boolean":
            meta["polarity"] = "yes" if answer.value else "no"
            meta["entity"] = entity if entity is not None else "/".join(str(k) for k in key[1:])
            if hard:
                meta["hard"] = True
        return Scenario(
            id=scenario_id("ehrqa", category, self.chart.patient_id, *key),
            suite="ehrqa",
            category=category,
            patient=self.chart.patient_id,
            now=iso(self.now),
            question=text,
            answer=answer,
            provenance=sorted(set(provenance)),
            meta=meta,
        )


def conditions_by_code(chart: Chart) -> dict[str, list[ConditionFact]]:
    grouped: dict[str, list[ConditionFact]] = defaultdict(list)
    for condition in chart.conditions:
        grouped[condition.code.code].append(condition)
    for items in grouped.values():
        items.sort(key=lambda c: (c.onset, c.id))
    return dict(sorted(grouped.items()))


def values_by_day(chart: Chart, code: str) -> dict[date, list[ObservationFact]]:
    grouped: dict[date, list[ObservationFact]] = defaultdict(list)
    for fact in chart.values(code):
        grouped[day_of(fact.when)].append(fact)
    return dict(sorted(grouped.items()))
