"""Deterministic generation: same seed -> same bytes and hash (also across PYTHONHASHSEED); a
different seed -> a different set; the frozen set is reproduced from its recorded seed; the README
table is the one the manifest renders; the CLI builds and checks hashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.scenarios.build import TABLE_BEGIN, TABLE_END, build_scenarios, render_table
from medagent.scenarios.cli import scenarios_app
from medagent.scenarios.models import Manifest
from medagent.scenarios.scenario_files import read_scenarios, set_hash, sha256_file

SMALL = 6


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.jsonl"))}


def test_same_seed_same_files(tmp_path: Path) -> None:
    first = build_scenarios(seed=11, patients=SMALL, out_dir=tmp_path / "a")
    second = build_scenarios(seed=11, patients=SMALL, out_dir=tmp_path / "b")
    assert first.content_hash == second.content_hash
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()


def test_different_seed_different_set(tmp_path: Path) -> None:
    first = build_scenarios(seed=11, patients=SMALL, out_dir=tmp_path / "a")
    other = build_scenarios(seed=12, patients=SMALL, out_dir=tmp_path / "b")
    assert first.content_hash != other.content_hash
    assert first.test_patients == other.test_patients  # the split never depends on the seed


def test_same_hash_across_python_hash_seeds(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from medagent.scenarios.build import build_scenarios; "
            f"print(build_scenarios(seed=5, patients={SMALL}, out_dir=Path(sys.argv[1])).content_hash)")
    hashes = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / hash_seed)], env=env, check=True,
                             capture_output=True, text=True)
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1


def test_subset_builds_the_same_questions_for_its_patients(tmp_path: Path) -> None:
    small = {s.id: s for s in read_scenarios_of(build_scenarios(seed=11, patients=3, out_dir=tmp_path / "a"),
                                                tmp_path / "a")}
    larger = {s.id: s for s in read_scenarios_of(build_scenarios(seed=11, patients=SMALL, out_dir=tmp_path / "b"),
                                                 tmp_path / "b")}
    ehrqa_small = {i: s for i, s in small.items() if s.suite == "ehrqa"}
    assert ehrqa_small
    for scenario_id, scenario in ehrqa_small.items():
        assert larger[scenario_id].question == scenario.question
        assert larger[scenario_id].answer == scenario.answer


def read_scenarios_of(manifest: Manifest, folder: Path) -> list:  # type: ignore[type-arg]
    assert manifest.files
    return read_scenarios(folder)


def test_frozen_set_is_reproduced_from_its_seed(frozen_dir: Path, frozen_manifest: Manifest, tmp_path: Path) -> None:
    rebuilt = build_scenarios(seed=frozen_manifest.seed, patients=None, out_dir=tmp_path)
    assert rebuilt.generator_version == frozen_manifest.generator_version
    assert {k: v.sha256 for k, v in rebuilt.files.items()} == {k: v.sha256 for k, v in frozen_manifest.files.items()}
    assert rebuilt.content_hash == frozen_manifest.content_hash
    for name, entry in frozen_manifest.files.items():
        assert sha256_file(frozen_dir / name) == entry.sha256, name
    assert set_hash(frozen_dir) == frozen_manifest.content_hash


def test_readme_table_matches_manifest(frozen_dir: Path, frozen_manifest: Manifest) -> None:
    text = (frozen_dir / "README.md").read_text(encoding="utf-8")
    block = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
    assert block == render_table(frozen_manifest)


def test_manifest_counts_match_files(frozen: list, frozen_manifest: Manifest) -> None:  # type: ignore[type-arg]
    total = sum(sum(split.values()) for split in frozen_manifest.counts.values())
    assert total == len(frozen) == sum(e.count for e in frozen_manifest.files.values())
    assert sum(sum(c.values()) for c in frozen_manifest.table.values()) == len(frozen)


def test_cli_build_and_hash(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "set"
    result = runner.invoke(scenarios_app, ["build", "--seed", "3", "--patients", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| ehrqa |" in result.output and (out / "manifest.json").exists()
    assert runner.invoke(scenarios_app, ["hash", str(out)]).exit_code == 0
    with (out / "ehrqa" / "dev.jsonl").open("a") as handle:
        handle.write("\n")
    assert runner.invoke(scenarios_app, ["hash", str(out)]).exit_code == 1


@pytest.mark.parametrize("patients", [1, 2])
def test_tiny_builds_work(tmp_path: Path, patients: int) -> None:
    manifest = build_scenarios(seed=1, patients=patients, out_dir=tmp_path)
    assert manifest.patients == patients
    assert sum(manifest.counts["ehrqa"].values()) > 0
