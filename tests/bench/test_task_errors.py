"""Issue 30: an errored task says why (phase, exception type, message, where), a run where too many tasks
error fails loudly instead of reporting a score, and two bench servers never end up sharing one port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.runner import RunFailed, run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers import Solver
from medagent.bench.solvers.catalog import make_code_solver
from medagent.fhir.client import FhirClient
from medagent.fhir.server import process
from medagent.fhir.server.process import EmbeddedServer, free_port
from medagent.scenarios.models import Scenario
from medagent.trajectory import RunOutcome

TASKS = 4


class ExplodingSolver:
    """Test double: the oracle, except on the scenarios named, where it raises."""

    name = "exploding-oracle"
    model = None

    def __init__(self, explode_on: set[str]) -> None:
        self.explode_on = explode_on
        self.oracle: Solver = make_code_solver("oracle")

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        if scenario.id in self.explode_on:
            raise RuntimeError(f"exploded on {scenario.id}")
        return await self.oracle.solve(scenario, client, run_id=run_id)


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=TASKS)


async def test_an_errored_task_records_its_phase_type_message_and_place(scenarios: list[Scenario], tmp_path: Path,
                                                                       bench_home: Path) -> None:
    broken = scenarios[1].id
    summary = await run_benchmark(scenarios, ExplodingSolver({broken}), out_dir=tmp_path / "run", home=bench_home,
                                  concurrency=2, show_progress=False, max_error_share=0.5)
    records = {r.scenario_id: r for r in ResultsLog(tmp_path / "run" / "results.jsonl").load()}
    error = records[broken].task_error
    assert error is not None and (error.phase, error.type, error.message) == ("solver", "RuntimeError",
                                                                             f"exploded on {broken}")
    assert error.where is not None and "test_task_errors.py" in error.where and "in solve" in error.where
    assert records[broken].outcome.status == "error" and not records[broken].passed
    assert all(r.task_error is None and r.passed for key, r in records.items() if key != broken)
    assert summary["status"] == "complete" and summary["overall"]["failures"] == {"error": 1}


async def test_too_many_errors_fail_the_run_instead_of_scoring_it(scenarios: list[Scenario], tmp_path: Path,
                                                                  bench_home: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RunFailed, match=r"1 of 4 tasks ended in error \(25.0%, more than the 5% allowed\)"):
        await run_benchmark(scenarios, ExplodingSolver({scenarios[0].id}), out_dir=out, home=bench_home,
                            show_progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["failed"]["by_phase"] == {"solver": 1} and summary["failed"]["by_type"] == {"RuntimeError": 1}
    assert len(ResultsLog(out / "results.jsonl").load()) == TASKS  # every task still has its record


async def test_a_server_that_does_not_answer_fails_each_task_at_its_reset(scenarios: list[Scenario], tmp_path: Path,
                                                                       bench_home: Path) -> None:
    """Past the CLI's up-front check (a server that dies after it): every task fails where it first talks to the
    server, the reset; the run fails loudly and each record names the phase, the error and the URL."""
    dead = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    with pytest.raises(RunFailed, match=rf"{TASKS} of {TASKS} tasks ended in error"):
        await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=out, home=bench_home,
                            show_progress=False, fhir_urls=[dead])
    records: list[TaskRecord] = ResultsLog(out / "results.jsonl").load()
    assert [(r.task_error.phase, r.task_error.type) for r in records if r.task_error] == [
        ("reset", "FhirTransportError")] * TASKS
    assert all(dead in r.task_error.message for r in records if r.task_error)
    assert json.loads((out / "summary.json").read_text())["failed"]["by_phase"] == {"reset": TASKS}


def test_a_dead_fhir_server_fails_the_cli_run_before_anything_is_written(tmp_path: Path, bench_home: Path) -> None:
    """Nothing listens at the FHIR URL: the run checks its servers before it writes anything (issue 25), so the
    CLI exits 2 with one line naming the URL and the failed request, and leaves no results behind. (A server
    that dies during a run fails its tasks at their phase: the tests above.)"""
    dead = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "medagent", "bench", "run", "--agent", "oracle", "--suite", "ehrqa", "--split",
         "test", "--limit", "2", "--out", str(out), "--no-report", "--fhir-url", dead],
        env={**os.environ, "MEDAGENT_HOME": str(bench_home)}, capture_output=True, text=True, timeout=600,
        check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --fhir-url {dead}: the FHIR server does not answer")
    assert "nothing was run" in lines[0] and "Traceback" not in done.stderr
    assert "overall accuracy" not in done.stdout
    assert not (out / "results.jsonl").exists()


def test_a_bench_server_listens_on_the_port_it_chose_itself(synthea_db: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """One run at 64 in flight ended half in error: two of its servers were handed the same "free" port, the
    second could not bind it, and its readiness check was answered by the first, so both tasks' resets ran
    on one server. A port guessed as free here is now never used: the server binds one and says which."""
    with EmbeddedServer(synthea_db, slots=1, slots_dir=tmp_path / "first") as first:
        monkeypatch.setattr(process, "free_port", lambda: first.port)  # the collision, for certain
        with EmbeddedServer(synthea_db, slots=1, slots_dir=tmp_path / "second") as second:
            assert second.port != first.port
            assert second.process is not None and second.process.poll() is None
            listening = {c.laddr.port for c in psutil.Process(second.process.pid).net_connections("tcp")
                         if c.status == psutil.CONN_LISTEN}
            assert listening == {second.port}
            assert httpx.get(f"{second.slot_url(0)}/metadata", timeout=30).status_code == 200


def test_results_reach_the_file_at_once_and_the_disk_at_close(tmp_path: Path) -> None:
    record = TaskRecord(scenario_id="s", suite="ehrqa", category="c", split="test", agent="a", outcome=RunOutcome())
    log = ResultsLog(tmp_path / "results.jsonl", sync_seconds=3600)
    log.append(record)
    log.append(record.model_copy(update={"trial": 1}))
    assert [r.key for r in ResultsLog(log.path).load()] == [("s", 0), ("s", 1)]  # before any fsync or close
    log.close()
    log.append(record.model_copy(update={"trial": 2}))  # appending after close opens the file again
    log.close()
    assert [r.key for r in log.load()] == [("s", 0), ("s", 1), ("s", 2)]
