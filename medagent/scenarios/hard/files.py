"""Write the hard tier as frozen files: ``<out>/{dev,test}.jsonl`` and ``<out>/manifest.json``.

``python -m medagent.scenarios.hard.files [--seed 2026] [--out scenarios/v2/hard]`` (deterministic: same
seed, same bytes). A stop-gap until the v2 build writes the hard tier beside the other suites.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from statistics import mean

import orjson

from medagent.scenarios.build import DEFAULT_SEED, load_charts
from medagent.scenarios.hard import generate_hard
from medagent.scenarios.models import FileEntry, Manifest, Scenario
from medagent.scenarios.population import population_of
from medagent.scenarios.sampling import balance_key, test_patients
from medagent.scenarios.scenario_files import content_hash, sha256_file, write_jsonl

HARD_VERSION = "hard-1.0.0"
DEFAULT_OUT = Path("scenarios/v2/hard")


def write_hard(
    out_dir: Path = DEFAULT_OUT, seed: int = DEFAULT_SEED, sources: Iterable[Path] | None = None
) -> Manifest:
    charts = load_charts(sources)
    test = test_patients(c.patient_id for c in charts)
    scenarios = generate_hard(charts, population_of(charts), seed, test)
    entries: dict[str, FileEntry] = {}
    for split in ("dev", "test"):
        path = out_dir / f"{split}.jsonl"
        count = write_jsonl(path, [s for s in scenarios if s.split == split])
        entries[path.name] = FileEntry(sha256=sha256_file(path), count=count)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    branches: dict[str, Counter[str]] = defaultdict(Counter)
    for s in scenarios:
        counts[s.suite][s.split] += 1
        table[f"{s.suite}/{s.category}"][s.answer.type] += 1
        branches[f"{s.suite}/{s.category}"][f"{s.split}:{balance_key(s)}"] += 1
    per_patient = _per_patient(scenarios)
    manifest = Manifest(
        generator_version=HARD_VERSION,
        seed=seed,
        patients=len(charts),
        content_hash=content_hash({name: entry.sha256 for name, entry in entries.items()}),
        files=entries,
        counts={suite: dict(sorted(c.items())) for suite, c in sorted(counts.items())},
        table={k: dict(sorted(v.items())) for k, v in sorted(table.items())},
        branches={k: dict(sorted(v.items())) for k, v in sorted(branches.items())},
        available_per_patient={
            "mean": round(mean(per_patient), 1),
            "min": float(min(per_patient)),
            "max": float(max(per_patient)),
        },
        test_patients=sorted(test),
    )
    (out_dir / "manifest.json").write_bytes(
        orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"
    )
    return manifest


def _per_patient(scenarios: list[Scenario]) -> list[int]:
    """Hard items per patient (the cohort items, about the population, not counted)."""
    counts = Counter(s.patient for s in scenarios if s.meta.get("scope") != "population")
    return list(counts.values()) or [0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    manifest = write_hard(args.out, args.seed)
    print(f"hard tier: {manifest.counts} -> {args.out} (content hash {manifest.content_hash[:16]})")


if __name__ == "__main__":
    main()
