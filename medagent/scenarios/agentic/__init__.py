"""Core agentic tasks: MedAgentBench's ten task types, re-based on the Synthea patients, then four of our own.

Each task type is one module here declaring its :class:`~medagent.scenarios.category.Category`
(``tier="core"``, ``suite="agentic"``). Where Synthea v2.4 lacks what a task needs, the task says what it uses
instead (scenarios/README.md): magnesium and low potassium come from setup fixtures; the "average over 24 h"
becomes an average over 730 days because no code in the data has two results within 24 h; the "latest value
within 24 h" asks about metabolic-panel labs (creatinine, sodium, ...) instead of magnesium. Every conditional
task yields candidates on both branches; ``sampling`` balances them 1:1.
"""

from __future__ import annotations

from medagent.scenarios.category import ChartInput, categories
from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population


def generate_agentic(
    chart: Chart, population: Population, seed: int, test: bool = False, *, since: int | None = None
) -> list[Scenario]:
    """Candidate tasks of every type for one patient (at most one per branch or variant)."""
    given = ChartInput(chart, population, seed, "test" if test else "dev")
    out: list[Scenario] = []
    for declaration in categories(tier="core", suite="agentic", since=since):
        if declaration.generate is not None:
            out.extend(declaration.generate(given))
    return out
