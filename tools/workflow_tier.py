#!/usr/bin/env python3
"""The workflow tier's figures: the oracle (pass@1, tool calls, tokens of its trajectory replayed through the agent,
against the tier's stated limits) and the wrong policies (pass@1 and checkpoint rate), per category and overall.

Everything runs through the real bench runner on embedded FHIR servers (``run_benchmark``), on the tier as the
generator builds it (or a set folder), and prints Markdown tables; each policy's run folder is kept under --out
(resumable: an existing run folder is finished, not redone).

    python tools/workflow_tier.py [--split test|dev|all] [--out runs/workflow-tier] [--scenarios DIR]
        [--policies oracle,replay,do-nothing,note-only,always-act,setup-only,empty-chart,chart-blind]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from medagent.bench.solvers.chart_blind import ChartBlindSolver
from medagent.bench.solvers.catalog import make_code_solver
from medagent.bench.solvers.replay import ReplaySolver, load_trajectories
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.runner import RESULTS_FILE, run_benchmark
from medagent.config import Settings
from medagent.scenarios import sampling
from medagent.scenarios.build import load_charts
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import population_of
from medagent.scenarios.scenario_files import open_set
from medagent.scenarios.workflow import generate_workflow

POLICIES = ("oracle", "replay", "do-nothing", "note-only", "always-act", "setup-only", "empty-chart", "chart-blind")


def tier(scenarios_dir: Path | None) -> list[Scenario]:
    if scenarios_dir is not None:
        return open_set(scenarios_dir).load("all", "all", "workflow")
    charts = load_charts()
    return generate_workflow(charts, population_of(charts), 2026, sampling.test_patients(c.patient_id for c in charts))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0


async def run_policy(
    name: str, items: list[Scenario], every: list[Scenario], out: Path, home: Path
) -> list[TaskRecord]:
    folder = out / name
    if name == "replay":
        solver: Any = ReplaySolver(load_trajectories(out / "oracle" / RESULTS_FILE))
    elif name == "chart-blind":
        solver = ChartBlindSolver(examples=[s for s in every if s.split == "dev"])
    else:
        solver = make_code_solver(name)
    await run_benchmark(
        items,
        solver,
        out_dir=folder,
        home=home,
        concurrency=2,
        show_progress=False,
        resume=(folder / RESULTS_FILE).exists(),
    )
    return ResultsLog(folder / RESULTS_FILE).load()


def oracle_table(oracle: list[TaskRecord], replay: list[TaskRecord], items: list[Scenario]) -> str:
    limits = items[0].limits
    assert limits is not None
    replayed = {r.scenario_id: r for r in replay}
    by_category: dict[str, list[TaskRecord]] = defaultdict(list)
    for record in oracle:
        by_category[record.category].append(record)
    lines = [
        f"Oracle (stated limits: {limits.max_steps} tool calls, {limits.max_tokens:,} tokens; tokens are the agent's "
        "own count of its trajectory replayed through the agent).",
        "",
        "| category | n | oracle pass@1 | replay passes | calls mean | calls p95 | calls max | tokens mean | "
        "tokens p95 | tokens max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for category, records in [*sorted(by_category.items()), ("**all**", oracle)]:
        calls = [float(r.outcome.tool_calls) for r in records]
        tokens = [
            float(replayed[r.scenario_id].outcome.prompt_tokens + replayed[r.scenario_id].outcome.completion_tokens)
            for r in records
            if r.scenario_id in replayed
        ]
        passed = sum(r.passed for r in records)
        replay_passed = sum(replayed[r.scenario_id].passed for r in records if r.scenario_id in replayed)
        lines.append(
            f"| {category} | {len(records)} | {100 * passed / len(records):.1f} | {replay_passed} | "
            f"{statistics.fmean(calls):.1f} | {p95(calls):.0f} | {max(calls):.0f} | "
            f"{statistics.fmean(tokens) if tokens else 0:,.0f} | {p95(tokens):,.0f} | "
            f"{max(tokens, default=0):,.0f} |"
        )
    return "\n".join(lines)


def policy_table(runs: dict[str, list[TaskRecord]]) -> str:
    names = [n for n in runs if n != "replay"]
    categories = sorted({r.category for records in runs.values() for r in records})
    header = "| category | n | " + " | ".join(f"{n} pass@1 / checkpoints" for n in names) + " |"
    lines = ["Pass@1 and checkpoint rate (%), per policy.", "", header, "|---|---:|" + "---:|" * len(names)]
    for category in [*categories, None]:
        cells = []
        count = 0
        for name in names:
            records = [r for r in runs[name] if category is None or r.category == category]
            count = len(records)
            rates = [r.checkpoints_passed / r.checkpoints_total for r in records if r.checkpoints_total]
            cells.append(
                f"{100 * sum(r.passed for r in records) / len(records):.1f} / {100 * statistics.fmean(rates):.1f}"
            )
        lines.append(f"| {category or '**all**'} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", default="all", choices=("dev", "test", "all"))
    parser.add_argument("--out", type=Path, default=Path("runs/workflow-tier"))
    parser.add_argument("--scenarios", type=Path, default=None)
    parser.add_argument("--policies", default=",".join(POLICIES))
    args = parser.parse_args()
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    every = tier(args.scenarios)
    items = [s for s in every if args.split in ("all", s.split)]
    home = Settings().home
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {name: asyncio.run(run_policy(name, items, every, args.out, home)) for name in names}
    if "oracle" in runs and "replay" in runs:
        print(oracle_table(runs["oracle"], runs["replay"], items), "\n")
    print(policy_table(runs))
    summary = {
        name: {"n": len(records), "pass_at_1": round(100 * sum(r.passed for r in records) / len(records), 2)}
        for name, records in runs.items()
    }
    (args.out / "workflow_tier.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
