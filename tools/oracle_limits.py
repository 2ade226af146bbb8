#!/usr/bin/env python3
"""Whether the oracle's trajectories fit the agent's limits: tool calls and tokens per tier (mean, p95, max).

    medagent bench run --scenarios scenarios/v3 --agent oracle --split all --concurrency 2 --out runs/v3-oracle
    python tools/oracle_limits.py runs/v3-oracle [--by-category]

Every trajectory is replayed as the agent's own turns (``medagent.bench.trajectory_cost``: system prompt, tool
catalog, task, every earlier step) and its tokens counted with the Gemma 3 tokenizer under MEDAGENT_HOME (else
characters / 4). The limits are the agent's defaults (``Limits``: a tool call per step before the last, which must
answer; the token budget), or the ones a task states (``Scenario.limits``). Exit status 1 when a passed task does
not fit its limits.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from medagent.agent.state import Limits
from medagent.bench.run_folder import run_set_dir
from medagent.bench.results import ResultsLog
from medagent.bench.runner import RESULTS_FILE
from medagent.bench.trajectory_cost import TrajectoryCost, token_counter, trajectory_cost
from medagent.config import get_settings
from medagent.scenarios.scenario_files import read_scenarios
from medagent.tools.registry import default_registry


def p95(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--by-category", action="store_true", help="A row per category as well as per tier.")
    parser.add_argument("--scenarios", type=Path, help="The set folder (default: the one the run recorded).")
    args = parser.parse_args(argv)
    scenarios = {s.id: s for s in read_scenarios(args.scenarios or run_set_dir(args.run_dir))}
    count, counted_with = token_counter(get_settings().home)
    tools = default_registry().openai_schemas(None)
    groups: dict[str, list[TrajectoryCost]] = defaultdict(list)
    over: list[str] = []
    passed = failed = 0
    for record in ResultsLog(args.run_dir / RESULTS_FILE).load():
        scenario = scenarios[record.scenario_id]
        if not record.passed:
            failed += 1
            continue
        passed += 1
        cost = trajectory_cost(scenario, record.outcome.trace, tools, count)
        stated = scenario.limits
        limits = Limits.model_validate(stated.model_dump() if stated else {})
        if not cost.within(limits):
            over.append(f"{scenario.id}: {cost.tool_calls} calls, {cost.tokens} tokens")
        groups[scenario.tier].append(cost)
        if args.by_category:
            groups[f"{scenario.tier}/{scenario.suite}/{scenario.category}"].append(cost)
    print(f"{passed} passed trajectories ({failed} not passed, left out); tokens by {counted_with}")
    print("| tier / category | n | calls mean | calls p95 | calls max | tokens mean | tokens p95 | tokens max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(groups):
        costs = groups[key]
        calls, tokens = [c.tool_calls for c in costs], [c.tokens for c in costs]
        print(f"| {key} | {len(costs)} | {statistics.mean(calls):.1f} | {p95(calls)} | {max(calls)} | "
              f"{statistics.mean(tokens):,.0f} | {p95(tokens):,} | {max(tokens):,} |")
    print(f"over the limits: {len(over)}")
    for line in over[:20]:
        print("  " + line)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
