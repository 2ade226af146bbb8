"""Finding and loading the frozen scenario sets (``scenarios/<suite>/<split>.jsonl`` + ``manifest.json``)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from pydantic import ValidationError

from medagent.scenarios.models import Scenario

SUITES = ("ehrqa", "agentic")
SPLITS = ("dev", "test")


class ScenarioSetError(ValueError):
    """The scenario folder or a file in it is missing or malformed."""


def default_scenarios_dir() -> Path:
    """The repository's ``scenarios/`` folder (beside the package in a checkout or editable install)."""
    return Path(__file__).resolve().parents[2] / "scenarios"


def set_hash(root: Path) -> str | None:
    manifest = root / "manifest.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("content_hash")


def load_scenarios(root: Path, suite: str = "all", split: str = "test", limit: int | None = None) -> list[Scenario]:
    """Scenarios of the chosen suites and splits; ``limit`` takes them round-robin across categories."""
    suites = SUITES if suite == "all" else (suite,)
    splits = SPLITS if split == "all" else (split,)
    for name, allowed in (("suite", (*SUITES, "all")), ("split", (*SPLITS, "all"))):
        value = suite if name == "suite" else split
        if value not in allowed:
            raise ScenarioSetError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    scenarios: list[Scenario] = []
    for suite_name in suites:
        for split_name in splits:
            path = root / suite_name / f"{split_name}.jsonl"
            if not path.exists():
                raise ScenarioSetError(f"scenario file not found: {path} (run `medagent scenarios build`)")
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    scenarios.append(Scenario.model_validate_json(line))
                except ValidationError as exc:
                    raise ScenarioSetError(f"{path}:{number}: not a valid scenario: {exc.errors()[0]['msg']}") from None
    if limit is not None:
        scenarios = _round_robin(scenarios, limit)
    return scenarios


def _round_robin(scenarios: list[Scenario], limit: int) -> list[Scenario]:
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
