"""`tools/bench_runner.py` measures the path it describes: its model stand-in makes exactly `--calls` model calls
per task (no answer re-asked by the agent's guards: the ideal wall it divides by assumes them), and its tool calls
reach the server and succeed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from medagent.bench.results import ResultsLog
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_runner.py"


def bench_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_runner_under_test", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_every_task_makes_exactly_the_stated_model_calls(tmp_path: Path, bench_home: Path) -> None:
    tool = bench_runner()
    # every category of the suite, yes/no questions among them (an "unknown" answer to one was re-asked twice)
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "all", limit=40)
    assert any(tool.StandInTask.of(s).answer == "No" for s in scenarios)
    assert any(tool.StandInTask.of(s).answer == "unknown" for s in scenarios)
    for calls in (2, 3):
        out = tmp_path / f"calls-{calls}"
        await run_benchmark(scenarios, tool.stand_in_solver(0.0, calls), out_dir=out, home=bench_home, concurrency=4,
                            show_progress=False)
        records = ResultsLog(out / "results.jsonl").load()
        assert len(records) == len(scenarios)
        assert [len(r.outcome.trace) for r in records] == [calls] * len(scenarios)
        assert tool.off_calls(records, calls) == 0 and tool.tool_errors(records) == 0
        assert {r.outcome.status for r in records} == {"answered"}
        tools = [step.tool for r in records for step in r.outcome.trace if step.is_tool_call]
        assert len(tools) == (calls - 1) * len(scenarios) and tools[0] == "get_patient"
