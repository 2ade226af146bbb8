"""The one reader and writer of frozen scenario sets: JSONL files, the manifest and the set's content hash.

A set is a folder with ``manifest.json`` and the JSONL files it lists (``scenarios/v1/``,
``scenarios/v2/``...). ``manifest.files`` maps each file's path inside the set to its sha256, count and
(since v2) the suite, split and tier it holds; for a v1 manifest these come from the path
(``<suite>/<split>.jsonl``, tier core). Loading checks every file against its recorded sha256, and
``set_hash`` recomputes the content hash from the files and refuses a set whose files no longer match
its manifest, so a result never records the hash of a set it did not run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from medagent.scenarios.models import FileEntry, Manifest, Scenario

ALWAYS_WRITTEN = ("id", "suite", "split", "category", "patient", "now", "question", "answer", "read_only")
SUITES = ("ehrqa", "agentic")
SPLITS = ("dev", "test")
TIERS = ("core", "hard", "workflow")


class ScenarioSetError(ValueError):
    """The scenario folder or a file in it is missing, malformed, or does not match its manifest."""


# ---------- writing ----------


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


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_set(
    out: Path,
    files: dict[str, list[Scenario]],
    *,
    name: str,
    generator_version: str,
    seed: int,
    patients: int,
    test_patients: list[str],
    evaluation_only: bool = False,
) -> Manifest:
    """A small derived set (a rephrased dev split, the quickstart's questions): its files and a manifest with
    their hashes, counts and labels (suite, split, tier from the scenarios). A build of the frozen sets writes
    its own, fuller manifest (``scenarios.build``)."""
    out.mkdir(parents=True, exist_ok=True)
    entries: dict[str, FileEntry] = {}
    counts: dict[str, dict[str, int]] = {}
    for path, scenarios in files.items():
        count = write_jsonl(out / path, scenarios)
        suites = {s.suite for s in scenarios}
        entries[path] = FileEntry(
            sha256=sha256_file(out / path),
            count=count,
            suite=suites.pop() if len(suites) == 1 else None,
            split=scenarios[0].split if scenarios else None,
            tier=scenarios[0].tier if scenarios else "core",
        )
        for scenario in scenarios:
            key = scenario.suite if scenario.tier == "core" else f"{scenario.tier}/{scenario.suite}"
            counts.setdefault(key, {"dev": 0, "test": 0})[scenario.split] += 1
    manifest = Manifest(
        name=name,
        generator_version=generator_version,
        seed=seed,
        patients=patients,
        content_hash=content_hash({path: entry.sha256 for path, entry in entries.items()}),
        files=entries,
        counts=counts,
        table={},
        branches={},
        available_per_patient={},
        test_patients=test_patients,
        evaluation_only=evaluation_only,
    )
    (out / "manifest.json").write_bytes(
        orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"
    )
    return manifest


def content_hash(file_hashes: dict[str, str]) -> str:
    """One hash for a whole set: over 'relative/path:sha256' lines in path order."""
    text = "".join(f"{name}:{digest}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


# ---------- reading ----------


def read_manifest(folder: Path) -> Manifest:
    path = folder / "manifest.json"
    if not path.exists():
        raise ScenarioSetError(f"no manifest.json in {folder} (not a scenario set; run `medagent scenarios build`)")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ScenarioSetError(f"{path}: not a valid manifest: {exc.errors()[0]['msg']}") from None


def file_hashes(folder: Path, manifest: Manifest | None = None) -> dict[str, str]:
    """sha256 of every file the manifest lists, as the files are now."""
    manifest = manifest or read_manifest(folder)
    missing = [name for name in manifest.files if not (folder / name).exists()]
    if missing:
        raise ScenarioSetError(f"scenario file(s) listed in {folder}/manifest.json not found: {', '.join(missing)}")
    return {name: sha256_file(folder / name) for name in manifest.files}


def recomputed_hash(folder: Path) -> str:
    """The content hash of the files as they are now (``medagent scenarios hash`` compares it)."""
    return content_hash(file_hashes(folder))


def set_hash(folder: Path) -> str:
    """The content hash of the set in ``folder``, recomputed from its files; refuses files changed since the build."""
    manifest = read_manifest(folder)
    actual = content_hash(file_hashes(folder, manifest))
    if actual != manifest.content_hash:
        raise ScenarioSetError(
            f"the files of {folder} do not match its manifest (content hash {actual[:16]}, "
            f"manifest {manifest.content_hash[:16]}): rebuild the set or restore the files"
        )
    return actual


def entry_labels(name: str, entry: FileEntry) -> tuple[str, str, str]:
    """(suite, split, tier) of one listed file; suite "all" for a file holding both suites (the hard tier).

    From the manifest entry (v2 on); a v1 manifest records neither, so they come from the path
    (``<suite>/<split>.jsonl``)."""
    if entry.split is not None:
        return entry.suite or "all", entry.split, entry.tier
    parts = Path(name).with_suffix("").parts
    return (parts[-2] if len(parts) >= 2 else "all"), parts[-1], entry.tier


@dataclass(frozen=True)
class ScenarioSet:
    """A frozen set on disk: its folder and manifest."""

    folder: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name or self.folder.name

    def files(self, suite: str = "all", split: str = "all", tier: str = "all") -> list[str]:
        _check_choice("suite", suite, SUITES)
        _check_choice("split", split, SPLITS)
        _check_choice("tier", tier, TIERS)
        chosen = []
        for name, entry in sorted(self.manifest.files.items()):
            labels = entry_labels(name, entry)
            if all(
                want == "all" or got in (want, "all") for want, got in zip((suite, split, tier), labels, strict=False)
            ):
                chosen.append(name)
        return chosen

    def load(
        self, suite: str = "all", split: str = "all", tier: str = "all", limit: int | None = None
    ) -> list[Scenario]:
        """Scenarios of the chosen suites, splits and tiers (files checked against the manifest)."""
        scenarios: list[Scenario] = []
        for name in self.files(suite, split, tier):
            scenarios.extend(_read_checked(self.folder / name, self.manifest.files[name].sha256))
        scenarios = [s for s in scenarios if suite in ("all", s.suite) and split in ("all", s.split)]
        return round_robin(scenarios, limit) if limit is not None else scenarios


def open_set(folder: Path) -> ScenarioSet:
    return ScenarioSet(folder, read_manifest(folder))


def load_scenarios(
    folder: Path, suite: str = "all", split: str = "test", limit: int | None = None, tier: str = "all"
) -> list[Scenario]:
    """Scenarios of one set; ``limit`` takes them round-robin across categories."""
    return open_set(folder).load(suite, split, tier, limit)


def read_scenarios(path: Path) -> list[Scenario]:
    """All scenarios of one JSONL file, or of every file a set's manifest lists (unchecked: for tools and tests)."""
    if path.is_dir():
        manifest = read_manifest(path)
        return [s for name in sorted(manifest.files) for s in _parse(path / name)]
    return _parse(path)


def _parse(path: Path) -> list[Scenario]:
    if not path.exists():
        raise ScenarioSetError(f"scenario file not found: {path} (run `medagent scenarios build`)")
    return _parse_bytes(path, path.read_bytes())


def _parse_bytes(path: Path, data: bytes) -> list[Scenario]:
    out = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Scenario.model_validate_json(line))
        except ValidationError as exc:
            raise ScenarioSetError(f"{path}:{number}: not a valid scenario: {exc.errors()[0]['msg']}") from None
    return out


def _read_checked(path: Path, sha256: str) -> list[Scenario]:
    if not path.exists():
        raise ScenarioSetError(f"scenario file not found: {path} (run `medagent scenarios build`)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ScenarioSetError(
            f"{path} changed since its manifest was written (sha256 differs): rebuild the set or restore the file"
        )
    return _parse_bytes(path, data)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value != "all" and value not in allowed:
        raise ScenarioSetError(f"unknown {name} {value!r}; choose one of {', '.join((*allowed, 'all'))}")


def round_robin(scenarios: list[Scenario], limit: int) -> list[Scenario]:
    """At most ``limit`` scenarios, taken in turn from each suite/category (file order within one)."""
    groups: dict[str, list[Scenario]] = defaultdict(list)
    for scenario in scenarios:
        groups[f"{scenario.suite}/{scenario.category}"].append(scenario)
    picked: list[Scenario] = []
    queues = [list(group) for group in groups.values()]
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked
