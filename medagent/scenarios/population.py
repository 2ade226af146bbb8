"""What exists across all patients: the pool "no" questions draw their negatives from.

A negative asks about a code that really occurs elsewhere in the population, so the question is
as plausible as a positive one and the agent cannot tell them apart by vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medagent.scenarios.chart import Chart


@dataclass
class Population:
    conditions: dict[str, str] = field(default_factory=dict)  # SNOMED code -> display
    medications: dict[str, str] = field(default_factory=dict)  # RxNorm code -> display
    vaccines: dict[str, str] = field(default_factory=dict)  # CVX code -> display
    treated_conditions: dict[str, str] = field(default_factory=dict)  # reasons of some medication
    names_and_births: set[tuple[str, str, str]] = field(default_factory=set)  # (given, family, birthDate)


def population_of(charts: Iterable[Chart]) -> Population:
    population = Population()
    for chart in charts:
        population.names_and_births.add((chart.given, chart.family, chart.birth_date.isoformat()))
        for condition in chart.conditions:
            population.conditions.setdefault(condition.code.code, condition.code.display)
        by_id = {c.id: c for c in chart.conditions}
        for med in chart.medications:
            population.medications.setdefault(med.code.code, med.code.display)
            for reason in med.reasons:
                if reason in by_id:
                    code = by_id[reason].code
                    population.treated_conditions.setdefault(code.code, code.display)
        for shot in chart.immunizations:
            population.vaccines.setdefault(shot.code.code, shot.code.display)
    for pool in (population.conditions, population.medications, population.vaccines, population.treated_conditions):
        ordered = dict(sorted(pool.items()))
        pool.clear()
        pool.update(ordered)
    return population
