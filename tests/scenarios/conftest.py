"""Shared fixtures: the frozen scenario sets and the raw bundles (for independent recomputation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medagent.data import iter_bundles
from medagent.scenarios.models import Manifest, Scenario
from medagent.scenarios.scenario_files import read_manifest, read_scenarios

FROZEN = Path(__file__).resolve().parents[2] / "scenarios" / "v1"


@pytest.fixture(scope="session")
def frozen_dir() -> Path:
    if not (FROZEN / "manifest.json").exists():
        pytest.skip("no frozen scenario set (run `medagent scenarios build`)")
    return FROZEN


@pytest.fixture(scope="session")
def frozen_manifest(frozen_dir: Path) -> Manifest:
    return read_manifest(frozen_dir)


@pytest.fixture(scope="session")
def frozen(frozen_dir: Path) -> list[Scenario]:
    return read_scenarios(frozen_dir)


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
