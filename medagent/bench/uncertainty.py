"""Scores with uncertainty: 95% intervals by a bootstrap clustered by patient, and McNemar's exact test.

Tasks of one patient are not independent (one chart, one set of quirks), so the bootstrap resamples patients
with replacement and takes all the tasks of each patient drawn (a question about the whole population is its
own cluster; a task's trials stay together). Resampling the tasks again inside each drawn patient (a second
stage) counts the within-patient spread twice: ``tools/bench_intervals.py`` measures both. Every interval is a
percentile interval of ``RESAMPLES`` resamples drawn from ``numpy.random.default_rng(SEED)``, so a run's
intervals are reproducible and do not depend on the order of its records or on the other groups of the summary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np
from pydantic import BaseModel, Field

from medagent.bench.results import TaskRecord
from medagent.scenarios.models import Scenario

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 2026
ONE_CLUSTER = "one cluster"  # no interval: the tasks of one patient say nothing about other patients
_DRAWS_AT_ONCE = 1_000_000  # clusters drawn per block of resamples (bounds memory; the seed fixes the draws)


class BootstrapMethod(BaseModel):
    """How every interval of a summary or a comparison was computed."""

    method: str = (
        "cluster bootstrap (clusters drawn with replacement, each with all its tasks and a task with all "
        "its trials), percentile interval"
    )
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES
    seed: int = SEED
    cluster_unit: str = (
        "patient (a question about the whole population, or a record that names no cluster, is its own cluster)"
    )


class Interval(BaseModel):
    """A score in percent (or percentage points, for a difference) with its interval."""

    estimate: float
    low: float | None = Field(
        None,
        description="None (left out of summary.json) when the tasks come from one "
        "cluster: resampling a single patient says nothing about others.",
    )
    high: float | None = None


class GroupIntervals(BaseModel):
    """The intervals of one group of a summary (the run, a suite, a tier, a category, an agent)."""

    tasks: int = Field(description="Distinct scenarios (a scenario's trials count once).")
    clusters: int = Field(description="Clusters resampled: patients, plus population-wide questions.")
    pass_at_1: Interval = Field(description="Records passed / records, %.")
    pass_hat_k: dict[str, Interval] = Field(
        default_factory=dict, description="k >= 2 -> pass^k, % (runs with several trials)."
    )
    checkpoint_rate: Interval | None = Field(
        None, description="Mean per-record checkpoint rate, % (tasks graded at checkpoints)."
    )


@dataclass(frozen=True)
class TaskScore:
    """One resampling unit: a task (all its trials) with its cluster; its share of a ratio score is
    ``value / weight`` (e.g. passes / trials)."""

    cluster: str
    task: str
    value: float
    weight: float


def task_cluster(scenario: Scenario) -> str:
    """The cluster a task's record carries: its patient, or the task itself when it asks about the population."""
    if scenario.meta.get("scope") == "population":
        return f"task/{scenario.id}"
    return f"Patient/{scenario.patient}"


def record_cluster(record: TaskRecord) -> str:
    """A record's cluster; records written before clusters were recorded are each their own task's."""
    return record.cluster or f"task/{record.scenario_id}"


def bootstrap_ratios(units: Sequence[TaskScore], *, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``sum(value) / sum(weight)`` over each of ``resamples`` cluster resamples of ``units``: as many clusters as
    there are, drawn with replacement, each with all its tasks."""
    if not units:
        raise ValueError("no tasks to resample")
    if any(u.weight <= 0 for u in units):
        raise ValueError("every task needs a positive weight")
    value: dict[str, float] = defaultdict(float)
    weight: dict[str, float] = defaultdict(float)
    for unit in units:
        value[unit.cluster] += unit.value
        weight[unit.cluster] += unit.weight
    names = sorted(value)  # the draw does not depend on the order of the records
    values = np.array([value[name] for name in names])
    weights = np.array([weight[name] for name in names])
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    rows = max(1, _DRAWS_AT_ONCE // len(names))
    for first in range(0, resamples, rows):
        drawn = rng.integers(0, len(names), size=(min(rows, resamples - first), len(names)))
        ratios[first : first + len(drawn)] = values[drawn].sum(axis=1) / weights[drawn].sum(axis=1)
    return ratios


def interval(
    units: Sequence[TaskScore], *, scale: float = 100.0, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """The ratio score of ``units`` (times ``scale``) with its percentile bootstrap interval."""
    estimate = sum(u.value for u in units) / sum(u.weight for u in units)
    if len({u.cluster for u in units}) < 2:
        return Interval(estimate=round(scale * estimate, 2), low=None, high=None)
    tail = 100.0 * (1.0 - CONFIDENCE) / 2.0
    low, high = np.percentile(bootstrap_ratios(units, resamples=resamples, seed=seed), [tail, 100.0 - tail])
    return Interval(
        estimate=round(scale * estimate, 2), low=round(scale * float(low), 2), high=round(scale * float(high), 2)
    )


def _checkpoint_share(record: TaskRecord) -> float | None:
    """Checkpoints passed / checkpoints of a record graded at checkpoints (the workflow tier's records carry
    ``checkpoints_passed`` and ``checkpoints_total``)."""
    total = getattr(record, "checkpoints_total", None)
    if not total:
        return None
    return float(getattr(record, "checkpoints_passed", None) or 0) / total


def group_intervals(records: Sequence[TaskRecord], *, resamples: int = RESAMPLES, seed: int = SEED) -> GroupIntervals:
    """pass@1, pass^k (k >= 2, tasks with at least k trials) and the checkpoint rate of ``records``, each with
    its clustered interval."""
    by_task: dict[str, list[TaskRecord]] = defaultdict(list)
    for record in records:
        by_task[record.scenario_id].append(record)
    if not by_task:
        raise ValueError("no records")
    cluster = {task: record_cluster(trials[0]) for task, trials in by_task.items()}
    passes = {task: [r.passed for r in trials] for task, trials in by_task.items()}
    at_1 = [TaskScore(cluster[t], t, float(sum(p)), float(len(p))) for t, p in passes.items()]
    pass_k: dict[str, Interval] = {}
    for k in range(2, max(len(p) for p in passes.values()) + 1):
        units = [
            TaskScore(cluster[t], t, comb(sum(p), k) / comb(len(p), k), 1.0) for t, p in passes.items() if len(p) >= k
        ]
        pass_k[str(k)] = interval(units, resamples=resamples, seed=seed)
    shares = (
        {t: [s for r in trials if (s := _checkpoint_share(r)) is not None] for t, trials in by_task.items()}
        if "checkpoints_total" in type(records[0]).model_fields
        else {}
    )
    checkpoint_units = [TaskScore(cluster[t], t, sum(s), float(len(s))) for t, s in shares.items() if s]
    return GroupIntervals(
        tasks=len(by_task),
        clusters=len(set(cluster.values())),
        pass_at_1=interval(at_1, resamples=resamples, seed=seed),
        pass_hat_k=pass_k,
        checkpoint_rate=interval(checkpoint_units, resamples=resamples, seed=seed) if checkpoint_units else None,
    )


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """McNemar's exact two-sided p-value on the discordant pairs: 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2),
    capped at 1."""
    if only_a < 0 or only_b < 0:
        raise ValueError("counts must not be negative")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)


def format_interval(value: float, found: Interval | dict[str, float] | None, unit: str = "%") -> str:
    """``72.5% [64.1, 80.3]``; ``72.5% [one cluster]`` for tasks of a single patient; just ``72.5%`` when there is
    no interval (summaries written before them)."""
    if found is None:
        return f"{value:.1f}{unit}"
    bounds = found if isinstance(found, Interval) else Interval.model_validate(found)
    if bounds.low is None or bounds.high is None:
        return f"{bounds.estimate:.1f}{unit} [{ONE_CLUSTER}]"
    return f"{bounds.estimate:.1f}{unit} [{bounds.low:.1f}, {bounds.high:.1f}]"


def difference_cell(found: Interval) -> str:
    """A difference in percentage points, signed: ``+7.5 pts [-1.2, +16.0]``."""
    if found.low is None or found.high is None:
        return f"{found.estimate:+.1f} pts [{ONE_CLUSTER}]"
    return f"{found.estimate:+.1f} pts [{found.low:+.1f}, {found.high:+.1f}]"
