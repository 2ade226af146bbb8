"""build_v3(seed, out_dir) -> Manifest: set v3 (core carried from v2, the hard tier rebuilt, the workflow tier).

The categories come from the registry (``Category.in_set(3)``): v2's core categories (potassium replaced), the
hard categories declared for v3 in this package (v2's interval_age carried), and every workflow category.
Scenarios of categories carried from v2 get v3's ids and answer formats (``core.carry``). Deterministic: same
seed and bundles, same bytes. Layout: ``ehrqa/`` and ``agentic/`` (core), ``hard/`` and ``workflow/`` (both suites
in one file per split), ``{dev,test}.jsonl`` each, one manifest. v1 and v2 are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from medagent.scenarios.build import DEFAULT_SEED, SetFiles, core_files, load_charts, update_readme, write_set
from medagent.scenarios.models import Manifest
from medagent.scenarios.population import population_of
from medagent.scenarios.sampling import test_patients
from medagent.scenarios.tiers import generate_tier
from medagent.scenarios.v3.common import SET_NAME
from medagent.scenarios.v3.core import carry

GENERATOR_VERSION = "3.0.0"
SET_VERSION = 3
DEFAULT_OUT = Path("scenarios") / SET_NAME
# the read tasks whose "absent" answer is "none": a seventh of their items, not a quarter (v2), so that answering
# "none" to everything stays under 10% of the core agentic items that hold no decision
ABSENT_SHARES = {
    "find_mrn": {"found": 6, "not-found": 1},
    "recent_lab": {"present": 6, "absent": 1},
    "average_glucose": {"present": 6, "absent": 1},
    "latest_glucose": {"present": 6, "absent": 1},
}


def build_v3(
    seed: int = DEFAULT_SEED,
    out_dir: Path = DEFAULT_OUT,
    sources: Iterable[Path] | None = None,
    readme: Path | None = None,
) -> Manifest:
    """Generate and write set v3; returns its manifest (and replaces v3's counts block in ``readme``, by default
    ``scenarios/README.md`` beside the set when it exists)."""
    charts = load_charts(sources)
    population = population_of(charts)
    test = set(test_patients(c.patient_id for c in charts))
    core = core_files(charts, population, seed, test, SET_VERSION, shares=ABSENT_SHARES)
    built = SetFiles()
    built.available = core.available
    for name, scenarios in core.files.items():
        built.add(name, [c for c in map(carry, scenarios) if c is not None], *core.labels[name])
    for tier in ("hard", "workflow"):
        made = generate_tier(tier, charts, population, seed, test, since=SET_VERSION)
        scenarios = [c for c in map(carry, made) if c is not None]
        if scenarios:
            for split in ("dev", "test"):
                built.add(f"{tier}/{split}.jsonl", [s for s in scenarios if s.split == split], "", split, tier)
    manifest = write_set(
        out_dir, built, name=SET_NAME, version=GENERATOR_VERSION, seed=seed, patients=len(charts), test=test
    )
    target = readme or (out_dir.parent / "README.md")
    if readme is not None or target.exists():
        update_readme(target, manifest)
    return manifest
