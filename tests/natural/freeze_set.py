"""Freeze the natural-phrasing set: validate every row as a medagent Scenario and write the set's files and
manifest (sha256 per file, counts, content hash, its 19 test patients, ``evaluation_only``) with the project's
one set writer. Run after ``compute_answers.py --write``::

    python tests/natural/compute_answers.py --write && python tests/natural/freeze_set.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medagent.scenarios.models import Manifest, Scenario
from medagent.scenarios.scenario_files import write_set

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compute_answers import DEFAULT_SET, SET_FILES, set_rows  # noqa: E402  (a script: its folder is put on the path first)

NAME = "natural"
GENERATOR = "natural-1.0 (written by hand from the raw charts; answers by tests/natural/compute_answers.py)"


def freeze(folder: Path = DEFAULT_SET) -> Manifest:
    files = {name: [Scenario.model_validate(row) for row in rows]
             for name, rows in ((p.relative_to(folder).as_posix(), r) for p, r in set_rows(folder).items())}
    if sorted(files) != sorted(SET_FILES):
        raise SystemExit(f"{folder}: expected {', '.join(SET_FILES)}")
    patients = sorted({s.patient for scenarios in files.values() for s in scenarios})
    return write_set(folder, files, name=NAME, generator_version=GENERATOR, seed=0, patients=len(patients),
                     test_patients=patients, evaluation_only=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("set", type=Path, nargs="?", default=DEFAULT_SET)
    manifest = freeze(parser.parse_args(argv).set)
    print(f"{manifest.name}: {sum(e.count for e in manifest.files.values())} scenarios, "
          f"content hash {manifest.content_hash[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
