"""The workflow tier through the real runner: the oracle solves every sampled item within the tier's stated limits
(its trajectory replayed through the agent), and the deliberately wrong policies fail where the checkpoints
should catch them.

The sample: two items of every workflow category and split (32 items); the figures over the whole tier are
measured by ``tools/workflow_tier.py``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from medagent.bench.solvers.chart_blind import ChartBlindSolver
from medagent.bench.solvers.catalog import make_code_solver
from medagent.bench.solvers.replay import ReplaySolver
from medagent.bench.results import TaskRecord
from medagent.bench.runner import run_benchmark
from medagent.scenarios import sampling
from medagent.scenarios.build import load_charts
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import population_of
from medagent.scenarios.workflow import generate_workflow


@pytest.fixture(scope="module")
def tier() -> list[Scenario]:
    charts = load_charts()
    return generate_workflow(charts, population_of(charts), 2026, sampling.test_patients(c.patient_id for c in charts))


@pytest.fixture(scope="module")
def sample(tier: list[Scenario]) -> list[Scenario]:
    groups: dict[tuple[str, str], list[Scenario]] = defaultdict(list)
    for scenario in tier:
        groups[(scenario.category, scenario.split)].append(scenario)
    return [group[i * len(group) // 2] for group in groups.values() for i in range(min(2, len(group)))]


async def run(scenarios: list[Scenario], solver: Any, out: Path, home: Path) -> dict[str, TaskRecord]:
    records: list[TaskRecord] = []
    await run_benchmark(
        scenarios, solver, out_dir=out, home=home, concurrency=2, show_progress=False, on_record=records.append
    )
    return {r.scenario_id: r for r in records}


_oracle: dict[str, dict[str, TaskRecord]] = {}


@pytest.fixture
async def oracle_records(
    sample: list[Scenario], bench_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, TaskRecord]:
    if "records" not in _oracle:
        _oracle["records"] = await run(sample, make_code_solver("oracle"), tmp_path_factory.mktemp("oracle"), bench_home)
    return _oracle["records"]


async def test_the_oracle_solves_every_sampled_item(
    sample: list[Scenario], oracle_records: dict[str, TaskRecord]
) -> None:
    assert len(sample) >= 30
    failed = {i: (r.failure_cause, r.outcome.error) for i, r in oracle_records.items() if not r.passed}
    assert not failed
    calls = [r.outcome.tool_calls for r in oracle_records.values()]
    assert sum(calls) / len(calls) >= 15, "a workflow needs on average at least 15 tool calls"
    for record in oracle_records.values():
        assert record.tier == "workflow" and record.checkpoints_passed == record.checkpoints_total


async def test_the_oracles_trajectories_replay_through_the_agent_within_the_stated_limits(
    sample: list[Scenario], oracle_records: dict[str, TaskRecord], bench_home: Path, tmp_path: Path
) -> None:
    replays = await run(sample, ReplaySolver({i: r.outcome for i, r in oracle_records.items()}), tmp_path, bench_home)
    by_id = {s.id: s for s in sample}
    for scenario_id, record in replays.items():
        limits = by_id[scenario_id].limits
        assert limits is not None and record.outcome.status == "answered" and record.passed, scenario_id
        assert record.outcome.steps <= limits.max_steps - 1  # the last step is the answer's
        assert record.outcome.prompt_tokens + record.outcome.completion_tokens < limits.max_tokens
        assert record.outcome.steps == oracle_records[scenario_id].outcome.tool_calls


def _writes_beyond_the_note(scenario: Scenario) -> bool:
    return any(spec.resource_type != "Composition" for spec in scenario.expected_writes)


@pytest.mark.parametrize("name", ["do-nothing", "note-only", "always-act", "setup-only", "empty-chart", "chart-blind"])
async def test_wrong_policies_fail_where_the_checkpoints_catch_them(
    name: str, sample: list[Scenario], tier: list[Scenario], bench_home: Path, tmp_path: Path
) -> None:
    solver = (
        ChartBlindSolver(examples=[s for s in tier if s.split == "dev"]) if name == "chart-blind" else make_code_solver(name)
    )
    records = await run(sample, solver, tmp_path, bench_home)
    by_id = {s.id: s for s in sample}
    passed = [i for i, r in records.items() if r.passed]
    if name == "note-only":  # it passes only where the protocol asks for no write besides the note
        assert all(not _writes_beyond_the_note(by_id[i]) for i in passed)
    elif name == "always-act":  # it passes only where no decision had another branch to act on
        assert len(passed) <= len(sample) // 5
    else:
        assert passed == [], name
    rates = [r.checkpoints_passed / r.checkpoints_total for r in records.values() if r.checkpoints_total]
    assert sum(rates) / len(rates) < 0.9
