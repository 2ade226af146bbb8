"""The hard tier: categories that need several tool calls or a computation over many rows.

Each category is one module here declaring its :class:`~medagent.scenarios.category.Category` (``tier="hard"``).
``generate_hard(charts, population, seed, test_patients)`` returns every hard scenario, already split
(``split`` set: by patient, cohort questions by the year of now), ordered by category, patient and id, and
deterministic (same inputs, same scenarios). ``charts`` must be every patient on the server: the cohort
questions are about the whole population.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population
from medagent.scenarios.tiers import generate_tier


def generate_hard(
    charts: Sequence[Chart],
    population: Population,
    seed: int,
    test_patients: Iterable[str],
    *,
    since: int | None = None,
) -> list[Scenario]:
    """Every scenario of the hard tier's categories (``since``: those a set of that version includes)."""
    return generate_tier("hard", charts, population, seed, test_patients, since=since)
