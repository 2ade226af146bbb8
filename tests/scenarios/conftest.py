"""Shared fixtures: the frozen scenario sets (v1 frozen data, v2 the generator's) and the raw bundles.

``frozen_dir`` / ``frozen_manifest`` / ``frozen`` are parametrized over the three sets, so every property of a
frozen set is checked on v1, v2 and v3; ``v2_dir`` / ``v2`` are for the v2 rules, ``v3_dir`` / ``v3`` for v3's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medagent.data import iter_bundles
from medagent.scenarios.models import Manifest, Scenario
from medagent.scenarios.scenario_files import read_manifest, read_scenarios

SETS = Path(__file__).resolve().parents[2] / "scenarios"
FROZEN = SETS / "v1"
V2 = SETS / "v2"


def _set_dir(name: str) -> Path:
    folder = SETS / name
    if not (folder / "manifest.json").exists():
        pytest.fail(f"no frozen scenario set {folder} (run `medagent scenarios build`)")
    return folder


@pytest.fixture(scope="session", params=["v1", "v2", "v3"])
def frozen_dir(request: pytest.FixtureRequest) -> Path:
    return _set_dir(request.param)


@pytest.fixture(scope="session")
def frozen_manifest(frozen_dir: Path) -> Manifest:
    return read_manifest(frozen_dir)


_loaded: dict[Path, list[Scenario]] = {}


def _load(folder: Path) -> list[Scenario]:
    if folder not in _loaded:
        _loaded[folder] = read_scenarios(folder)
    return _loaded[folder]


@pytest.fixture(scope="session")
def frozen(frozen_dir: Path) -> list[Scenario]:
    return _load(frozen_dir)


@pytest.fixture(scope="session")
def v2_dir() -> Path:
    return _set_dir("v2")


@pytest.fixture(scope="session")
def v2(v2_dir: Path) -> list[Scenario]:
    return [s for s in _load(v2_dir) if s.tier == "core"]


@pytest.fixture(scope="session")
def v3_dir() -> Path:
    return _set_dir("v3")


@pytest.fixture(scope="session")
def v3(v3_dir: Path) -> list[Scenario]:
    return _load(v3_dir)


@pytest.fixture(scope="session")
def raw_bundles() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Patient id -> resourceType -> resources, straight from the packaged JSON."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for _, bundle in iter_bundles():
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entry in bundle["entry"]:
            by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
        out[by_type["Patient"][0]["id"]] = by_type
    return out
