"""The oracle solves every frozen scenario through the typed tools; deliberately wrong policies fail where they should.

Every policy runs through the real bench runner (``run_benchmark``: a fresh embedded FHIR server
per task, setup fixtures, the server's diff, the graders), like ``medagent bench run --agent NAME``.
The oracle runs on every scenario of both frozen sets (v1: 6079 tasks, v2: 4841; each about 45 s at
concurrency 2 on an idle 2-core machine, up to ~5 min on a loaded one) and, blindfolded (its scenarios
stripped of the expected answer, writes and provenance), on a stratified subset of v2 (every suite x
category x question form x variant x polarity x branch x split, two each); the wrong policies run on
that subset.
"""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from blind_oracle import BlindOracle

from medagent.agent.answer_format import answer_pattern
from medagent.agent.guards import final_answer_problem
from medagent.bench.results import TaskRecord
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import load_scenarios
from medagent.bench.solvers import catalog, chart_blind, oracle, oracle_by_name, tool_session, wrong
from medagent.bench.solvers.catalog import AGENT_NAMES, CODE_SOLVER_NAMES, make_code_solver, make_solver
from medagent.config import UserError
from medagent.scenarios.models import Change, Scenario
from medagent.tools.write_clinical import ACTOR_SYSTEM, MedicationOrderArgs

SETS = Path(__file__).resolve().parents[2] / "scenarios"
FROZEN = SETS / "v2"  # the default set: the subset the wrong policies run on


# ---------- fixtures ----------

def set_scenarios(folder: Path) -> list[Scenario]:
    if not (folder / "manifest.json").exists():
        pytest.fail(f"no frozen scenario set {folder} (run `medagent scenarios build`)")
    return load_scenarios(folder, "all", "all")


@pytest.fixture(scope="module")
def all_scenarios() -> list[Scenario]:
    return set_scenarios(FROZEN)


def stratified(scenarios: list[Scenario], per_group: int = 2) -> list[Scenario]:
    """``per_group`` scenarios, spread over the file, of every suite/category/form/variant/polarity/branch/split."""
    groups: dict[tuple[Any, ...], list[Scenario]] = defaultdict(list)
    for s in scenarios:
        groups[(s.suite, s.category, s.meta.get("form"), s.meta.get("variant"), s.meta.get("polarity"), s.branch,
                s.split)].append(s)
    picked = []
    for group in groups.values():
        count = min(per_group, len(group))
        picked += [group[i * len(group) // count] for i in range(count)]
    return picked


@pytest.fixture(scope="module")
def subset(all_scenarios: list[Scenario]) -> list[Scenario]:
    return stratified(all_scenarios)


async def run(scenarios: list[Scenario], solver: Any, out: Path, home: Path) -> tuple[dict[str, Any], list[TaskRecord]]:
    records: list[TaskRecord] = []
    summary = await run_benchmark(scenarios, solver, out_dir=out, home=home, concurrency=2, show_progress=False,
                                  on_record=records.append)
    assert len(records) == len(scenarios)
    return summary, records


_runs: dict[str, tuple[dict[str, Any], dict[str, TaskRecord]]] = {}


@pytest.fixture
async def policy_run(subset: list[Scenario], bench_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """Runs a policy once on the subset (memoised per module) -> (summary, scenario id -> record)."""

    async def get(name: str) -> tuple[dict[str, Any], dict[str, TaskRecord]]:
        if name not in _runs:
            summary, records = await run(subset, make_code_solver(name), tmp_path_factory.mktemp(name), bench_home)
            _runs[name] = (summary, {r.scenario_id: r for r in records})
        return _runs[name]

    return get


def writes_of(record: TaskRecord) -> list[Change]:
    return [c for c in record.changes if c.action in ("create", "update")]


def creates(scenario: Scenario) -> int:
    return sum(spec.count for spec in scenario.expected_writes if spec.action == "create")


def write_refused(record: TaskRecord) -> bool:
    """A write tool refused (patient died before now): the policy could not write at all."""
    return any(step.wrote == [] and step.error and "died" in step.error for step in record.outcome.trace)


# ---------- the oracle ----------

async def test_oracle_scores_100_on_a_stratified_subset_without_seeing_the_truth(
        subset: list[Scenario], bench_home: Path, tmp_path: Path) -> None:
    summary, records = await run(subset, BlindOracle(), tmp_path / "oracle", bench_home)
    failed = {r.scenario_id: (r.failure_cause, r.outcome.error, r.outcome.answer) for r in records if not r.passed}
    assert not failed
    assert summary["overall"]["accuracy"] == 100.0
    assert set(summary["by_category"]) == {f"{s.suite}/{s.category}" for s in subset}
    by_id = {s.id: s for s in subset}
    for record in records:
        outcome = record.outcome
        assert outcome.status == "answered" and outcome.tool_calls >= 1
        assert outcome.trace[-1].tool == "final_answer"
        assert (outcome.trace[-1].arguments or {})["answer"] == outcome.answer
        assert all(step.tool in oracle.default_registry() for step in outcome.trace[:-1])
        # the audit trail of the run context reaches the results log: one entry per written resource
        written = {f"{c.resourceType}/{c.id}" for c in writes_of(record)}
        assert {entry.reference for entry in outcome.audit} == written
        # every write went through the write tools: stamped with the policy as actor
        for change in writes_of(record):
            tags = {(t["system"], t["code"]) for t in change.after["meta"]["tag"]}
            assert (ACTOR_SYSTEM, "medagent/oracle") in tags
        assert len(writes_of(record)) == sum(spec.count for spec in by_id[record.scenario_id].expected_writes)


@pytest.mark.parametrize("set_name", ["v1", "v2", "v3"])
async def test_oracle_scores_100_on_every_frozen_scenario(set_name: str, bench_home: Path, tmp_path: Path) -> None:
    all_scenarios = set_scenarios(SETS / set_name)
    summary, records = await run(all_scenarios, make_code_solver("oracle"), tmp_path / "oracle-all", bench_home)
    failed = {r.scenario_id: (r.failure_cause, r.outcome.error, r.outcome.answer) for r in records if not r.passed}
    assert not failed
    assert summary["overall"] == {**summary["overall"], "accuracy": 100.0, "n": len(all_scenarios)}
    for suite in ("ehrqa", "agentic"):
        for split in ("dev", "test"):
            group = [r for r in records if r.suite == suite and r.split == split]
            assert group and all(r.passed for r in group), (suite, split)
    # the agent's answer grammar (a stated JSON object) never refuses the answer that passes
    questions = {s.id: s.question for s in all_scenarios}
    shaped = [(r, answer_pattern(questions[r.scenario_id])) for r in records]
    shaped = [(r, pattern) for r, pattern in shaped if pattern is not None]
    assert len(shaped) >= (100 if set_name == "v2" else 1)
    refused = [(r.scenario_id, r.outcome.answer) for r, pattern in shaped
               if not re.fullmatch(pattern, r.outcome.answer or "")]
    assert not refused, refused[:5]
    # nor do the agent's decoding guards (an echo of the format, a placeholder, no yes/no) refuse a right answer
    guarded = [(r.scenario_id, r.outcome.answer) for r in records if final_answer_problem(
        r.outcome.answer or "", questions[r.scenario_id], answer_pattern(questions[r.scenario_id]))]
    assert not guarded, guarded[:5]


@pytest.mark.parametrize("module", [catalog, oracle, oracle_by_name, tool_session, wrong, chart_blind],
                         ids=lambda m: m.__name__)
def test_the_code_policies_read_no_bundle_and_no_ground_truth(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    forbidden = ("medagent.data", "medagent.scenarios.chart", "medagent.scenarios.reference",
                 "medagent.scenarios.population", "medagent.scenarios.ehrqa", "medagent.scenarios.agentic",
                 "medagent.scenarios.fixtures", "medagent.scenarios.grading", "medagent.scenarios.answers")
    assert not {m for m in imported if m in forbidden or m.startswith(tuple(f"{f}." for f in forbidden))}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not attributes & {"expected_writes", "provenance", "read_only", "branch"}
    # `.answer` is the policies' own method; a scenario's expected answer is never read
    scenario_names = {"sc", "scenario"}
    assert not [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "answer"
                and isinstance(n.value, ast.Name) and n.value.id in scenario_names]


def test_the_catalog_knows_exactly_the_cli_names() -> None:
    # the oracles, the wrong policies of the core tier, the shortcuts of the hard tier, the workflow tier's own
    expected = {"oracle", "oracle-by-name", "always-no", "do-nothing", "always-act", "write-twice", "wrong-patient",
                "none-answerer", "chart-blind", "nearest-dev", "stated-number", "setup-only", "first-sentences",
                "lab-name-prior", "note-only", "empty-chart"}
    assert set(CODE_SOLVER_NAMES) == expected and len(CODE_SOLVER_NAMES) == len(expected)
    assert set(AGENT_NAMES) == {"agent", "whole-record", *CODE_SOLVER_NAMES}
    for name in CODE_SOLVER_NAMES:
        solver = make_code_solver(name)
        assert solver.name == name and solver.model is None
        assert name in ("oracle", "oracle-by-name") or "deliberately wrong solver" in (type(solver).__doc__ or "").lower()
    with pytest.raises(ValueError, match="unknown code solver"):
        make_code_solver("perfect")
    with pytest.raises(UserError, match="unknown agent 'perfect'"):
        make_solver("perfect", "embedded", None, None)


# question forms that name a condition or a drug in words (observations and vaccines give their code)
NAMED_FORMS = ("condition", "treated", "med_current", "med_ever", "prescriber", "med_date_first", "med_date_last",
               "meds_for_condition", "med_for_condition", "obs_at_condition", "obs_at_medication")


async def test_oracle_by_name_searches_with_the_question_s_words_and_still_answers(policy_run: Any,
                                                                                  subset: list[Scenario]) -> None:
    """The training-data oracle: condition and drug searches by the name as the question writes it, never by a
    code the question does not give; it must still answer (nearly) everything the oracle answers."""
    summary, records = await policy_run("oracle-by-name")
    named = [s for s in subset if s.suite == "ehrqa" and s.tier == "core" and s.meta.get("form") in NAMED_FORMS]
    assert len(named) >= 40
    texts = 0
    for scenario in named:
        for step in records[scenario.id].outcome.trace:
            if step.tool in ("search_conditions", "search_medications"):
                assert "code" not in step.arguments, (scenario.id, step.arguments)
                for words in ("text", "reason"):
                    if words in step.arguments:
                        assert step.arguments[words].lower() in scenario.question.lower(), (scenario.id, step.arguments)
                        texts += 1
    assert texts >= len(named)
    # the orders for a condition: one medication search by the documented reason, no condition search first
    for_condition = [s for s in named if s.meta.get("form") in ("meds_for_condition", "treated")]
    assert for_condition
    for scenario in for_condition:
        calls = [(step.tool, step.arguments) for step in records[scenario.id].outcome.trace if step.tool != "final_answer"]
        assert [tool for tool, _ in calls] == ["search_medications"], (scenario.id, calls)
        assert "reason" in calls[0][1], (scenario.id, calls)
    passed = sum(records[s.id].passed for s in named)
    assert passed >= 0.9 * len(named), f"{passed}/{len(named)}"
    assert summary["overall"]["accuracy"] >= 95.0


def test_order_medication_accepts_a_cvx_vaccine_code() -> None:
    args = MedicationOrderArgs.model_validate({"patient": "p1", "code": "140", "system": "cvx"})
    assert args.system == "cvx"
    with pytest.raises(ValueError, match="not a valid cvx code"):
        MedicationOrderArgs.model_validate({"patient": "p1", "code": "0338-1715-40", "system": "cvx"})


# ---------- the deliberately wrong policies ----------

async def test_always_no_passes_only_the_no_questions(policy_run: Any, subset: list[Scenario]) -> None:
    summary, records = await policy_run("always-no")
    for s in subset:
        is_no = s.answer.type == "boolean" and s.answer.value is False
        assert records[s.id].passed == is_no, s.id
        assert not records[s.id].changes and records[s.id].outcome.tool_calls == 0
    booleans = [records[s.id].passed for s in subset if s.answer.type == "boolean"]
    assert 0.4 <= sum(booleans) / len(booleans) <= 0.6
    assert all(not records[s.id].passed for s in subset if s.answer.type != "boolean")


async def test_do_nothing_scores_zero(policy_run: Any, subset: list[Scenario]) -> None:
    summary, records = await policy_run("do-nothing")
    assert summary["overall"]["accuracy"] <= 5.0
    assert not any(r.passed for r in records.values())
    assert all(not r.changes and r.outcome.tool_calls == 0 for r in records.values())


async def test_always_act_fails_every_read_only_task_and_no_action_branch(policy_run: Any,
                                                                          subset: list[Scenario]) -> None:
    summary, records = await policy_run("always-act")
    for s in subset:
        record = records[s.id]
        if s.read_only or s.branch == "no-action":
            if write_refused(record):
                # the patient died before now: every write tool refuses, so nothing could be written
                assert not record.changes, s.id
            else:
                assert not record.passed and record.failure_cause == "forbidden_write", s.id
        else:
            assert record.passed, (s.id, record.failure_cause)  # act branches and plain write tasks
    agentic = [s for s in subset if s.suite == "agentic" and (s.read_only or s.branch == "no-action")]
    assert agentic and not any(records[s.id].passed for s in agentic)  # agentic clocks are before death


async def test_write_twice_creates_real_duplicates_and_fails_every_create_task(policy_run: Any,
                                                                               subset: list[Scenario]) -> None:
    summary, records = await policy_run("write-twice")
    for s in subset:
        record = records[s.id]
        if creates(s):
            created = [c for c in record.changes if c.action == "create"]
            assert len(created) == 2 * creates(s) and len({c.id for c in created}) == len(created), s.id
            assert not record.passed and record.failure_cause == "forbidden_write", s.id
        else:
            # nothing to write, or stopping an order (a second stop changes nothing): the oracle's result
            assert record.passed, (s.id, record.failure_cause)
            assert Counter(c.action for c in record.changes)["create"] == 0


async def test_wrong_patient_fails_every_write_task(policy_run: Any, subset: list[Scenario]) -> None:
    summary, records = await policy_run("wrong-patient")
    for s in subset:
        record = records[s.id]
        if s.expected_writes:
            assert not record.passed and record.failure_cause in ("missing_write", "wrong_write"), s.id
            subjects = {(c.after.get("subject") or {}).get("reference") for c in writes_of(record)}
            targets = {spec.subject for spec in s.expected_writes if spec.subject} or {f"Patient/{s.patient}"}
            assert not subjects & targets, s.id
            # a write naming another patient than the one in context is escalated by the approval path
            # (issue 17), so under auto-approval it is refused and recorded as such, not written
            escalated = [step for step in record.outcome.trace
                         if step.error and "needs a reviewer's approval" in step.error]
            assert escalated or subjects, s.id
        else:
            assert record.passed, (s.id, record.failure_cause)
