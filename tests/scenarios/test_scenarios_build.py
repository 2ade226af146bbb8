"""Deterministic generation: same seed -> same bytes and hash (also across PYTHONHASHSEED); a
different seed -> a different set; the v2 set is reproduced from its recorded seed and v1 stays frozen
(its files match the hash recorded when it was built); the README tables are the ones the manifests
render; the CLI builds and checks hashes; the one loader refuses files that no longer match."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.scenarios.build import build_scenarios, render_table, table_markers
from medagent.scenarios.cli import scenarios_app
from medagent.scenarios.models import Manifest
from medagent.scenarios.scenario_files import (
    ScenarioSetError,
    load_scenarios,
    read_manifest,
    read_scenarios,
    set_hash,
    sha256_file,
)

V1_CONTENT_HASH = "c641308c74682b47667f0821f48da5bda3598e4a147bcdd7e4c0e51fbf508d5a"  # v1 as built in 1.0.0

SMALL = 6


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.jsonl"))}


@pytest.fixture(scope="module")
def seed11(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, Path]:
    folder = tmp_path_factory.mktemp("seed11")
    return build_scenarios(seed=11, patients=SMALL, out_dir=folder, hard=False), folder


def test_same_seed_same_files(seed11: tuple[Manifest, Path], tmp_path: Path) -> None:
    first, folder = seed11
    second = build_scenarios(seed=11, patients=SMALL, out_dir=tmp_path, hard=False)
    assert first.content_hash == second.content_hash
    assert file_bytes(folder) == file_bytes(tmp_path)
    assert (folder / "manifest.json").read_bytes() == (tmp_path / "manifest.json").read_bytes()


def test_different_seed_different_set(seed11: tuple[Manifest, Path], tmp_path: Path) -> None:
    first, _ = seed11
    other = build_scenarios(seed=12, patients=SMALL, out_dir=tmp_path, hard=False)
    assert first.content_hash != other.content_hash
    assert first.test_patients == other.test_patients  # the split never depends on the seed


def test_same_hash_under_another_python_hash_seed(seed11: tuple[Manifest, Path], tmp_path: Path) -> None:
    """No set or dict iteration order leaks into the files (string hashing is randomised per process)."""
    code = ("import sys; from pathlib import Path; from medagent.scenarios.build import build_scenarios; "
            f"print(build_scenarios(seed=11, patients={SMALL}, out_dir=Path(sys.argv[1]), hard=False).content_hash)")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True, capture_output=True,
                         text=True)
    assert out.stdout.strip() == seed11[0].content_hash


def test_subset_builds_the_same_questions_for_its_patients(seed11: tuple[Manifest, Path], tmp_path: Path) -> None:
    build_scenarios(seed=11, patients=3, out_dir=tmp_path, hard=False)
    larger = {s.id: s for s in read_scenarios(seed11[1])}
    small = [s for s in read_scenarios(tmp_path) if s.suite == "ehrqa"]
    assert small
    shared = [s for s in small if s.id in larger]
    assert len(shared) >= len(small) // 2  # negatives are matched across patients: a few differ with fewer patients
    for scenario in small:
        if scenario.meta.get("polarity") is None and scenario.id in larger:
            assert larger[scenario.id].question == scenario.question
            assert larger[scenario.id].answer == scenario.answer


def test_v2_is_reproduced_from_its_seed(v2_dir: Path, tmp_path: Path) -> None:
    recorded = read_manifest(v2_dir)
    rebuilt = build_scenarios(seed=recorded.seed, patients=None, out_dir=tmp_path, readme=tmp_path / "README.md")
    assert rebuilt.name == "v2" and rebuilt.generator_version == recorded.generator_version
    assert {k: v.sha256 for k, v in rebuilt.files.items()} == {k: v.sha256 for k, v in recorded.files.items()}
    assert rebuilt.content_hash == recorded.content_hash
    assert set_hash(v2_dir) == recorded.content_hash


def test_v1_stays_frozen() -> None:
    folder = Path(__file__).resolve().parents[2] / "scenarios" / "v1"
    manifest = read_manifest(folder)
    assert manifest.generator_version == "1.0.0" and manifest.content_hash == V1_CONTENT_HASH
    for name, entry in manifest.files.items():
        assert sha256_file(folder / name) == entry.sha256, name
    assert set_hash(folder) == V1_CONTENT_HASH
    assert not any(s.id.startswith("v2-") for s in read_scenarios(folder))


def test_frozen_files_match_their_manifest(frozen_dir: Path, frozen_manifest: Manifest) -> None:
    for name, entry in frozen_manifest.files.items():
        assert sha256_file(frozen_dir / name) == entry.sha256, name
    assert set_hash(frozen_dir) == frozen_manifest.content_hash


def test_readme_table_matches_manifest(frozen_dir: Path, frozen_manifest: Manifest) -> None:
    text = (frozen_dir.parent / "README.md").read_text(encoding="utf-8")
    begin, end = table_markers(frozen_dir.name)
    block = text.split(begin, 1)[1].split(end, 1)[0].strip()
    assert block == render_table(frozen_manifest)


def test_the_loader_refuses_a_changed_file_and_names_it(tmp_path: Path) -> None:
    out = tmp_path / "set"
    build_scenarios(seed=3, patients=3, out_dir=out, hard=False)
    assert load_scenarios(out, "ehrqa", "dev")
    with (out / "ehrqa" / "dev.jsonl").open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(ScenarioSetError, match=r"ehrqa/dev.jsonl changed since its manifest"):
        load_scenarios(out, "ehrqa", "dev")
    with pytest.raises(ScenarioSetError, match="do not match its manifest"):
        set_hash(out)
    assert load_scenarios(out, "agentic", "dev")  # the other files still load
    with pytest.raises(ScenarioSetError, match="unknown split 'train'"):
        load_scenarios(out, "ehrqa", "train")


def test_manifest_counts_match_files(frozen: list, frozen_manifest: Manifest) -> None:  # type: ignore[type-arg]
    total = sum(sum(split.values()) for split in frozen_manifest.counts.values())
    assert total == len(frozen) == sum(e.count for e in frozen_manifest.files.values())
    assert sum(sum(c.values()) for c in frozen_manifest.table.values()) == len(frozen)


def test_cli_build_and_hash(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "set"
    result = runner.invoke(scenarios_app, ["build", "--seed", "3", "--patients", "3", "--out", str(out), "--no-hard"])
    assert result.exit_code == 0, result.output
    assert "| ehrqa |" in result.output and (out / "manifest.json").exists()
    assert runner.invoke(scenarios_app, ["hash", str(out)]).exit_code == 0
    with (out / "ehrqa" / "dev.jsonl").open("a") as handle:
        handle.write("\n")
    assert runner.invoke(scenarios_app, ["hash", str(out)]).exit_code == 1


def test_one_patient_build_works(tmp_path: Path) -> None:
    manifest = build_scenarios(seed=1, patients=1, out_dir=tmp_path, hard=False)
    assert manifest.patients == 1
    assert sum(manifest.counts["ehrqa"].values()) > 0


def _fake_hard(charts, population, seed, test_patients):  # type: ignore[no-untyped-def]
    """A stand-in for ``medagent.scenarios.hard.generate_hard`` (the contract: split set, ordered)."""
    from medagent.scenarios.models import ExpectedAnswer, Scenario

    test = set(test_patients)
    return [Scenario(id=f"v2-{suite}-hard_demo-{chart.patient_id[:8]}", suite=suite, tier="hard",  # type: ignore[arg-type]
                     split="test" if chart.patient_id in test else "dev", category="hard_demo",
                     patient=chart.patient_id, now="2020-01-01T00:00:00+00:00", question="q",
                     answer=ExpectedAnswer(type="boolean", value=True))
            for chart in charts for suite in ("ehrqa", "agentic")]


def test_the_hard_tier_goes_into_the_one_manifest_and_loads_by_tier(tmp_path: Path) -> None:
    manifest = build_scenarios(seed=3, patients=6, out_dir=tmp_path, hard=_fake_hard)
    assert {"hard/dev.jsonl", "hard/test.jsonl"} <= set(manifest.files)
    assert manifest.files["hard/dev.jsonl"].tier == "hard" and manifest.files["ehrqa/dev.jsonl"].tier == "core"
    assert manifest.counts["hard/ehrqa"]["dev"] + manifest.counts["hard/ehrqa"]["test"] == 6
    hard = load_scenarios(tmp_path, "agentic", "all", tier="hard")
    assert len(hard) == 6 and {s.suite for s in hard} == {"agentic"} and {s.tier for s in hard} == {"hard"}
    core = load_scenarios(tmp_path, "all", "test", tier="core")
    assert core and all(s.tier == "core" and s.split == "test" for s in core)
    assert len(load_scenarios(tmp_path, "all", "all")) == sum(e.count for e in manifest.files.values())
    assert set_hash(tmp_path) == manifest.content_hash
