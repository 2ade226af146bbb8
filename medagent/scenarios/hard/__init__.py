"""The hard tier: nine categories that need several tool calls or a computation over many rows.

``generate_hard(charts, population, seed, test_patients)`` returns every hard scenario, already split
(``split`` set: by patient, cohort questions by the year of now), ordered by category, patient and id, and
deterministic (same inputs, same scenarios). ``charts`` must be every patient on the server: the cohort
questions are about the whole population.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from medagent.scenarios.chart import Chart
from medagent.scenarios.hard import (
    abstention,
    cohort,
    counting,
    disambiguation,
    injection,
    intervals,
    safety,
    temporal,
    workflow,
)
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population

PER_CHART: dict[str, Callable[[HardBuilder], list[Scenario]]] = {
    temporal.CATEGORY: temporal.generate,
    counting.CATEGORY: counting.generate,
    intervals.CATEGORY: intervals.generate,
    abstention.CATEGORY: abstention.generate,
    disambiguation.CATEGORY: disambiguation.generate,
    safety.CATEGORY: safety.generate,
    workflow.CATEGORY: workflow.generate,
    injection.CATEGORY: injection.generate,
}
HARD_CATEGORIES = [*PER_CHART, cohort.CATEGORY]
SUITE_OF = {temporal.CATEGORY: "ehrqa", counting.CATEGORY: "ehrqa", intervals.CATEGORY: "ehrqa",
            abstention.CATEGORY: "ehrqa", cohort.CATEGORY: "ehrqa", disambiguation.CATEGORY: "agentic",
            safety.CATEGORY: "agentic", workflow.CATEGORY: "agentic", injection.CATEGORY: "agentic"}


def generate_hard(charts: Sequence[Chart], population: Population, seed: int,
                  test_patients: Iterable[str]) -> list[Scenario]:
    test = set(test_patients)
    out: list[Scenario] = []
    for chart in sorted(charts, key=lambda c: c.patient_id):
        builder = HardBuilder(chart, population, seed, "test" if chart.patient_id in test else "dev")
        for generate in PER_CHART.values():
            out.extend(generate(builder))
    out.extend(cohort.generate_cohort(charts, seed, test))
    rank = {category: i for i, category in enumerate(HARD_CATEGORIES)}
    return sorted(out, key=lambda s: (s.split, rank[s.category], s.patient, s.id))
