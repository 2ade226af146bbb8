"""What exists across all patients: the pool "no" questions draw their negatives from.

A negative asks about a code that really occurs elsewhere in the population, so the question is
as plausible as a positive one and the agent cannot tell them apart by vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medagent.scenarios.chart import Chart
from medagent.scenarios.clock import day_of, whole_years_between

SEX_SPECIFIC_MIN = 3  # a code all of whose (at least 3) patients share one sex is not asked of the other sex
AGE_FRACTION = 0.75  # nor of a patient younger than 3/4 of the youngest age at which anyone had it


@dataclass
class Population:
    conditions: dict[str, str] = field(default_factory=dict)  # SNOMED code -> display
    medications: dict[str, str] = field(default_factory=dict)  # RxNorm code -> display
    vaccines: dict[str, str] = field(default_factory=dict)  # CVX code -> display
    treated_conditions: dict[str, str] = field(default_factory=dict)  # reasons of some medication
    names_and_births: set[tuple[str, str, str]] = field(default_factory=set)  # (given, family, birthDate)
    # who has each condition / medication code: patients by sex, and the youngest age (whole years) at onset/order
    sexes: dict[str, dict[str, int]] = field(default_factory=dict)
    youngest: dict[str, int] = field(default_factory=dict)

    def plausible_for(self, codes: str | Iterable[str], gender: str, age: int) -> bool:
        """Whether a clinician could ask about this code (or any of a group's codes, counted together) for a
        patient of this sex and age (no pregnancy questions about men, no dementia drug about a child): not when 3
        or more patients have it and all are of the other sex, nor when the patient is younger than 3/4 of the
        youngest age at which anyone had it."""
        codes = [codes] if isinstance(codes, str) else [c for c in codes if c in self.youngest]
        by_sex = {sex: sum(self.sexes.get(c, {}).get(sex, 0) for c in codes) for sex in ("female", "male")}
        if sum(by_sex.values()) >= SEX_SPECIFIC_MIN and not by_sex.get(gender):
            return False
        return age >= AGE_FRACTION * min((self.youngest.get(c, 0) for c in codes), default=0)


def population_of(charts: Iterable[Chart]) -> Population:
    population = Population()
    for chart in charts:
        population.names_and_births.add((chart.given, chart.family, chart.birth_date.isoformat()))
        for condition in chart.conditions:
            population.conditions.setdefault(condition.code.code, condition.code.display)
        by_id = {c.id: c for c in chart.conditions}
        for code in {c.code.code for c in chart.conditions} | {m.code.code for m in chart.medications}:
            by_sex = population.sexes.setdefault(code, {})
            by_sex[chart.gender] = by_sex.get(chart.gender, 0) + 1
        for code, moment in [
            *((c.code.code, c.onset) for c in chart.conditions),
            *((m.code.code, m.authored) for m in chart.medications),
        ]:
            age = whole_years_between(chart.birth_date, day_of(moment))
            population.youngest[code] = min(age, population.youngest.get(code, age))
        for med in chart.medications:
            population.medications.setdefault(med.code.code, med.code.display)
            for reason in med.reasons:
                if reason in by_id:
                    treated = by_id[reason].code
                    population.treated_conditions.setdefault(treated.code, treated.display)
        for shot in chart.immunizations:
            population.vaccines.setdefault(shot.code.code, shot.code.display)
    for pool in (population.conditions, population.medications, population.vaccines, population.treated_conditions):
        ordered = dict(sorted(pool.items()))
        pool.clear()
        pool.update(ordered)
    return population
