"""Scoring through standard FHIR only (history + run tags, reset by before-images), on the embedded server
with its scoring operations switched off: the oracle passes every task, with the same changes as the
fast path, and the server ends as it began."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medagent.bench.policies import make_policy
from medagent.bench.results import ResultsLog
from medagent.bench.runner import RESULTS_FILE, run_benchmark
from medagent.bench.scenario_sets import open_set, set_dir
from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirClientError, FhirGone, FhirNotFound
from medagent.fhir.server.process import EmbeddedServer
from tests.conftest import copy_db


def _tasks() -> list:
    chosen = open_set(set_dir("v2"))
    writes = [s for s in chosen.load("agentic", "test", "core") if not s.read_only][:10]
    with_setup = [s for s in chosen.load("all", "test", "all") if s.setup][:4]
    reads = chosen.load("ehrqa", "test", "core", limit=6)
    return writes + with_setup + reads


async def test_oracle_scores_fully_through_history_and_tags(tmp_path: Path, synthea_db: Path,
                                                            bench_home: Path) -> None:
    tasks = _tasks()
    assert any(s.setup for s in tasks) and any(not s.read_only for s in tasks)
    with EmbeddedServer(copy_db(synthea_db, tmp_path / "plain"), allow_reset=False) as server:
        async with FhirClient(server.base_url) as client:
            with pytest.raises(FhirClientError):
                await client.snapshot()  # the private scoring operations are off
        summary = await run_benchmark(tasks, make_policy("oracle"), out_dir=tmp_path / "standard", home=bench_home,
                                      show_progress=False, fhir_urls=[server.base_url])
        standard = {r.scenario_id: r for r in ResultsLog(tmp_path / "standard" / RESULTS_FILE).load()}
        assert [r.scenario_id for r in standard.values() if not r.passed] == []
        assert summary["overall"]["n"] == len(tasks)

        # the same changes as the embedded fast path
        await run_benchmark(tasks, make_policy("oracle"), out_dir=tmp_path / "embedded", home=bench_home,
                            show_progress=False)
        embedded = {r.scenario_id: r for r in ResultsLog(tmp_path / "embedded" / RESULTS_FILE).load()}
        for scenario_id, record in standard.items():
            got = sorted((c["resourceType"], c["action"]) for c in record.changes)
            want = sorted((c["resourceType"], c["action"]) for c in embedded[scenario_id].changes)
            assert got == want, scenario_id
        assert any(record.changes for record in standard.values())

        # reset undid every write: what the tasks created is gone, setup resources are as before
        async with FhirClient(server.base_url) as client:
            for record in standard.values():
                for change in record.changes:
                    if change["action"] == "create":
                        with pytest.raises((FhirGone, FhirNotFound)):
                            await client.read_json(change["resourceType"], change["id"])
            for scenario in tasks:
                for resource in scenario.setup:
                    with pytest.raises((FhirGone, FhirNotFound)):
                        await client.read_json(resource["resourceType"], resource["id"])


def test_bench_run_on_a_fhir_url_scores_there(tmp_path: Path, synthea_db: Path, bench_home: Path) -> None:
    with EmbeddedServer(copy_db(synthea_db, tmp_path / "plain"), allow_reset=False) as server:
        result = subprocess.run([sys.executable, "-m", "medagent", "bench", "run", "--agent", "oracle", "--suite",
                                 "agentic", "--limit", "4", "--out", str(tmp_path / "run"), "--no-report",
                                 "--fhir-url", server.base_url], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "MEDAGENT_HOME": str(bench_home)})
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "run" / RESULTS_FILE).read_text().splitlines()]
    assert len(records) == 4 and all(r["passed"] for r in records)
    assert not (tmp_path / "run" / "servers").exists()  # no embedded server was started


def test_bench_run_refuses_an_empty_fhir_url(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "medagent", "bench", "run", "--agent", "oracle", "--limit", "1",
                             "--out", str(tmp_path / "run"), "--fhir-url", " , "], capture_output=True, text=True)
    assert result.returncode == 2 and "--fhir-url" in result.stderr
