"""A run folder's record of the scenario set it ran on (``scenario_set.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medagent.bench.runner import RunDirError, write_json_atomic
from medagent.bench.scenario_sets import default_scenarios_dir, set_dir

__all__ = ["SET_FILE", "record_set", "run_set_dir"]

SET_FILE = "scenario_set.json"


def record_set(out: Path, name: str, content_hash: str, folder: Path, **choice: Any) -> None:
    """``scenario_set.json`` in the run folder: which set (name, content hash, folder) and which part of it ran."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SET_FILE
    info = {"set": name, "content_hash": content_hash, "folder": str(folder), **choice}
    if path.exists():
        before = json.loads(path.read_text())
        if before.get("content_hash") != content_hash:
            raise RunDirError(
                f"{out} holds a run on set {before.get('set')} ({str(before.get('content_hash'))[:16]}), "
                f"not {name} ({content_hash[:16]}): choose a new --out"
            )
        if "tool_names" in before and "tool_names" in info and before["tool_names"] != info["tool_names"]:
            raise RunDirError(
                f"{out} holds a run with --tools {before.get('tools')}, not {info.get('tools')}: choose a new --out"
            )
    write_json_atomic(path, info)


def run_set_dir(run_dir: Path) -> Path:
    """The set a run used (its ``scenario_set.json``; runs from before it: the default set)."""
    path = run_dir / SET_FILE
    if not path.exists():
        return default_scenarios_dir()
    info = json.loads(path.read_text())
    folder = Path(info["folder"])
    return folder if (folder / "manifest.json").exists() else set_dir(info["set"])
