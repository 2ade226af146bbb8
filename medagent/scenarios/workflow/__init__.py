"""The workflow tier: long clinical workflows on the Synthea charts, graded at checkpoints.

``generate_workflow(charts, population, seed, test_patients)`` returns every workflow task, split by patient
(the 19 test patients of ``sampling.test_patients``), ordered by category, patient and id, deterministic.
Each category is one module (``CATEGORY``, ``PHRASINGS``, ``generate(builder)``, and the oracle's
``solve_plan(tools, scenario)``), listed in ``WORKFLOW_MODULES``. A module whose branches the charts make
unequal names them in ``BALANCE`` (a function of a scenario): per split, every value keeps as many items as
the rarest one has (the kept ones chosen by a seeded hash of their ids); no category keeps more than ``CAP``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType

from medagent.scenarios.chart import Chart
from medagent.scenarios.identity import short_hash
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import Population
from medagent.scenarios.workflow.common import WorkflowBuilder

WORKFLOW_MODULES = ("diabetes_previsit", "renal_dose_review", "anticoagulation_review",
                    "hypertension_protocol", "discharge_reconciliation",
                    "hemoglobin_followup", "care_gaps", "cardiology_referral")


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
    for module in modules:
        out = balanced(out, module.CATEGORY, getattr(module, "BALANCE", lambda s: ""), seed)
    rank = {module.CATEGORY: i for i, module in enumerate(modules)}
    return sorted(out, key=lambda s: (s.split, rank[s.category], s.patient, s.id))


CAP = {"dev": 30, "test": 12}
"""At most this many items of one category per split (the tier's categories weigh alike)."""


def balanced(items: list[Scenario], category: str, key: Callable[[Scenario], str], seed: int) -> list[Scenario]:
    """The category's items with every branch value kept as often as the rarest (per split), at most ``CAP`` in
    all, the rest dropped."""
    keep: set[str] = set()
    mine = [s for s in items if s.category == category]
    for split in ("dev", "test"):
        groups: dict[str, list[Scenario]] = {}
        for scenario in mine:
            if scenario.split == split:
                groups.setdefault(key(scenario), []).append(scenario)
        if not groups:
            continue
        size = min(min(len(group) for group in groups.values()), CAP[split] // len(groups))
        for group in groups.values():
            ranked = sorted(group, key=lambda s: short_hash(seed, s.id))
            keep.update(s.id for s in ranked[:size])
    return [s for s in items if s.category != category or s.id in keep]
