"""All agentic task types, in a fixed order: MedAgentBench's ten, then our own four."""

from __future__ import annotations

from collections.abc import Callable

from medagent.scenarios import agentic_clinical, agentic_mab
from medagent.scenarios.agentic_common import AgenticBuilder
from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population

TASKS: dict[str, Callable[[AgenticBuilder], list[Scenario]]] = {**agentic_mab.TASKS, **agentic_clinical.TASKS}
CONDITIONAL = {"magnesium_replacement", "potassium_replacement", "hba1c_reorder", "influenza_vaccine_due",
               "discontinue_medication"}


def generate_agentic(chart: Chart, population: Population, seed: int, test: bool = False,
                     tasks: dict[str, Callable[[AgenticBuilder], list[Scenario]]] | None = None) -> list[Scenario]:
    """Candidate tasks of every type for one patient (at most one per branch or variant); ``tasks``: another
    generator per type (v3 replaces some)."""
    builder = AgenticBuilder(chart, population, seed, test)
    out: list[Scenario] = []
    for task in (tasks or TASKS).values():
        out.extend(task(builder))
    return out
