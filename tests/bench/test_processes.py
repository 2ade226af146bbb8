"""Issue 17: no process outlives its parent.

Counts real processes (psutil) around SIGTERM and SIGKILL of the embedded server (with its
validation workers running) and of a runner holding a pool of bench servers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from medagent.fhir.server.process import EmbeddedServer
from medagent.fhir.server.validation import PARALLEL_THRESHOLD


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive (zombies count as gone) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_validation_workers(server: EmbeddedServer) -> list[int]:
    """A transaction big enough to be validated in worker processes; returns the server's descendants."""
    entries = [{"resource": {"resourceType": "Basic", "id": f"proc-{i}", "code": {"text": "x"}},
                "request": {"method": "PUT", "url": f"Basic/proc-{i}"}} for i in range(PARALLEL_THRESHOLD + 10)]
    response = httpx.post(f"{server.base_url}/", json={"resourceType": "Bundle", "type": "transaction",
                                                      "entry": entries}, timeout=120)
    assert response.status_code == 200, response.text[:500]
    assert server.process is not None
    children = [p.pid for p in psutil.Process(server.process.pid).children(recursive=True)]
    assert len(children) >= 2, "expected the validation worker processes to be running"
    return children


@pytest.fixture
def server(synthea_db: Path, tmp_path: Path) -> EmbeddedServer:
    shutil.copyfile(synthea_db, tmp_path / "fhir.sqlite")
    started = EmbeddedServer(tmp_path / "fhir.sqlite").start()
    yield started
    started.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_server_signal_leaves_no_child_processes(server: EmbeddedServer, sig: signal.Signals) -> None:
    children = start_validation_workers(server)
    assert server.process is not None
    server.process.send_signal(sig)
    server.process.wait(timeout=30)
    assert wait_gone(children, timeout=15) == []


RUNNER = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from medagent.bench.servers import ServerPool

    async def main() -> None:
        async with ServerPool(2, Path(sys.argv[1]), Path(sys.argv[2])) as pool:
            print(json.dumps([s.process.pid for s in pool.servers]), flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_runner_death_ends_its_servers(bench_home: Path, tmp_path: Path, sig: signal.Signals) -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "work"), str(bench_home)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "MEDAGENT_HOME": str(bench_home)})
    try:
        assert runner.stdout is not None
        line = runner.stdout.readline()
        assert line, runner.stderr.read() if runner.stderr else "runner printed nothing"
        server_pids = json.loads(line)
        assert len(server_pids) == 2 and all(_alive(pid) for pid in server_pids)
        runner.send_signal(sig)
        runner.wait(timeout=30)
        assert wait_gone(server_pids, timeout=15) == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
