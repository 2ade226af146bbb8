"""Two runs on the same tasks, paired task by task: who got what right, McNemar's test, the difference's interval."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, Field

from medagent.bench.results import TaskRecord
from medagent.bench.uncertainty import (
    BootstrapMethod,
    Interval,
    TaskScore,
    difference_cell,
    interval,
    mcnemar_exact_p,
    record_cluster,
)
from medagent.config import UserError


class NoSharedTasks(UserError):
    """Two runs to compare share no (scenario, trial)."""


class TaskKey(BaseModel):
    scenario_id: str
    trial: int


class PairedScore(BaseModel):
    """Paired (scenario, trial) outcomes of run A and run B, and what they say about the difference."""

    pairs: int = Field(description="(scenario, trial) pairs both runs finished.")
    tasks: int = Field(description="Distinct scenarios among the pairs.")
    both_right: int
    only_a: int = Field(description="Right in A, wrong in B.")
    only_b: int = Field(description="Right in B, wrong in A.")
    both_wrong: int
    pass_rate_a: float = Field(description="A's pass rate on the pairs, %.")
    pass_rate_b: float
    difference: Interval = Field(description="A - B in percentage points, paired clustered bootstrap interval.")
    mcnemar_p: float = Field(description="McNemar's exact two-sided p-value on the discordant pairs.")


class RunComparison(BaseModel):
    """``medagent bench compare A B``: the pairs overall and by category, and the tasks left out."""

    run_a: str
    run_b: str
    overall: PairedScore
    by_category: dict[str, PairedScore]
    only_in_a: list[TaskKey] = Field(description="Finished in A only: left out of the comparison.")
    only_in_b: list[TaskKey]
    uncertainty: BootstrapMethod = Field(default_factory=BootstrapMethod)

    def shared_line(self) -> str:
        """How many pairs were compared and how many tasks were left out."""
        return (
            f"{self.overall.pairs} shared (scenario, trial) pairs over {self.overall.tasks} tasks; left out: "
            f"{len(self.only_in_a)} only in A, {len(self.only_in_b)} only in B"
        )


PAIRED_COLUMNS = ("pairs", "both right", "only A", "only B", "both wrong", "A", "B", "A - B [95% CI]", "McNemar p")


def paired_cells(score: PairedScore) -> tuple[str, ...]:
    """One row of the comparison table, in the order of ``PAIRED_COLUMNS`` (the CLI's and the report's)."""
    return (
        str(score.pairs),
        str(score.both_right),
        str(score.only_a),
        str(score.only_b),
        str(score.both_wrong),
        f"{score.pass_rate_a:.1f}%",
        f"{score.pass_rate_b:.1f}%",
        difference_cell(score.difference),
        f"{score.mcnemar_p:.4g}",
    )


def _by_key(records: Sequence[TaskRecord]) -> dict[tuple[str, int], TaskRecord]:
    return {record.key: record for record in records}  # a key logged twice: the last line wins


def paired_score(pairs: Sequence[tuple[TaskRecord, TaskRecord]]) -> PairedScore:
    """Counts, pass rates, McNemar's p and the clustered interval of A - B over ``pairs`` (A's record, B's)."""
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    by_task: dict[str, list[tuple[TaskRecord, TaskRecord]]] = defaultdict(list)
    for a, b in pairs:
        counts[(a.passed, b.passed)] += 1
        by_task[a.scenario_id].append((a, b))
    units = [
        TaskScore(
            trials[0][0].cluster or record_cluster(trials[0][1]),
            task,
            float(sum(a.passed - b.passed for a, b in trials)),
            float(len(trials)),
        )
        for task, trials in by_task.items()
    ]
    n = len(pairs)
    only_a, only_b = counts[(True, False)], counts[(False, True)]
    return PairedScore(
        pairs=n,
        tasks=len(by_task),
        both_right=counts[(True, True)],
        only_a=only_a,
        only_b=only_b,
        both_wrong=counts[(False, False)],
        pass_rate_a=round(100.0 * sum(a.passed for a, _ in pairs) / n, 2),
        pass_rate_b=round(100.0 * sum(b.passed for _, b in pairs) / n, 2),
        difference=interval(units),
        mcnemar_p=mcnemar_exact_p(only_a, only_b),
    )


def compare_runs(
    records_a: Sequence[TaskRecord], records_b: Sequence[TaskRecord], *, run_a: str = "A", run_b: str = "B"
) -> RunComparison:
    """Pair the two runs' records by (scenario id, trial); a pair of runs that shares none is the user's mistake."""
    a, b = _by_key(records_a), _by_key(records_b)
    shared = sorted(a.keys() & b.keys())
    if not shared:
        raise NoSharedTasks(
            f"{run_a} and {run_b} share no task (matched by scenario id and trial): {run_a} has "
            f"{len(a)}, {run_b} has {len(b)}; compare runs on the same scenarios"
        )
    pairs = [(a[key], b[key]) for key in shared]
    by_category: dict[str, list[tuple[TaskRecord, TaskRecord]]] = defaultdict(list)
    for pair in pairs:
        by_category[f"{pair[0].suite}/{pair[0].category}"].append(pair)
    return RunComparison(
        run_a=run_a,
        run_b=run_b,
        overall=paired_score(pairs),
        by_category={name: paired_score(group) for name, group in sorted(by_category.items())},
        only_in_a=[TaskKey(scenario_id=s, trial=t) for s, t in sorted(a.keys() - b.keys())],
        only_in_b=[TaskKey(scenario_id=s, trial=t) for s, t in sorted(b.keys() - a.keys())],
    )
