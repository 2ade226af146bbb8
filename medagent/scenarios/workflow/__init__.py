"""The workflow tier: long clinical workflows on the Synthea charts, graded at checkpoints.

``generate_workflow(charts, population, seed, test_patients)`` returns every workflow task, split by patient
(the 19 test patients of ``sampling.test_patients``), ordered by category, patient and id, deterministic.
Each category is one module (``CATEGORY``, ``PHRASINGS``, ``generate(builder)``, and the oracle's
``solve_plan(tools, scenario)``), listed in ``WORKFLOW_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType

from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population
from medagent.scenarios.workflow.common import WorkflowBuilder

WORKFLOW_MODULES = ("diabetes_previsit",)


def workflow_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in WORKFLOW_MODULES]


def category_module(category: str) -> ModuleType:
    for module in workflow_modules():
        if module.CATEGORY == category:
            return module
    raise KeyError(f"no workflow category {category!r}")


def generate_workflow(charts: Sequence[Chart], population: Population, seed: int,
                      test_patients: Iterable[str]) -> list[Scenario]:
    test = set(test_patients)
    modules = workflow_modules()
    out: list[Scenario] = []
    for chart in sorted(charts, key=lambda c: c.patient_id):
        builder = WorkflowBuilder(chart, population, seed, "test" if chart.patient_id in test else "dev")
        for module in modules:
            out.extend(module.generate(builder))
    rank = {module.CATEGORY: i for i, module in enumerate(modules)}
    return sorted(out, key=lambda s: (s.split, rank[s.category], s.patient, s.id))
