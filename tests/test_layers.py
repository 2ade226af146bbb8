"""The layers flow one way, for every module of the package: an explicit table of which part may import which.

Parts are the top-level modules and packages of ``medagent``. Every import in every module (function-level
imports included) is checked against the table; a violation names the importing module and the import. No
library module imports a CLI module or typer (CLI modules parse flags and call the library, never the other way).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medagent"

NEUTRAL = {"version", "config", "vocabulary", "access_log", "data", "value_sets", "untrusted_text", "heap"}
# part -> the parts it may import (itself always); the order of the design: config -> fhir -> tools -> models ->
# agent -> scenarios -> bench -> train, serve, CLI; neutral modules anywhere
ALLOWED: dict[str, set[str]] = {
    "version": set(),
    "config": set(),
    "vocabulary": set(),
    "access_log": set(),
    "data": set(),
    "value_sets": {"vocabulary"},
    "untrusted_text": set(),  # the one quoting rule for record text and the chat-template control tokens  # clinical code sets (drug classes, condition groups): data with sources
    "heap": set(),  # long-lived processes and the garbage collector (the FHIR server, the benchmark runner)
    "request_guard": {"access_log"},
    "fhir": {*NEUTRAL, "request_guard"},
    "tools": {*NEUTRAL, "request_guard", "fhir"},
    "trajectory": {*NEUTRAL, "tools"},
    "models": {*NEUTRAL},
    "agent": {*NEUTRAL, "fhir", "tools", "trajectory", "models"},
    "scenarios": {*NEUTRAL},  # ground truth from the bundles: no fhir, tools, models, agent or bench
    "bench": {*NEUTRAL, "fhir", "tools", "trajectory", "models", "agent", "scenarios"},
    "train": {*NEUTRAL, "fhir", "tools", "trajectory", "models", "agent", "scenarios", "bench"},
    "serve": {*NEUTRAL, "request_guard", "fhir", "tools", "trajectory", "models", "agent"},
    "inspect_tasks": {*NEUTRAL, "fhir", "tools", "trajectory", "models", "agent", "scenarios", "bench"},
    "cli": {*NEUTRAL, "request_guard", "fhir", "tools", "trajectory", "models", "agent", "scenarios", "bench",
            "train", "serve"},
    "__main__": {"cli"},
    "__init__": {"*"},  # the public face: re-exports from every layer, loaded on first use
}
CLI_MODULES = {"medagent.cli", "medagent.__main__", "medagent.bench.cli", "medagent.scenarios.cli",
               "medagent.train.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """``medagent.bench.runner`` -> ``bench``; ``medagent`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of medagent (or typer) in the file, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "medagent":  # from medagent import x: the module x or a name of the root
                found += [(node.lineno, f"medagent.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in ("medagent", "typer")]


def violations(path: Path, module: str | None = None) -> list[str]:
    module = module or module_name(path)
    source = part_of(module)
    allowed = ALLOWED.get(source)
    if allowed is None:
        return [f"{module}: the part {source!r} is missing from the layer table"]
    out = []
    for line, imported in imports_of(path):
        if imported.split(".")[0] == "typer":
            if module not in CLI_MODULES:
                out.append(f"{module}:{line} imports typer (only CLI modules parse flags)")
            continue
        if imported in CLI_MODULES and module not in CLI_MODULES:
            out.append(f"{module}:{line} imports the CLI module {imported}")
        target = part_of(imported)
        if target == "__init__" and imported != "medagent":
            continue
        if target != source and "*" not in allowed and target not in allowed:
            out.append(f"{module}:{line} imports {imported} ({source} may not import {target})")
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_table_covers_every_part_of_the_package() -> None:
    parts = {part_of(module_name(path)) for path in MODULES}
    assert parts == set(ALLOWED), (parts - set(ALLOWED), set(ALLOWED) - parts)
    assert len(MODULES) > 150


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_against_the_layers(path: Path) -> None:
    assert violations(path) == []


def test_a_violation_names_the_module_and_the_import(tmp_path: Path) -> None:
    """The check can fail: an upward import and a typer import in a model module are reported, with lines."""
    upward = tmp_path / "upward.py"
    upward.write_text("from medagent.bench.runner import run_benchmark\n\n\ndef f():\n    import typer\n",
                      encoding="utf-8")
    assert violations(upward, "medagent.models.upward") == [
        "medagent.models.upward:1 imports medagent.bench.runner (models may not import bench)",
        "medagent.models.upward:5 imports typer (only CLI modules parse flags)",
    ]
    assert violations(upward, "medagent.cli") == []  # the CLI may
