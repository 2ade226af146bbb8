"""Scores and costs of a run: accuracy, pass^k, steps, tokens, latency and failures by cause.

``summary.json`` is a :class:`RunSummary` (with its ``format_version``); :func:`summarize` returns it as the JSON
dict the CLI, the report and the tests read, built through the model (so its shape is checked where it is made);
:func:`read_summary` reads a file back as the model.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from math import comb
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medagent.bench.results import TaskRecord

SUMMARY_FORMAT = 1

_STATUS_CAUSE = {"step_limit": "budget", "token_budget": "budget", "timeout": "timeout",
                 "invalid_output": "bad_tool_call", "model_error": "error", "error": "error"}


def failure_cause(record: TaskRecord) -> str | None:
    """Why a task failed, coarsest first: run status (budget, timeout, error), then the grader's cause."""
    if record.passed:
        return None
    return _STATUS_CAUSE.get(record.outcome.status) or record.failure_cause or "wrong_answer"


def pass_hat_k(successes_per_task: list[tuple[int, int]], k: int) -> float | None:
    """tau-bench's pass^k: mean over tasks of C(c, k) / C(n, k) (n trials, c successes)."""
    usable = [(n, c) for n, c in successes_per_task if n >= k]
    if not usable:
        return None
    return sum(comb(c, k) / comb(n, k) for n, c in usable) / len(usable)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class GroupSummary(BaseModel):
    """One group of tasks (the run, a suite, a category, an agent)."""

    n: int = Field(description="Task records (trials counted apart).")
    tasks: int = Field(description="Distinct scenarios.")
    accuracy: float
    pass_hat_k: dict[str, float] = Field(description="k -> tau-bench's pass^k, %.")
    mean_steps: float
    mean_tool_calls: float
    prompt_tokens: int
    completion_tokens: int
    mean_prompt_tokens: float
    latency_p50_s: float
    latency_p95_s: float
    failures: dict[str, int] = Field(description="Failure cause -> count.")


class RunSummary(BaseModel):
    """A run's ``summary.json``."""

    format_version: int = SUMMARY_FORMAT
    overall: GroupSummary
    by_suite: dict[str, GroupSummary]
    by_category: dict[str, GroupSummary]
    by_agent: dict[str, GroupSummary]
    scenario_set_hashes: list[str]
    run: dict[str, Any] | None = Field(None, description="How the run was started (the runner adds it).")
    timing: dict[str, Any] | None = Field(None, description="Wall time and tasks run (the runner adds it).")


def read_summary(path: Path) -> RunSummary:
    """A ``summary.json`` as the model (files written before the format version read as version 1 too)."""
    return RunSummary.model_validate_json(path.read_text())


def summarize_group(records: list[TaskRecord]) -> dict[str, Any]:
    trials: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        trials[record.scenario_id].append(record.passed)
    max_trials = max((len(v) for v in trials.values()), default=0)
    per_task = [(len(v), sum(v)) for v in trials.values()]
    latencies = [r.latency_s for r in records]
    n = len(records)
    return GroupSummary.model_validate({
        "n": n,
        "tasks": len(trials),
        "accuracy": round(100.0 * sum(r.passed for r in records) / n, 2) if n else 0.0,
        "pass_hat_k": {str(k): round(100.0 * v, 2) for k in range(1, max_trials + 1)
                       if (v := pass_hat_k(per_task, k)) is not None},
        "mean_steps": round(statistics.fmean(r.outcome.steps for r in records), 2) if n else 0.0,
        "mean_tool_calls": round(statistics.fmean(r.outcome.tool_calls for r in records), 2) if n else 0.0,
        "prompt_tokens": sum(r.outcome.prompt_tokens for r in records),
        "completion_tokens": sum(r.outcome.completion_tokens for r in records),
        "mean_prompt_tokens": round(statistics.fmean(r.outcome.prompt_tokens for r in records), 1) if n else 0.0,
        "latency_p50_s": round(_percentile(latencies, 0.5), 3),
        "latency_p95_s": round(_percentile(latencies, 0.95), 3),
        "failures": dict(Counter(c for r in records if (c := failure_cause(r)))),
    }).model_dump()


def summarize(records: list[TaskRecord]) -> dict[str, Any]:
    """The run's summary.json: overall, by suite, by category (``suite/category``), by agent."""
    by_category: dict[str, list[TaskRecord]] = defaultdict(list)
    by_suite: dict[str, list[TaskRecord]] = defaultdict(list)
    by_agent: dict[str, list[TaskRecord]] = defaultdict(list)
    for record in records:
        by_category[f"{record.suite}/{record.category}"].append(record)
        by_suite[record.suite].append(record)
        by_agent[record.agent].append(record)
    hashes = sorted({r.scenario_set_hash for r in records if r.scenario_set_hash})
    return RunSummary.model_validate({
        "overall": summarize_group(records),
        "by_suite": {k: summarize_group(v) for k, v in sorted(by_suite.items())},
        "by_category": {k: summarize_group(v) for k, v in sorted(by_category.items())},
        "by_agent": {k: summarize_group(v) for k, v in sorted(by_agent.items())},
        "scenario_set_hashes": hashes,
    }).model_dump(exclude_none=True)
