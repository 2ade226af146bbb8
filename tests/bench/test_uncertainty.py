"""Scores with uncertainty: clustered bootstrap intervals, McNemar's exact test, the paired comparison of two runs,
and summaries or results written before intervals existed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.bench.cli import bench_app, print_summary
from medagent.bench.comparison import NoSharedTasks, RunComparison, compare_runs
from medagent.bench.report import render_report
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.summary import SUMMARY_FORMAT, read_summary, summarize
from medagent.bench.uncertainty import (
    GroupIntervals,
    TaskScore,
    bootstrap_ratios,
    group_intervals,
    mcnemar_exact_p,
    task_cluster,
)
from medagent.trajectory import RunOutcome


def _record(scenario: str, passed: bool, *, cluster: str | None = None, trial: int = 0,
            category: str = "condition_existence", agent: str = "x") -> TaskRecord:
    return TaskRecord(scenario_id=scenario, trial=trial, suite="ehrqa", category=category, split="test", agent=agent,
                      outcome=RunOutcome(status="answered", steps=1), passed=passed, cluster=cluster)


def _width(found: GroupIntervals) -> float:
    assert found.pass_at_1.low is not None and found.pass_at_1.high is not None
    return found.pass_at_1.high - found.pass_at_1.low


def test_an_all_correct_run_has_the_interval_100_100_and_an_all_wrong_run_0_0() -> None:
    right = [_record(f"t{i}", True, cluster=f"Patient/{i % 7}") for i in range(40)]
    summary = summarize(right)
    for group in (summary["overall"], summary["by_category"]["ehrqa/condition_existence"]):
        assert group["intervals"]["pass_at_1"] == {"estimate": 100.0, "low": 100.0, "high": 100.0}
    wrong = group_intervals([_record(f"t{i}", False, cluster=f"Patient/{i % 7}") for i in range(40)])
    assert (wrong.pass_at_1.low, wrong.pass_at_1.high) == (0.0, 0.0)


def test_one_patient_whose_many_tasks_all_fail_widens_the_clustered_interval() -> None:
    # 30 patients with 2 tasks each, all right but one task in five; one patient with 20 tasks, all wrong
    others = [_record(f"p{p}-{t}", (2 * p + t) % 5 != 0, cluster=f"Patient/p{p}") for p in range(30) for t in range(2)]
    heavy = [_record(f"heavy-{t}", False, cluster="Patient/heavy") for t in range(20)]
    clustered = group_intervals(others + heavy)
    unclustered = group_intervals([r.model_copy(update={"cluster": None}) for r in others + heavy])
    assert clustered.clusters == 31 and unclustered.clusters == 80  # no cluster recorded: each task its own
    assert clustered.pass_at_1.estimate == unclustered.pass_at_1.estimate == 60.0  # 48 of 80
    assert _width(clustered) > _width(unclustered) + 5.0


def test_a_cluster_is_resampled_whole() -> None:
    # cluster A: three right tasks, cluster B: one wrong task; a resample holds AA (1.0), AB (0.75) or BB (0.0),
    # never a part of A (which resampling tasks would give, e.g. 2 of 4 = 0.5)
    units = [TaskScore("A", f"a{i}", 1.0, 1.0) for i in range(3)] + [TaskScore("B", "b", 0.0, 1.0)]
    ratios = bootstrap_ratios(units, resamples=4000)
    assert set(ratios.tolist()) == {0.0, 0.75, 1.0}
    assert abs(float((ratios == 0.75).mean()) - 0.5) < 0.03  # AB or BA: one resample in two


def test_the_bootstrap_is_reproducible_and_ignores_the_order_of_records() -> None:
    records = [_record(f"t{i}", i % 3 != 0, cluster=f"Patient/{i % 9}") for i in range(60)]
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    first = group_intervals(records)
    assert group_intervals(records) == first == group_intervals(shuffled)
    assert group_intervals(records, seed=7) != first  # the seed is what fixes the draws


def test_pass_hat_k_and_the_checkpoint_rate_get_intervals() -> None:
    class CheckpointRecord(TaskRecord):
        """Stand-in for the workflow tier's records, which carry their checkpoint counts."""

        checkpoints_passed: int | None = None
        checkpoints_total: int | None = None

    def record(task: str, trial: int, passed: bool, done: int) -> CheckpointRecord:
        return CheckpointRecord(scenario_id=task, trial=trial, suite="agentic", category="diabetes_previsit",
                                split="test", agent="x", outcome=RunOutcome(status="answered", steps=1), passed=passed,
                                cluster=f"Patient/{task}", checkpoints_passed=done, checkpoints_total=4)

    # task a: 3 of 3 trials pass (4/4 checkpoints); task b: 1 of 3 (2/4, 4/4, 1/4)
    records = [record("a", t, True, 4) for t in range(3)] + [
        record("b", 0, False, 2), record("b", 1, True, 4), record("b", 2, False, 1)]
    found = group_intervals(records)
    assert found.pass_at_1.estimate == round(100 * 4 / 6, 2)
    assert set(found.pass_hat_k) == {"2", "3"}
    assert found.pass_hat_k["3"].estimate == 50.0  # a: C(3,3)/C(3,3) = 1, b: 0
    assert found.pass_hat_k["2"].estimate == 50.0  # a: 1, b: C(1,2)/C(3,2) = 0
    assert found.checkpoint_rate is not None
    assert found.checkpoint_rate.estimate == round(100 * (1 + 1 + 1 + 0.5 + 1 + 0.25) / 6, 2)
    assert found.checkpoint_rate.low is not None and found.checkpoint_rate.high is not None
    assert found.checkpoint_rate.low <= found.checkpoint_rate.estimate <= found.checkpoint_rate.high
    assert group_intervals([_record("t", True)]).checkpoint_rate is None  # records without checkpoints


@pytest.mark.parametrize(("only_a", "only_b", "p"), [
    (10, 2, 2 * (1 + 12 + 66) / 4096),  # 0.0386
    (2, 10, 2 * (1 + 12 + 66) / 4096),
    (5, 0, 2 / 32),
    (3, 1, 2 * (1 + 4) / 16),
    (4, 4, 1.0),
    (0, 0, 1.0),
])
def test_mcnemar_exact_p_matches_the_binomial_by_hand(only_a: int, only_b: int, p: float) -> None:
    assert mcnemar_exact_p(only_a, only_b) == pytest.approx(p, abs=1e-12)
    if (only_a, only_b) == (10, 2):
        assert round(mcnemar_exact_p(only_a, only_b), 4) == 0.0386


def test_two_runs_are_paired_by_task_and_trial() -> None:
    a = [_record("t0", True, cluster="Patient/1"), _record("t1", True, cluster="Patient/1"),
         _record("t2", False, cluster="Patient/2"), _record("t3", True, cluster="Patient/3"),
         _record("t3", True, cluster="Patient/3", trial=1), _record("only-a", True, cluster="Patient/4")]
    b = [_record("t0", True), _record("t1", False), _record("t2", False), _record("t3", False),
         _record("t3", False, trial=2), _record("only-b", False)]
    comparison = compare_runs(a, b, run_a="agent", run_b="baseline")
    overall = comparison.overall
    assert (overall.pairs, overall.tasks) == (4, 4)  # t3 trial 1 and trial 2 are not a pair
    assert (overall.both_right, overall.only_a, overall.only_b, overall.both_wrong) == (1, 2, 0, 1)
    assert (overall.pass_rate_a, overall.pass_rate_b) == (75.0, 25.0)
    assert overall.difference.estimate == 50.0
    assert overall.mcnemar_p == 0.5  # 2 * (1/2)^2
    assert [(k.scenario_id, k.trial) for k in comparison.only_in_a] == [("only-a", 0), ("t3", 1)]
    assert [(k.scenario_id, k.trial) for k in comparison.only_in_b] == [("only-b", 0), ("t3", 2)]
    assert comparison.uncertainty.resamples == 2000


def test_identical_runs_differ_by_zero_with_no_spread() -> None:
    run = [_record(f"t{i}", i % 2 == 0, cluster=f"Patient/{i % 4}") for i in range(20)]
    overall = compare_runs(run, run).overall
    assert (overall.difference.low, overall.difference.estimate, overall.difference.high) == (0.0, 0.0, 0.0)
    assert overall.mcnemar_p == 1.0


def test_runs_without_shared_tasks_are_a_clear_error() -> None:
    with pytest.raises(NoSharedTasks, match="share no task.*A has 1, B has 2"):
        compare_runs([_record("a", True)], [_record("b", True), _record("a", True, trial=1)])


def test_a_population_question_is_its_own_cluster_and_a_chart_question_is_its_patients() -> None:
    hard = load_scenarios(default_scenarios_dir(), "all", "test", tier="hard")
    population = next(s for s in hard if s.meta.get("scope") == "population")
    chart = next(s for s in hard if s.meta.get("scope") != "population")
    assert task_cluster(population) == f"task/{population.id}"
    assert task_cluster(chart) == f"Patient/{chart.patient}"


def _write_run(folder: Path, records: list[TaskRecord]) -> Path:
    folder.mkdir(parents=True)
    log = ResultsLog(folder / "results.jsonl")
    for record in records:
        log.append(record)
    return folder


def test_bench_compare_prints_json_and_refuses_runs_without_shared_tasks(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", [_record(f"t{i}", True, cluster=f"Patient/{i % 3}") for i in range(12)])
    b = _write_run(tmp_path / "b", [_record(f"t{i}", i % 4 != 0, cluster=f"Patient/{i % 3}") for i in range(10)])
    other = _write_run(tmp_path / "other", [_record("elsewhere", True)])
    runner = CliRunner()
    result = runner.invoke(bench_app, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    comparison = RunComparison.model_validate_json(result.stdout)
    assert (comparison.overall.pairs, comparison.overall.only_a, comparison.overall.only_b) == (10, 3, 0)
    assert len(comparison.only_in_a) == 2 and comparison.only_in_b == []
    table = runner.invoke(bench_app, ["compare", str(a), str(b)])
    assert table.exit_code == 0 and "10 shared (scenario, trial) pairs" in " ".join(table.stdout.split())
    refused = runner.invoke(bench_app, ["compare", str(a), str(other)])
    assert refused.exit_code == 2
    assert "share no task" in " ".join(refused.stderr.split())


def test_summaries_and_results_written_before_intervals_still_render(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    old_line = json.loads(_record("old", True).model_dump_json())
    del old_line["cluster"]
    (tmp_path / "results.jsonl").write_text(json.dumps(old_line) + "\n")
    (record,) = ResultsLog(tmp_path / "results.jsonl").load()
    assert record.cluster is None
    summary = summarize([record, _record("old-2", False)])
    assert summary["overall"]["intervals"]["clusters"] == 2  # each old record is its own cluster

    for group in (summary["overall"], *summary["by_category"].values()):
        del group["intervals"]
    del summary["uncertainty"]
    print_summary(summary, "old run")
    overall = next(line for line in capsys.readouterr().out.splitlines() if "overall" in line)
    assert "50.0%" in overall and "[" not in overall
    html = render_report([("old run", [record, _record("old-2", False)])])
    assert "50.0% [" in html  # recomputed from the records, which is what the report reads


def test_the_printed_summary_shows_each_score_with_its_interval(capsys: pytest.CaptureFixture[str]) -> None:
    records = [_record(f"t{i}", True, cluster=f"Patient/{i % 5}") for i in range(10)]
    print_summary(summarize(records), "run")
    printed = " ".join(capsys.readouterr().out.split())
    assert "100.0% [100.0, 100.0]" in printed
    assert "2,000 resamples, seed 2026" in printed


def test_summary_json_holds_typed_intervals_and_older_files_still_read(tmp_path: Path) -> None:
    records = [_record(f"t{i}", i % 4 != 0, cluster=f"Patient/{i % 6}") for i in range(24)]
    path = tmp_path / "summary.json"
    summary = summarize(records)
    path.write_text(json.dumps(summary))
    read = read_summary(path)
    assert read.format_version == SUMMARY_FORMAT == 2
    assert read.overall.intervals is not None and read.overall.intervals.clusters == 6
    assert read.overall.intervals.pass_at_1.estimate == 75.0
    assert read.uncertainty is not None
    assert (read.uncertainty.resamples, read.uncertainty.seed, read.uncertainty.confidence) == (2000, 2026, 0.95)
    assert "patient" in read.uncertainty.cluster_unit

    older = json.loads(path.read_text())  # format 1: no intervals, no method, no version
    for group in (older["overall"], *older["by_suite"].values(), *older["by_category"].values(),
                  *older["by_agent"].values()):
        del group["intervals"]
    del older["uncertainty"], older["format_version"]
    path.write_text(json.dumps(older))
    old = read_summary(path)
    assert (old.format_version, old.overall.intervals, old.uncertainty) == (1, None, None)


def test_tasks_of_one_patient_get_no_interval_rather_than_a_zero_width_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    one_patient = [_record(f"t{i}", i != 0, cluster="Patient/only") for i in range(3)]
    found = group_intervals(one_patient)
    assert (found.clusters, found.pass_at_1.estimate, found.pass_at_1.low, found.pass_at_1.high) == (1, 66.67, None,
                                                                                                     None)
    print_summary(summarize(one_patient), "run")
    assert "66.7% [one cluster]" in " ".join(capsys.readouterr().out.split())
    paired = compare_runs(one_patient, [r.model_copy(update={"passed": False}) for r in one_patient]).overall
    assert (paired.difference.estimate, paired.difference.low, paired.difference.high) == (66.67, None, None)
