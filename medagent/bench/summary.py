"""Scores and costs of a run: accuracy, pass^k (with 95% intervals), steps, tokens, latency and failures by cause.

``summary.json`` is a :class:`RunSummary` (with its ``format_version``); :func:`summarize` returns it as the JSON
dict the CLI, the report and the tests read, built through the model (so its shape is checked where it is made);
:func:`read_summary` reads a file back as the model.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from math import comb
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medagent.bench.results import TaskRecord
from medagent.bench.uncertainty import BootstrapMethod, GroupIntervals, format_interval, group_intervals

SUMMARY_FORMAT = 2  # 2: each group's intervals and the run's uncertainty method; 1: without them

_STATUS_CAUSE = {
    "step_limit": "budget",
    "token_budget": "budget",
    "timeout": "timeout",
    "invalid_output": "bad_tool_call",
    "model_error": "error",
    "error": "error",
}


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
    checkpoint_rate: float | None = Field(
        None,
        description="Workflow tasks: the mean per-task checkpoint rate, %, "
        "beside pass@1 (None: no task with checkpoints).",
    )
    checkpoints: dict[str, int] | None = Field(None, description="Workflow tasks: checkpoints passed and in all.")
    intervals: GroupIntervals | None = Field(None, description="95% intervals of the scores (summaries of format 2).")


class RunSummary(BaseModel):
    """A run's ``summary.json``."""

    format_version: int = SUMMARY_FORMAT
    overall: GroupSummary
    by_suite: dict[str, GroupSummary]
    by_tier: dict[str, GroupSummary] = Field(default_factory=dict, description="core, hard, workflow.")
    by_category: dict[str, GroupSummary]
    by_agent: dict[str, GroupSummary]
    scenario_set_hashes: list[str]
    uncertainty: BootstrapMethod | None = Field(None, description="How the intervals were computed (format 2).")
    run: dict[str, Any] | None = Field(None, description="How the run was started (the runner adds it).")
    timing: dict[str, Any] | None = Field(None, description="Wall time and tasks run (the runner adds it).")


def read_summary(path: Path) -> RunSummary:
    """A ``summary.json`` as the model (a file written before the format version is version 1)."""
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data.setdefault("format_version", 1)
    return RunSummary.model_validate(data)


def summarize_group(records: list[TaskRecord]) -> dict[str, Any]:
    trials: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        trials[record.scenario_id].append(record.passed)
    max_trials = max((len(v) for v in trials.values()), default=0)
    per_task = [(len(v), sum(v)) for v in trials.values()]
    latencies = [r.latency_s for r in records]
    n = len(records)
    return GroupSummary.model_validate(
        {
            "n": n,
            "tasks": len(trials),
            "accuracy": round(100.0 * sum(r.passed for r in records) / n, 2) if n else 0.0,
            "intervals": group_intervals(records) if records else None,
            "pass_hat_k": {
                str(k): round(100.0 * v, 2)
                for k in range(1, max_trials + 1)
                if (v := pass_hat_k(per_task, k)) is not None
            },
            "mean_steps": round(statistics.fmean(r.outcome.steps for r in records), 2) if n else 0.0,
            "mean_tool_calls": round(statistics.fmean(r.outcome.tool_calls for r in records), 2) if n else 0.0,
            "prompt_tokens": sum(r.outcome.prompt_tokens for r in records),
            "completion_tokens": sum(r.outcome.completion_tokens for r in records),
            "mean_prompt_tokens": round(statistics.fmean(r.outcome.prompt_tokens for r in records), 1) if n else 0.0,
            "latency_p50_s": round(_percentile(latencies, 0.5), 3),
            "latency_p95_s": round(_percentile(latencies, 0.95), 3),
            "failures": dict(Counter(c for r in records if (c := failure_cause(r)))),
            **checkpoint_rate(records),
        }
    ).model_dump()


def checkpoint_rate(records: list[TaskRecord]) -> dict[str, Any]:
    """Workflow tasks: the mean per-task checkpoint rate (%) beside pass@1, and the checkpoints counted."""
    graded = [r for r in records if r.checkpoints_total]
    if not graded:
        return {}
    rates = [(r.checkpoints_passed or 0) / (r.checkpoints_total or 1) for r in graded]
    return {
        "checkpoint_rate": round(100.0 * statistics.fmean(rates), 2),
        "checkpoints": {
            "passed": sum(r.checkpoints_passed or 0 for r in graded),
            "total": sum(r.checkpoints_total or 0 for r in graded),
        },
    }


def summarize(records: list[TaskRecord]) -> dict[str, Any]:
    """The run's summary.json: overall, by suite, by tier, by category (``suite/category``), by agent; each
    group's ``intervals`` were computed as ``uncertainty`` says."""
    by_category: dict[str, list[TaskRecord]] = defaultdict(list)
    by_suite: dict[str, list[TaskRecord]] = defaultdict(list)
    by_agent: dict[str, list[TaskRecord]] = defaultdict(list)
    by_tier: dict[str, list[TaskRecord]] = defaultdict(list)
    for record in records:
        by_tier[record.tier].append(record)
        by_category[f"{record.suite}/{record.category}"].append(record)
        by_suite[record.suite].append(record)
        by_agent[record.agent].append(record)
    hashes = sorted({r.scenario_set_hash for r in records if r.scenario_set_hash})
    return RunSummary.model_validate(
        {
            "overall": summarize_group(records),
            "by_suite": {k: summarize_group(v) for k, v in sorted(by_suite.items())},
            "by_tier": {k: summarize_group(v) for k, v in sorted(by_tier.items())},
            "by_category": {k: summarize_group(v) for k, v in sorted(by_category.items())},
            "by_agent": {k: summarize_group(v) for k, v in sorted(by_agent.items())},
            "scenario_set_hashes": hashes,
            "uncertainty": BootstrapMethod(),
        }
    ).model_dump(exclude_none=True)


def pass_at_1_cell(group: dict[str, Any]) -> str:
    """``72.5% [64.1, 80.3]`` (a summary written before intervals: ``72.5%``)."""
    return format_interval(group["accuracy"], (group.get("intervals") or {}).get("pass_at_1"))


def pass_hat_k_cell(group: dict[str, Any]) -> str:
    """pass^k at the group's largest k with its interval, e.g. ``60.0% [40.0, 80.0] (k=3)``; ``-`` without trials."""
    pass_k = group["pass_hat_k"]
    if not pass_k:
        return "-"
    k = max(pass_k, key=int)
    return f"{format_interval(pass_k[k], ((group.get('intervals') or {}).get('pass_hat_k') or {}).get(k))} (k={k})"


def checkpoint_cell(group: dict[str, Any]) -> str:
    """The mean checkpoint rate with its interval; ``-`` for a group without checkpoint-graded tasks."""
    found = (group.get("intervals") or {}).get("checkpoint_rate")
    if found is None:
        return f"{group['checkpoint_rate']:.1f}%" if "checkpoint_rate" in group else "-"
    return format_interval(found["estimate"], found)


def has_checkpoints(summary: dict[str, Any]) -> bool:
    overall = summary["overall"]
    return "checkpoint_rate" in overall or bool((overall.get("intervals") or {}).get("checkpoint_rate"))
