"""The workflow tier: long clinical workflows on the Synthea charts, graded at checkpoints.

Each category is one module of this package that declares itself (``common.declare``: name, order, generator,
oracle, phrasings, the branch to balance); the registry (``medagent.scenarios.category``) finds them.
``generate_workflow(charts, population, seed, test_patients)`` returns every workflow task, split by patient
(the test patients of ``sampling.test_patients``), ordered by category, patient and id, deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medagent.scenarios.category import PopulationInput, categories
from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population


def generate_workflow(
    charts: Sequence[Chart], population: Population, seed: int, test_patients: Iterable[str]
) -> list[Scenario]:
    given = PopulationInput(charts=charts, population=population, seed=seed, test_patients=frozenset(test_patients))
    out: list[Scenario] = []
    declared = categories(tier="workflow")
    for category in declared:
        assert category.generate_population is not None
        out.extend(category.generate_population(given))
    rank = {category.name: i for i, category in enumerate(declared)}
    return sorted(out, key=lambda s: (s.split, rank[s.category], s.patient, s.id))
