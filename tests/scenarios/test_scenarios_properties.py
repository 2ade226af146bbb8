"""Properties of the frozen set and of the code: split by patient, 1:1 branches, yes/no balance,
clocks inside the record, formats stated, ground truth independent of the FHIR and agent layers,
and no wall clock anywhere in generation or grading."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from medagent.scenarios.build import load_charts
from medagent.scenarios.category import categories
from medagent.scenarios.clock import parse_instant
from medagent.scenarios.models import Manifest, Scenario

PACKAGE = Path(__file__).resolve().parents[2] / "medagent" / "scenarios"
FORBIDDEN = ("medagent.fhir", "medagent.tools", "medagent.agent", "medagent.bench", "medagent.models")


def test_split_is_by_patient(frozen: list[Scenario], frozen_manifest: Manifest) -> None:
    test = set(frozen_manifest.test_patients)
    assert len(test) == 19
    for scenario in frozen:
        assert (scenario.split == "test") == (scenario.patient in test), scenario.id
    ehrqa_test = {s.patient for s in frozen if s.suite == "ehrqa" and s.split == "test"}
    assert ehrqa_test == test


def test_ids_unique(frozen: list[Scenario]) -> None:
    counts = Counter(s.id for s in frozen)
    assert [i for i, n in counts.items() if n > 1] == []


def test_yes_no_balanced_per_category_and_split(frozen: list[Scenario]) -> None:
    counts: dict[tuple[str, str], Counter[bool]] = defaultdict(Counter)
    for scenario in frozen:
        if scenario.answer.type == "boolean":
            counts[(scenario.category, scenario.split)][bool(scenario.answer.value)] += 1
    assert counts
    for key, counter in counts.items():
        assert counter[True] == counter[False], key


def test_conditional_tasks_balanced_one_to_one(frozen: list[Scenario]) -> None:
    conditional = {c.name for c in categories(tier="core") if c.conditional}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for scenario in frozen:
        if scenario.category in conditional:
            counts[(scenario.category, scenario.split)][scenario.branch or "?"] += 1
    assert {c for c, _ in counts} == conditional
    for key, counter in counts.items():
        assert set(counter) == {"act", "no-action"} and counter["act"] == counter["no-action"], key


def core(scenarios: list[Scenario]) -> list[Scenario]:
    """The core tier; the hard tier's own rules (setup fixtures, record-then-order workflows, population
    questions) are tested in test_hard_set.py."""
    return [s for s in scenarios if s.tier == "core"]


def test_no_action_branches_still_require_an_answer(frozen: list[Scenario]) -> None:
    for scenario in core(frozen):
        if scenario.branch == "no-action":
            assert scenario.answer.type != "none" and not scenario.expected_writes, scenario.id


def test_every_task_states_now_and_answer_format(frozen: list[Scenario]) -> None:
    for scenario in frozen:
        assert f"It is now {scenario.now}" in scenario.question, scenario.id
        assert "Answer format:" in scenario.question, scenario.id


def test_now_inside_the_patient_record(frozen: list[Scenario]) -> None:
    spans = {}
    for chart in load_charts():
        end = min(chart.record_end, chart.deceased) if chart.deceased else chart.record_end
        spans[chart.patient_id] = (chart.record_start, chart.record_end, end)
    for scenario in core(frozen):  # hard cohort questions are about the population, dated by year
        start, record_end, alive_end = spans[scenario.patient]
        now = parse_instant(scenario.now)
        assert start <= now <= record_end, scenario.id
        if scenario.suite == "agentic":
            assert now <= alive_end, scenario.id


def test_setup_fixtures_only_where_needed_and_on_both_branches(frozen: list[Scenario]) -> None:
    frozen = core(frozen)
    with_setup = Counter((s.category, s.branch) for s in frozen if s.setup)
    assert {c for c, _ in with_setup} == {"magnesium_replacement", "potassium_replacement"}
    for category in ("magnesium_replacement", "potassium_replacement"):
        total = Counter(s.branch for s in frozen if s.category == category)
        assert with_setup[(category, "act")] == total["act"]
        assert with_setup[(category, "no-action")] == total["no-action"]
    for scenario in frozen:
        for resource in scenario.setup:
            assert resource["subject"]["reference"] == f"Patient/{scenario.patient}"


def test_ground_truth_does_not_load_fhir_tools_or_agent() -> None:
    code = ("import sys, medagent.scenarios.build, medagent.scenarios.grading, medagent.scenarios.reference, "
            "medagent.scenarios.cli; bad = sorted(m for m in sys.modules if m.startswith(%r)); print(bad); "
            "sys.exit(1 if bad else 0)" % (FORBIDDEN,))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_generator_or_grader_module_imports_the_fhir_or_agent_layers() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))  # no exemptions: code policies live in medagent.bench
    assert len(modules) > 10
    for path in modules:
        bad = {name for name in _imports(path) if name.startswith(FORBIDDEN)}
        assert not bad, (path.name, bad)


def test_no_wall_clock_in_generation_or_grading() -> None:
    """Graders take "now" from the scenario; generation is reproducible in any year."""
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow", "time", "monotonic"):
                base = node.value
                owner = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                assert owner not in ("datetime", "date", "time"), (path.name, node.lineno)
