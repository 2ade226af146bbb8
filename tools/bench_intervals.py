"""Coverage of the bench's 95% intervals on simulated runs whose tasks are clustered by patient, and their cost.

Each simulated run has ``clusters`` patients with ``tasks`` tasks each; a patient's tasks pass with a probability
drawn around 70% (a patient effect on the logit scale with standard deviation ``sd``). The true pass rate is known,
so the share of runs whose interval holds it is the interval's coverage (95% is right). Three intervals:
the bench's (``medagent.bench.uncertainty``: patients resampled, each with all its tasks), the same bootstrap with
every task its own cluster (what ignoring patients would give), and a two-stage bootstrap (patients, then tasks
again inside each drawn patient). Then the time ``summarize`` takes on a 4,000-task run.

    python tools/bench_intervals.py [--runs 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from medagent.bench.results import TaskRecord
from medagent.bench.summary import summarize
from medagent.bench.uncertainty import CONFIDENCE, RESAMPLES, TaskScore, interval
from medagent.trajectory import RunOutcome

DESIGNS = [(20, 30, 0.0), (20, 30, 1.0), (50, 10, 0.0), (50, 10, 1.0), (100, 5, 0.5)]
BASE_RATE = 0.7


def two_stage_interval(outcomes: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Patients with replacement, then each drawn patient's tasks with replacement (the alternative not used)."""
    clusters, tasks = outcomes.shape
    patients = rng.integers(0, clusters, size=(RESAMPLES, clusters))
    picked = rng.integers(0, tasks, size=(RESAMPLES, clusters, tasks))
    rates = outcomes[patients[:, :, None], picked].mean(axis=(1, 2))
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(rates, [tail, 100 - tail])
    return 100 * float(low), 100 * float(high)


def coverage(clusters: int, tasks: int, sd: float, runs: int, rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    logit = np.log(BASE_RATE / (1 - BASE_RATE))
    truth = 100 * float((1 / (1 + np.exp(-(logit + sd * rng.standard_normal(2_000_000))))).mean())
    hits = {"bench (patients)": 0, "tasks only": 0, "two-stage": 0}
    widths: dict[str, list[float]] = {name: [] for name in hits}
    for run in range(runs):
        rate = 1 / (1 + np.exp(-(logit + sd * rng.standard_normal(clusters))))
        outcomes = (rng.random((clusters, tasks)) < rate[:, None]).astype(float)
        units = [TaskScore(f"Patient/{p}", f"{p}-{t}", outcomes[p, t], 1.0) for p in range(clusters) for t in range(tasks)]
        found = {
            "bench (patients)": interval(units, seed=run),
            "tasks only": interval([TaskScore(u.task, u.task, u.value, u.weight) for u in units], seed=run),
        }
        bounds = {name: (i.low, i.high) for name, i in found.items() if i.low is not None and i.high is not None}
        bounds["two-stage"] = two_stage_interval(outcomes, rng)
        for name, (low, high) in bounds.items():
            hits[name] += low <= truth <= high
            widths[name].append(high - low)
    return {name: (100 * hits[name] / runs, float(np.mean(widths[name]))) for name in hits}


def summary_seconds(tasks: int = 4000, patients: int = 100) -> float:
    rng = np.random.default_rng(1)
    records = [TaskRecord(scenario_id=f"t{i}", suite="ehrqa", category=f"c{i % 15}", split="dev", agent="x",
                          outcome=RunOutcome(status="answered", steps=1), passed=bool(rng.random() < BASE_RATE),
                          cluster=f"Patient/{i % patients}") for i in range(tasks)]
    started = time.perf_counter()
    summarize(records)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="Simulated runs per design.")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    print(f"coverage of 95% intervals over {args.runs} simulated runs per design (true pass rate known); "
          f"mean width in points")
    print(f"{'patients':>8} {'tasks/patient':>13} {'patient sd':>10}  " + "  ".join(
        f"{name:>24}" for name in ("bench (patients)", "tasks only", "two-stage")))
    for clusters, tasks, sd in DESIGNS:
        found = coverage(clusters, tasks, sd, args.runs, rng)
        print(f"{clusters:>8} {tasks:>13} {sd:>10.1f}  " + "  ".join(
            f"{f'{cover:.1f}% (width {width:.1f})':>24}" for cover, width in found.values()), flush=True)
    print(f"summarize: 4,000 tasks, 100 patients, 15 categories: {summary_seconds():.2f} s")


if __name__ == "__main__":
    main()
