"""build_v3(seed, out_dir) -> Manifest: set v3 (core carried from v2, the hard tier rebuilt, the workflow tier).

Deterministic: same seed and bundles, same bytes. Layout: ``ehrqa/`` and ``agentic/`` (core), ``hard/`` (both
suites) and ``workflow/`` (both suites, when a workflow category is declared), ``{dev,test}.jsonl`` each, one
manifest. v1 and v2 are untouched (``medagent.scenarios.build`` builds v2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from medagent.scenarios.build import (
    DEFAULT_SEED,
    SetFiles,
    core_files,
    load_charts,
    update_readme,
    write_set,
)
from medagent.scenarios.chart import Chart
from medagent.scenarios.hard import intervals
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.models import Manifest, Scenario
from medagent.scenarios.population import Population, population_of
from medagent.scenarios.sampling import test_patients
from medagent.scenarios.v3 import (
    abstention,
    bp_workup,
    cohort,
    counting,
    disambiguation,
    injection,
    safety,
    temporal,
)
from medagent.scenarios.v3.common import SET_NAME, builder
from medagent.scenarios.v3.core import V3_TASKS, carry, strict_numbers

GENERATOR_VERSION = "3.0.0"
DEFAULT_OUT = Path("scenarios") / SET_NAME
PerChart = Callable[[HardBuilder], list[Scenario]]
Select = Callable[[list[Scenario], int], list[Scenario]]
# the hard tier in file order: category -> (per-chart generator, selection over all candidates or None)
HARD: dict[str, tuple[PerChart, Select | None]] = {
    temporal.CATEGORY: (temporal.generate, None),
    counting.CATEGORY: (counting.generate, None),
    intervals.CATEGORY: (lambda b: [s.model_copy(update={"answer": strict_numbers(s.answer)})
                                    for s in intervals.generate(builder(b))], None),
    abstention.CATEGORY: (abstention.generate, abstention.select),
    disambiguation.CATEGORY: (disambiguation.generate, disambiguation.select),
    safety.CATEGORY: (safety.generate, safety.select),
    bp_workup.CATEGORY: (bp_workup.generate, bp_workup.select),
    injection.CATEGORY: (injection.generate, None),
}
HARD_ORDER = [*HARD, cohort.CATEGORY]


def generate_hard_v3(charts: list[Chart], population: Population, seed: int, test: set[str]) -> list[Scenario]:
    """Every v3 hard item, split by patient (cohort items by date), selected and ordered."""
    out: list[Scenario] = []
    for category, (generate, select) in HARD.items():
        made: list[Scenario] = []
        for chart in sorted(charts, key=lambda c: c.patient_id):
            split = "test" if chart.patient_id in test else "dev"
            made.extend(generate(HardBuilder(chart, population, seed, split)))
        out.extend(select(made, seed) if select else made)
    out.extend(cohort.generate_cohort(charts, seed, test))
    rank = {category: i for i, category in enumerate(HARD_ORDER)}
    return sorted(out, key=lambda s: (s.split, rank[s.category], s.patient, s.id))


def build_v3(seed: int = DEFAULT_SEED, out_dir: Path = DEFAULT_OUT, sources: Iterable[Path] | None = None,
             readme: Path | None = None, workflow: Callable[..., list[Scenario]] | None = None) -> Manifest:
    """Generate and write set v3; returns its manifest. ``workflow``: the workflow tier's generator
    ``(charts, population, seed, test) -> scenarios`` (none: no workflow files)."""
    charts = load_charts(sources)
    population = population_of(charts)
    test = set(test_patients(c.patient_id for c in charts))
    core = core_files(charts, population, seed, test, tasks=V3_TASKS)
    built = SetFiles()
    built.available = core.available
    for name, scenarios in core.files.items():
        built.add(name, [carry(s) for s in scenarios], *core.labels[name])
    hard = generate_hard_v3(charts, population, seed, test)
    tiers = {"hard": hard, "workflow": workflow(charts, population, seed, test) if workflow else []}
    for tier, scenarios in tiers.items():
        if scenarios:
            for split in ("dev", "test"):
                built.add(f"{tier}/{split}.jsonl", [s for s in scenarios if s.split == split], "", split, tier)
    manifest = write_set(out_dir, built, name=SET_NAME, version=GENERATOR_VERSION, seed=seed, patients=len(charts),
                         test=test)
    target = readme or (out_dir.parent / "README.md")
    if target.exists() or readme is not None:
        update_readme(target, manifest)
    return manifest
