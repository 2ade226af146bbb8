"""Core EHRQA: questions in the ten categories of the MedGemma report, answered from the bundle JSON.

Each category is one module here declaring its :class:`~medagent.scenarios.category.Category`
(``tier="core"``, ``suite="ehrqa"``). Every question a chart supports is generated (about 200 per patient on
average); the frozen set samples from them (``sampling``). Yes/no questions come in balanced pairs: each "yes"
has a "no" about a code that exists elsewhere in the population, never one the patient has under a more
specific code (``codes.IMPLIES``). The clock of every question is the end of the patient's record, stated in
the text.
"""

from __future__ import annotations

from medagent.scenarios.category import ChartInput, categories
from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population


def generate_ehrqa(
    chart: Chart, population: Population, seed: int, test: bool = False, *, since: int | None = None
) -> list[Scenario]:
    """Every EHRQA question this chart supports, in category order; every possible "no" of the boolean forms
    (``sampling.sample_ehrqa`` matches them to the positives entity by entity)."""
    given = ChartInput(chart, population, seed, "test" if test else "dev")
    out: list[Scenario] = []
    for declaration in categories(tier="core", suite="ehrqa", since=since):
        if declaration.generate is not None:
            out.extend(declaration.generate(given))
    return out
