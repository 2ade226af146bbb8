"""``--workers 2``: two server processes on one port over one SQLite database, over real HTTP.

Each request goes out on a fresh connection (``Connection: close``), so the kernel hands it to
either worker; the tests check that both workers really serve, that a write through one request is
seen by the next reads whoever serves them, that concurrent conditional creates create once,
that concurrent updates of one resource get distinct, consecutive versions, and that the scoring
operations (snapshot/$diff/$reset) agree across workers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from medagent.fhir.server.process import EmbeddedServer

FRESH = {"Connection": "close", "Accept": "application/fhir+json"}
JSON = {**FRESH, "Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def two_workers(synthea_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    db = tmp_path_factory.mktemp("workers") / synthea_db.name
    shutil.copyfile(synthea_db, db)  # a private copy: these tests write
    with EmbeddedServer(db, allow_reset=True, extra_args=["--workers", "2"]) as server:
        yield server


def call(server: EmbeddedServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own (so either worker may take it)."""
    headers = JSON if "json" in kwargs else FRESH
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        return client.request(method, path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


def worker_pids(server: EmbeddedServer) -> list[int]:
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_two_worker_processes_both_serve(two_workers: EmbeddedServer) -> None:
    pids = worker_pids(two_workers)
    assert len(pids) == 2, pids
    before = {pid: cpu_ticks(pid) for pid in pids}
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: call(two_workers, "GET", "/Observation",
                                                params={"code": "http://loinc.org|4548-4"}).status_code, range(120)))
    assert statuses == [200] * 120
    worked = {pid: cpu_ticks(pid) - before[pid] for pid in pids}
    assert all(ticks > 0 for ticks in worked.values()), worked  # each process took some of the requests


def test_a_write_is_seen_by_the_next_reads_whichever_worker_serves_them(two_workers: EmbeddedServer) -> None:
    created = call(two_workers, "POST", "/Patient", json={"resourceType": "Patient", "name": [{"family": "Zqworkers"}]})
    assert created.status_code == 201
    rid = created.json()["id"]
    for _ in range(12):
        read = call(two_workers, "GET", f"/Patient/{rid}")
        assert read.status_code == 200 and read.json()["meta"]["versionId"] == "1"
        assert call(two_workers, "GET", "/Patient", params={"family": "Zqworkers"}).json()["total"] == 1
    body = {"resourceType": "Patient", "id": rid, "name": [{"family": "Zqworkers", "given": ["Ana"]}]}
    assert call(two_workers, "PUT", f"/Patient/{rid}", json=body).status_code == 200
    for _ in range(12):
        read = call(two_workers, "GET", f"/Patient/{rid}")
        assert read.json()["meta"]["versionId"] == "2" and read.json()["name"][0]["given"] == ["Ana"]
    assert call(two_workers, "DELETE", f"/Patient/{rid}").status_code == 200
    for _ in range(6):
        assert call(two_workers, "GET", f"/Patient/{rid}").status_code == 410


def test_concurrent_conditional_creates_create_once(two_workers: EmbeddedServer) -> None:
    identifier = {"system": "urn:medagent:test-workers", "value": "once-1"}
    resource = {"resourceType": "Patient", "identifier": [identifier], "name": [{"family": "Zqonce"}]}
    condition = {"If-None-Exist": f"identifier={identifier['system']}|{identifier['value']}"}
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda _: call(two_workers, "POST", "/Patient", json=resource, headers=condition),
                                range(24)))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] * 23 + [201], statuses
    assert len({reply.json()["id"] for reply in replies}) == 1
    found = call(two_workers, "GET", "/Patient", params={"identifier": f"{identifier['system']}|once-1"}).json()
    assert found["total"] == 1


def test_concurrent_updates_get_distinct_consecutive_versions(two_workers: EmbeddedServer) -> None:
    created = call(two_workers, "POST", "/Patient", json={"resourceType": "Patient", "name": [{"family": "Zqversions"}]})
    rid = created.json()["id"]

    def update(n: int) -> httpx.Response:
        body = {"resourceType": "Patient", "id": rid, "name": [{"family": "Zqversions", "given": [f"g{n}"]}]}
        return call(two_workers, "PUT", f"/Patient/{rid}", json=body)

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(update, range(20)))
    assert [reply.status_code for reply in replies] == [200] * 20
    versions = sorted(int(reply.json()["meta"]["versionId"]) for reply in replies)
    assert versions == list(range(2, 22))
    assert call(two_workers, "GET", f"/Patient/{rid}").json()["meta"]["versionId"] == "21"
    history = call(two_workers, "GET", f"/Patient/{rid}/_history", params={"_count": "50"}).json()
    assert history["total"] == 21
    assert sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"]) == list(range(1, 22))


def test_snapshot_diff_and_reset_agree_across_workers(two_workers: EmbeddedServer) -> None:
    snapshot = call(two_workers, "POST", "/$snapshot").json()["parameter"][0]["valueInteger"]
    created = call(two_workers, "POST", "/Patient", json={"resourceType": "Patient", "name": [{"family": "Zqdiff"}]})
    rid = created.json()["id"]
    for _ in range(6):  # every worker reports the same change
        changes = call(two_workers, "GET", "/$diff", params={"snapshot": snapshot}).json()["changes"]
        assert [(c["resourceType"], c["id"], c["action"]) for c in changes] == [("Patient", rid, "create")]
    restored = call(two_workers, "POST", "/$reset", params={"snapshot": snapshot}).json()
    assert {p["name"]: p["valueInteger"] for p in restored["parameter"]}["restored"] == 1
    for _ in range(6):
        assert call(two_workers, "GET", f"/Patient/{rid}").status_code == 404
        assert call(two_workers, "GET", "/$diff", params={"snapshot": snapshot}).json()["changes"] == []


def test_the_server_refuses_zero_workers(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "medagent.fhir.server", "--db", str(tmp_path / "x.sqlite"),
                             "--no-load", "--workers", "0", "--port", "1"], capture_output=True, text=True,
                            timeout=120, env={**os.environ})
    assert result.returncode == 2 and "--workers must be at least 1" in result.stderr
