"""``bench run --executor ray``: the same tasks on Ray actors (each with its own embedded FHIR server and
solver) give the same verdicts as the local executor, land in the same results log, and resume the same way.
A local Ray cluster with 2 CPUs (the actors reserve none)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medagent.bench.executors import (
    RAY_MISSING,
    LocalExecutor,
    RayExecutor,
    make_executor,
)
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.catalog import make_code_solver
from medagent.config import UserError
from medagent.scenarios.models import Scenario
from tests.required import skip_or_fail

TASKS = 8  # round-robin over the categories of both suites: reads and writes


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    try:
        import ray
    except ImportError:
        skip_or_fail("Ray is not installed (the optional extra medagent[ray])")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def mixed_sample() -> list[Scenario]:
    scenarios = load_scenarios(default_scenarios_dir(), "all", "test", limit=TASKS)
    writes = [s for s in scenarios if s.expected_writes]
    assert writes and len(writes) < len(scenarios), "the sample mixes read-only tasks and tasks that write"
    return scenarios


def verdicts(out: Path) -> dict[tuple[str, int], tuple[bool, str | None, str, list[tuple[str, str]]]]:
    """Per (scenario, trial): passed, failure cause, status and the (action, resource type) of each change."""
    found = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        changes = sorted((c.get("action", ""), c.get("resourceType", "")) for c in record["changes"])
        found[(record["scenario_id"], record["trial"])] = (record["passed"], record["failure_cause"],
                                                           record["outcome"]["status"], changes)
    return found


@pytest.mark.parametrize("policy", ["oracle", "write-twice"])
async def test_ray_gives_the_local_verdicts(policy: str, ray_cluster: Any, mixed_sample: list[Scenario],
                                            tmp_path: Path, bench_home: Path) -> None:
    local = await run_benchmark(mixed_sample, make_code_solver(policy), out_dir=tmp_path / "local", home=bench_home,
                                concurrency=2, show_progress=False, executor=LocalExecutor())
    on_ray = await run_benchmark(mixed_sample, make_code_solver(policy), out_dir=tmp_path / "ray", home=bench_home,
                                 concurrency=2, show_progress=False, executor=RayExecutor())
    assert on_ray["timing"]["executor"] == "ray" and local["timing"]["executor"] == "local"
    assert verdicts(tmp_path / "ray") == verdicts(tmp_path / "local")
    assert len(verdicts(tmp_path / "ray")) == TASKS
    written = [key for key, v in verdicts(tmp_path / "ray").items() if v[3]]
    assert written, "some tasks wrote to their server"
    if policy == "oracle":
        assert on_ray["overall"]["accuracy"] == 100.0
    else:  # a second copy of every created resource: the diff shows it and the graders fail those tasks
        assert on_ray["overall"]["accuracy"] < 100.0


async def test_ray_resumes_a_partial_results_log(ray_cluster: Any, mixed_sample: list[Scenario], tmp_path: Path,
                                                 bench_home: Path) -> None:
    """Resumed on Ray with three servers on two actors (two slots, one slot) after a local start."""
    out = tmp_path / "run"
    await run_benchmark(mixed_sample, make_code_solver("oracle"), out_dir=out, home=bench_home, concurrency=2,
                        show_progress=False)
    results = out / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    kept = lines[:3]
    results.write_bytes(b"".join(kept) + lines[3][: len(lines[3]) // 2])  # killed mid-write of the fourth

    summary = await run_benchmark(mixed_sample, make_code_solver("oracle"), out_dir=out, home=bench_home, concurrency=3,
                                  resume=True, show_progress=False, executor=RayExecutor(slots_per_actor=2))
    after = results.read_bytes().splitlines(keepends=True)
    assert after[:3] == kept, "finished records are kept byte for byte"
    keys = [(json.loads(line)["scenario_id"], json.loads(line)["trial"]) for line in after]
    assert sorted(keys) == sorted((s.id, 0) for s in mixed_sample) and len(keys) == len(set(keys))
    assert summary["timing"]["tasks_run"] == TASKS - 3
    assert summary["overall"]["accuracy"] == 100.0


def test_ray_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(UserError, match=r"pip install 'medagent\[ray\]'"):
        make_executor("ray")
    from medagent.cli import app

    result = CliRunner().invoke(app, ["bench", "run", "--agent", "oracle", "--limit", "1", "--executor", "ray",
                                      "--out", str(tmp_path / "run"), "--no-report"])
    assert result.exit_code == 2
    assert "medagent[ray]" in result.output and RAY_MISSING.split(":")[0] in result.output
    assert not (tmp_path / "run" / "results.jsonl").exists()


def test_bad_executor_and_address_without_ray_are_user_errors() -> None:
    with pytest.raises(UserError, match="--executor 'dask'"):
        make_executor("dask")
    with pytest.raises(UserError, match="--address and --actor-slots apply to --executor ray only"):
        make_executor("local", address="auto")


def test_cli_runs_the_agent_on_ray_against_two_model_replicas(ray_cluster: Any, tmp_path: Path,
                                                              bench_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench run --executor ray --model URL1,URL2``: each actor builds its own agent (the --agent/--model
    choice, not a pickled solver) and both replicas, real HTTP servers in this process, serve the actors."""
    from medagent.cli import app
    from tests.bench.openai_stand_in import MODEL, OpenAIStandIn

    monkeypatch.setenv("MEDAGENT_HOME", str(bench_home))
    with OpenAIStandIn(latency=0.05) as first, OpenAIStandIn(latency=0.05) as second:
        result = CliRunner().invoke(app, [
            "bench", "run", "--suite", "ehrqa", "--limit", "4", "--executor", "ray", "--concurrency", "2",
            "--model", f"{first.base_url},{second.base_url}", "--model-name", MODEL,
            "--out", str(tmp_path / "run"), "--no-report"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4 and {r["outcome"]["status"] for r in records} == {"answered"}
    assert first.chat_requests > 0 and second.chat_requests > 0
    assert first.chat_requests + second.chat_requests == 4 * 2  # get_patient, then the answer, per task
