"""Which frozen scenario set a bench command uses: ``--set v1|v2`` (default v2) or ``--scenarios FOLDER``.

Loading and hashing live in ``medagent.scenarios.scenario_files`` (one loader, one ``set_hash``);
this module only maps set names to folders of the repository's ``scenarios/``, which the package
holds as ``medagent/scenario_sets`` (a symlink in a checkout, the files themselves in a wheel).
"""

from __future__ import annotations

from pathlib import Path

from medagent.scenarios.scenario_files import (
    SPLITS,
    SUITES,
    TIERS,
    ScenarioSet,
    ScenarioSetError,
    load_scenarios,
    open_set,
    set_hash,
)

__all__ = [
    "DEFAULT_SET",
    "SPLITS",
    "SUITES",
    "TIERS",
    "ScenarioSet",
    "ScenarioSetError",
    "default_scenarios_dir",
    "load_scenarios",
    "open_set",
    "scenarios_root",
    "set_dir",
    "set_hash",
    "set_names",
]

DEFAULT_SET = "v2"


def scenarios_root() -> Path:
    """The frozen sets: ``medagent/scenario_sets`` (package data of the wheel; in a checkout a symlink to the
    top-level ``scenarios/``, the one copy in git)."""
    return Path(__file__).resolve().parents[1] / "scenario_sets"


def set_names(root: Path | None = None) -> list[str]:
    root = root or scenarios_root()
    return sorted(p.parent.name for p in root.glob("*/manifest.json")) if root.is_dir() else []


def set_dir(name: str = DEFAULT_SET, root: Path | None = None) -> Path:
    """The folder of the named set; a clear error naming the sets that exist."""
    folder = (root or scenarios_root()) / name
    if not (folder / "manifest.json").exists():
        known = ", ".join(set_names(root)) or "none"
        raise ScenarioSetError(f"unknown scenario set {name!r} (sets under {folder.parent}: {known})")
    return folder


def default_scenarios_dir() -> Path:
    """The folder of the default set (v2)."""
    return scenarios_root() / DEFAULT_SET
