"""Write the workflow tier alone as a loadable set: ``<out>/workflow/{dev,test}.jsonl`` and ``<out>/manifest.json``.

``python -m medagent.scenarios.workflow.files [--seed 2026] [--out DIR]`` (deterministic: same seed, same bytes),
then ``medagent bench run --scenarios DIR --tier workflow``. For experiments beside the v3 build, which writes
the tier into set v3 from the same category declarations.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import orjson

from medagent.scenarios.build import DEFAULT_SEED, load_charts
from medagent.scenarios.models import FileEntry, Manifest
from medagent.scenarios.population import population_of
from medagent.scenarios.sampling import test_patients
from medagent.scenarios.scenario_files import content_hash, sha256_file, write_jsonl
from medagent.scenarios.workflow import generate_workflow

WORKFLOW_VERSION = "workflow-1.0.0"
SET_NAME = "v3-workflow"


def write_workflow(out_dir: Path, seed: int = DEFAULT_SEED, sources: Iterable[Path] | None = None) -> Manifest:
    charts = load_charts(sources)
    test = test_patients(c.patient_id for c in charts)
    scenarios = generate_workflow(charts, population_of(charts), seed, test)
    entries: dict[str, FileEntry] = {}
    for split in ("dev", "test"):
        name = f"workflow/{split}.jsonl"
        count = write_jsonl(out_dir / name, [s for s in scenarios if s.split == split])
        entries[name] = FileEntry(
            sha256=sha256_file(out_dir / name), count=count, suite="agentic", split=split, tier="workflow"
        )
    table: dict[str, Counter[str]] = defaultdict(Counter)
    branches: dict[str, Counter[str]] = defaultdict(Counter)
    counts: Counter[str] = Counter()
    per_patient = Counter(s.patient for s in scenarios)
    for s in scenarios:
        counts[s.split] += 1
        table[f"{s.suite}/{s.category}"][s.answer.type] += 1
        branches[f"{s.suite}/{s.category}"][s.branch or str(s.meta.get("variant", "-"))] += 1
    manifest = Manifest(
        name=SET_NAME,
        generator_version=WORKFLOW_VERSION,
        seed=seed,
        patients=len(charts),
        content_hash=content_hash({name: entry.sha256 for name, entry in entries.items()}),
        files=entries,
        counts={"workflow/agentic": dict(sorted(counts.items()))},
        table={k: dict(sorted(v.items())) for k, v in sorted(table.items())},
        branches={k: dict(sorted(v.items())) for k, v in sorted(branches.items())},
        available_per_patient={
            "mean": round(sum(per_patient.values()) / max(len(per_patient), 1), 1),
            "min": float(min(per_patient.values(), default=0)),
            "max": float(max(per_patient.values(), default=0)),
        },
        test_patients=sorted(test),
    )
    (out_dir / "manifest.json").write_bytes(
        orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"
    )
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    manifest = write_workflow(args.out, args.seed)
    print(f"workflow tier: {manifest.counts} -> {args.out} (content hash {manifest.content_hash[:16]})")


if __name__ == "__main__":
    main()
