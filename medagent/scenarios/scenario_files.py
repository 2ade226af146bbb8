"""Reading and writing scenario JSONL files and their content hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from medagent.scenarios.models import Manifest, Scenario

ALWAYS_WRITTEN = ("id", "suite", "split", "category", "patient", "now", "question", "answer", "read_only")


def scenario_line(scenario: Scenario) -> bytes:
    """One compact JSON line: defaults left out, except the fields every reader looks at."""
    full = scenario.model_dump(mode="json")
    lean = scenario.model_dump(mode="json", exclude_defaults=True)
    ordered: dict[str, Any] = {key: lean.get(key, full[key]) for key in ALWAYS_WRITTEN}
    ordered.update({key: value for key, value in lean.items() if key not in ordered})
    return orjson.dumps(ordered)


def write_jsonl(path: Path, scenarios: Iterable[Scenario]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as handle:
        for scenario in scenarios:
            handle.write(scenario_line(scenario) + b"\n")
            count += 1
    return count


def read_scenarios(path: Path) -> list[Scenario]:
    """All scenarios of one JSONL file (or of every *.jsonl under a folder, sorted by path)."""
    files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
    return [Scenario.model_validate(orjson.loads(line)) for file in files
            for line in file.read_bytes().splitlines() if line.strip()]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_hash(file_hashes: dict[str, str]) -> str:
    """One hash for a whole set: over 'relative/path:sha256' lines in path order."""
    text = "".join(f"{name}:{digest}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(folder: Path) -> Manifest:
    return Manifest.model_validate_json((folder / "manifest.json").read_bytes())


def set_hash(folder: Path) -> str:
    """The content hash of the frozen set in ``folder``, recomputed from its files (for results)."""
    manifest = read_manifest(folder)
    return content_hash({name: sha256_file(folder / name) for name in manifest.files})
