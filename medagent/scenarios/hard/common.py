"""What every hard-tier generator shares: phrasings with a test-only one, the split, the scenario layout.

Phrasings: every category has at least five; the last one is used only in the test split, so a model
fine-tuned on dev cannot score by matching templates. The split is by patient (``test_patients``), except
for cohort questions, which are about the whole population (see ``cohort.py``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medagent.scenarios.category import ChartInput
from medagent.scenarios.chart import Chart
from medagent.scenarios.clock import iso, round_to_quarter_hour
from medagent.scenarios.identity import SET_TAG, rng_for, scenario_id
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance
from medagent.scenarios.population import Population

FUTURE_NOTE = "Results dated after now are not yet known: ignore them."


def pick_phrasing(rng: random.Random, phrasings: Sequence[str], split: str) -> tuple[int, str]:
    """(index, template): dev draws from all but the last phrasing; test from all of them."""
    if len(phrasings) < 5:
        raise ValueError(f"a hard category needs at least 5 phrasings, got {len(phrasings)}")
    allowed = len(phrasings) if split == "test" else len(phrasings) - 1
    index = rng.randrange(allowed)
    return index, phrasings[index]


def exact_integer(value: int, unit: str | None = None) -> ExpectedAnswer:
    """A count, a number of days or an age: exact (tolerance 0)."""
    return ExpectedAnswer(type="number", value=float(value), unit=unit, tolerance=Tolerance(abs=0.0))


@dataclass
class HardBuilder:
    """One chart's hard-tier scenarios: seeded streams, ids, the split and the text layout."""

    chart: Chart
    population: Population
    seed: int
    split: str
    tag: str = SET_TAG  # the set whose ids it writes (v2, v3)

    @classmethod
    def of(cls, given: ChartInput) -> HardBuilder:
        return cls(given.chart, given.population, given.seed, given.split)

    def rng(self, category: str, *key: object) -> random.Random:
        return rng_for(self.seed, "hard", category, self.chart.patient_id, *key)

    def id_for(self, suite: str, category: str, *key: object) -> str:
        """The id ``ehrqa``/``agentic`` gives the scenario of this key (setup resources derive their ids from it)."""
        return scenario_id(suite, category, self.chart.patient_id, *key, tag=self.tag)

    @property
    def end(self) -> datetime:
        """The end of the record (or the death): the latest possible now."""
        assert self.chart.record_end is not None
        end = self.chart.record_end
        return min(end, self.chart.deceased) if self.chart.deceased is not None else end

    @property
    def alive_at_end(self) -> bool:
        return self.chart.deceased is None

    def clock(self, moment: datetime) -> datetime:
        return round_to_quarter_hour(moment)

    def phrasing(self, category: str, key: Sequence[object], phrasings: Sequence[str]) -> tuple[int, str]:
        return pick_phrasing(self.rng(category, "phrasing", *key), phrasings, self.split)

    def ehrqa(
        self,
        category: str,
        key: Sequence[object],
        *,
        now: datetime,
        question: str,
        answer_format: str,
        answer: ExpectedAnswer,
        phrasing: int,
        provenance: Iterable[str] = (),
        setup: Iterable[dict[str, Any]] = (),
        meta: dict[str, Any] | None = None,
    ) -> Scenario:
        """A read-only question about this patient at ``now``."""
        text = (
            f"It is now {iso(now)}. The patient is {self.chart.name} (Patient/{self.chart.patient_id}).\n"
            f"Question: {question}\nAnswer format: {answer_format}"
        )
        return Scenario(
            id=scenario_id("ehrqa", category, self.chart.patient_id, *key, tag=self.tag),
            suite="ehrqa",
            split=self.split,
            category=category,
            patient=self.chart.patient_id,
            now=iso(now),
            question=text,
            answer=answer,
            provenance=sorted(set(provenance)),
            setup=list(setup),
            tier="hard",
            meta={
                "form": meta.pop("form") if meta and "form" in meta else category,
                "key": [str(k) for k in key],
                "phrasing": phrasing,
                **(meta or {}),
            },
        )

    def agentic(
        self,
        category: str,
        key: Sequence[object],
        *,
        now: datetime,
        instruction: str,
        context: str,
        answer_format: str,
        answer: ExpectedAnswer,
        phrasing: int,
        writes: Iterable[Any] = (),
        branch: str | None = None,
        variant: str | None = None,
        setup: Iterable[dict[str, Any]] = (),
        provenance: Iterable[str] = (),
        meta: dict[str, Any] | None = None,
    ) -> Scenario:
        """A task (it may write) for this patient at ``now``; patients are named by MRN unless the task says else."""
        writes = list(writes)
        text = (
            f"{instruction}\n\nContext: It is now {iso(now)}. {context}".rstrip()
            + f"\n\nAnswer format: {answer_format}"
        )
        info: dict[str, Any] = {"mrn": self.chart.mrn, "phrasing": phrasing, **(meta or {})}
        if variant:
            info["variant"] = variant
        return Scenario(
            id=scenario_id("agentic", category, self.chart.patient_id, *key, tag=self.tag),
            suite="agentic",
            split=self.split,
            category=category,
            patient=self.chart.patient_id,
            now=iso(now),
            question=text,
            answer=answer,
            provenance=sorted(set(provenance)),
            expected_writes=writes,
            read_only=not writes,
            branch=branch,
            setup=list(setup),
            meta=info,
            tier="hard",
        )
