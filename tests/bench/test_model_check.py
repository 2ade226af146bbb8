"""Issue 17: a run whose model server is down fails fast (one check before the first task) and records
the cause as an error, not as wrong answers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from medagent.bench.model_check import ModelUnreachable, check_model_reachable
from medagent.bench.runner import RESULTS_FILE, RUN_FILE, run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.agent import AgentSolver
from medagent.fhir.server.process import free_port
from medagent.models.openai_compat import OpenAICompatBackend


def test_unreachable_model_fails_the_run_before_any_task(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    backend = OpenAICompatBackend(dead, "medgemma-27b")
    solver = AgentSolver(backend, model="medgemma-27b")
    scenarios = load_scenarios(default_scenarios_dir(), "all", "test")[:3]
    started = time.monotonic()
    with pytest.raises(ModelUnreachable, match="cannot be reached"):
        asyncio.run(run_benchmark(scenarios, solver, out_dir=tmp_path / "run", home=tmp_path / "home",
                                  show_progress=False))
    assert time.monotonic() - started < 30
    run_info = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert dead in run_info["error"]
    results = tmp_path / "run" / RESULTS_FILE
    assert not results.exists() or results.read_text().strip() == ""
    assert not (tmp_path / "run" / "servers").exists()  # no FHIR server was started for a dead model


def test_solvers_without_a_model_server_pass_the_check() -> None:
    class CodePolicy:
        name, model = "oracle", None

    asyncio.run(check_model_reachable(CodePolicy()))
