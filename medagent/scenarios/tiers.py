"""Generating a tier of categories over the whole population: per-chart and population generators, then each
category's selection (``Category.select``), split and ordered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medagent.scenarios.category import ChartInput, PopulationInput, Tier, categories
from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population


def generate_tier(
    tier: Tier,
    charts: Sequence[Chart],
    population: Population,
    seed: int,
    test_patients: Iterable[str],
    *,
    since: int | None = None,
) -> list[Scenario]:
    """Every scenario of the tier's categories (``since``: those a set of that version includes), split (by
    patient; population questions as their generator splits them), selected and ordered by category, patient, id."""
    test = frozenset(test_patients)
    declared = categories(tier=tier, since=since)
    ordered = sorted(charts, key=lambda c: c.patient_id)
    everyone = PopulationInput(tuple(charts), population, seed, test)
    out: list[Scenario] = []
    for declaration in declared:
        made: list[Scenario] = []
        if declaration.generate is not None:
            for chart in ordered:
                made.extend(
                    declaration.generate(
                        ChartInput(chart, population, seed, "test" if chart.patient_id in test else "dev")
                    )
                )
        if declaration.generate_population is not None:
            made.extend(declaration.generate_population(everyone))
        out.extend(declaration.select(made, seed) if declaration.select else made)
    rank = {declaration.name: i for i, declaration in enumerate(declared)}
    return sorted(out, key=lambda s: (s.split, rank[s.category], s.patient, s.id))
