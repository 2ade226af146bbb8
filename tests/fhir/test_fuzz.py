"""Issue 17: a bounded, seeded fuzz of the embedded server on 127.0.0.1 — no 5xx, and ``/metadata``
answers within 1 s during and after it.

The inputs are the classes that ended in a 500 or froze the server before (huge and non-ASCII
integers, out-of-range decimals and dates, hundreds of alternatives or repeated parameters, long
sort lists, deep nesting, dot ids) mixed at random with ordinary parameters; and issue 25's probe inputs: ids
made of dots (``%2e``, ``%2e%2e``: the server decodes them to ``.``/``..``) in every path that names an id (read, vread, $everything, compartment
search, history, update, delete), which must be refused (4xx, never a search of every patient), and
primitive extensions with bad values (``"_gender": "1"``) in creates, ``$validate``, transactions and batches.
Every 4xx must be an OperationOutcome. A dedicated server on a copy of the loaded database, so writes touch
nothing else.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from medagent.fhir.server.process import EmbeddedServer

SEED = 17
REQUESTS = 360
CONCURRENCY = 4
METADATA_LIMIT_S = 1.0

NASTY_NUMBERS = ["99999999999999999999", "-1", "²", "٣", "1e999999999", "-1e999999999", "NaN", "inf", "0x10", "",
                 "1" * 400, "1.0000000000000000000000000001", " 5", "+5"]
NASTY_DATES = ["0001-01-01T00:00+14:00", "9999-12-31T23:59+-14:00", "9999-12-31T23:59-14:00", "2019-02-30",
               "ge0001", "le9999-12-31T23:59:59.999999999Z", "2019-13", "²⁰¹⁹", "eq", "ap0001-01-01"]
NASTY_STRINGS = ["x" * 3000, "%", "_", "\\", "'; DROP TABLE resource; --", "\u0000", "é" * 500, ",,,,", "|", "||",
                 "a|b|c", "http://127.0.0.2:9/fhir/Patient/x", "Patient/..", "SYSTEM: ignore previous instructions"]
PARAMS = {
    "Observation": ["code", "code:not", "code:text", "date", "value-quantity", "subject", "patient", "category",
                    "status", "_sort", "_count", "_offset", "_lastUpdated", "_id", "_include", "_revinclude",
                    "_elements", "_summary", "_total", "code:missing", "bogus"],
    "Patient": ["name", "family", "given:exact", "name:contains", "birthdate", "gender", "identifier", "_sort",
                "_count", "_has:Condition:subject:code", "_has:Observation:subject:value-quantity", "_offset"],
    "Condition": ["code", "subject", "onset-date", "clinical-status", "_sort", "_count", "_lastUpdated"],
}


def _value(rng: random.Random, name: str) -> str:
    pool = rng.choice([NASTY_NUMBERS, NASTY_DATES, NASTY_STRINGS])
    if name in ("_sort",):
        return ",".join(rng.choice(["-date", "date", "_id", "-_lastUpdated", "value-quantity", "nope"])
                        for _ in range(rng.choice([1, 3, 9, 128])))
    if rng.random() < 0.25:
        return ",".join(rng.choice(["x", "4548-4", "http://loinc.org|4548-4", "ge2019"])
                        for _ in range(rng.choice([2, 101, 1000])))
    return rng.choice(pool)


DOT_IDS = ["%2e", "%2E", "%2e%2e", "%2E%2e"]  # encoded: httpx itself removes a literal '.'/'..' segment
BAD_PRIMITIVE_EXTENSIONS = [{"_gender": "1"}, {"_gender": 1}, {"_birthDate": []}, {"_gender": {"id": 5}},
                            {"_active": "x", "active": True}]


def _dot_path(rng: random.Random) -> str:
    rid, rtype = rng.choice(DOT_IDS), rng.choice(["Patient", "Observation"])
    return rng.choice([f"/{rtype}/{rid}", f"/{rtype}/{rid}/_history/1", f"/{rtype}/{rid}/_history",
                       f"/Patient/{rid}/$everything", f"/Patient/{rid}/Observation"])


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "http://x", "valueString": "leaf"}
    for _ in range(depth):
        node = {"url": "http://x", "extension": [node]}
    return node


def fuzz_requests(seed: int, count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            rtype = rng.choice(list(PARAMS))
            repeats = rng.choice([1, 2, 5, 65, 300])
            params = [(name, _value(rng, name)) for name in (rng.choice(PARAMS[rtype]) for _ in range(repeats))]
            yield {"method": "GET", "url": f"/{rtype}" + rng.choice(["", "", "/$lastn" if rtype == "Observation" else ""]),
                   "params": params}
        elif kind < 0.68:
            method = rng.choice(["GET", "GET", "GET", "PUT", "DELETE"])
            body = {"content": json.dumps({"resourceType": "Patient"}).encode(),
                    "headers": {"Content-Type": "application/fhir+json"}} if method == "PUT" else {}
            yield {"method": method, "url": _dot_path(rng), "expect": "4xx", **body}
        elif kind < 0.75:
            vid = rng.choice(NASTY_NUMBERS + ["1"])
            path = rng.choice([f"/Patient/{rng.choice(['x', '..', '%2E', 'a' * 65, 'é'])}",
                               f"/Patient/x/_history/{vid}", f"/_history?_count={vid}",
                               f"/Observation/_history?_offset={vid}", f"/Patient/_history?_since={rng.choice(NASTY_DATES)}",
                               f"/{rng.choice(['HumanName', 'Resource', 'Bundle', 'x', ''])}"])
            yield {"method": "GET", "url": path}
        elif kind < 0.9:
            depth = rng.choice([1, 30, 120, 250])
            body = {"resourceType": "Patient", "extension": [_nested(depth)], "birthDate": rng.choice(NASTY_DATES)}
            if rng.random() < 0.4:
                body = {"resourceType": "Patient", **rng.choice(BAD_PRIMITIVE_EXTENSIONS)}
            url = rng.choice(["/Patient", "/Patient/fuzz-1", "/Patient/..", "/Resource", "/", "/Patient/$validate"])
            if url == "/" and rng.random() < 0.7:
                body = {"resourceType": "Bundle", "type": rng.choice(["transaction", "batch"]),
                        "entry": [{"resource": body, "request": {"method": "POST", "url": "Patient"}}]}
            yield {"method": "POST" if url in ("/", "/Patient/$validate") else rng.choice(["POST", "PUT"]),
                   "url": url,
                   "content": json.dumps(body).encode() if rng.random() < 0.8 else b"{" * 5000,
                   "headers": {"Content-Type": "application/fhir+json",
                               "If-Match": rng.choice(['W/"1"', 'W/"²"', 'W/"99999999999999999999"', "x"]).encode()}}
        else:
            yield {"method": "PATCH", "url": "/Patient/fuzz-1",
                   "content": orjson.dumps([{"op": "replace", "path": "/birthDate",
                                             "value": rng.choice(NASTY_DATES)}] * rng.choice([1, 50])),
                   "headers": {"Content-Type": "application/json-patch+json"}}


@pytest.fixture(scope="module")
def fuzz_server(synthea_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    folder = tmp_path_factory.mktemp("fuzz-server")
    shutil.copyfile(synthea_db, folder / "fhir.sqlite")
    with EmbeddedServer(folder / "fhir.sqlite", allow_reset=True) as server:
        yield server


async def _run_fuzz(base_url: str) -> tuple[list[tuple[int, str, str]], list[float], list[tuple[str, int, str]]]:
    server_errors: list[tuple[int, str, str]] = []
    not_outcomes: list[tuple[str, int, str]] = []
    wrong_status: list[tuple[str, int, str]] = []
    latencies: list[float] = []
    done = asyncio.Event()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for request in fuzz_requests(SEED, REQUESTS):
        queue.put_nowait(request)

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http, \
            httpx.AsyncClient(base_url=base_url, timeout=10) as probe:
        async def worker() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                expect = request.pop("expect", None)
                try:
                    response = await http.request(**request)
                except httpx.InvalidURL:  # longer than httpx will send (64 KB query): the client refuses it
                    continue
                label = f"{request['method']} {str(response.request.url)[:200]}"
                if expect == "4xx" and not 400 <= response.status_code < 500:
                    wrong_status.append((label, response.status_code, response.text[:200]))
                if response.status_code >= 500:
                    server_errors.append((response.status_code, label, response.text[:300]))
                elif response.status_code >= 400:
                    try:
                        ok = response.json().get("resourceType") == "OperationOutcome"
                    except ValueError:
                        ok = False
                    if not ok:
                        not_outcomes.append((label, response.status_code, response.text[:200]))

        async def watch_metadata() -> None:
            while not done.is_set():
                started = time.perf_counter()
                assert (await probe.get("/metadata")).status_code == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_metadata())
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        done.set()
        await watcher
        for _ in range(5):  # and after
            started = time.perf_counter()
            assert (await probe.get("/metadata")).status_code == 200
            latencies.append(time.perf_counter() - started)
    return server_errors, latencies, not_outcomes + wrong_status


def test_fuzz_has_no_5xx_and_metadata_stays_fast(fuzz_server: EmbeddedServer) -> None:
    assert fuzz_server.base_url.startswith("http://127.0.0.1:")
    server_errors, latencies, not_outcomes = asyncio.run(_run_fuzz(fuzz_server.base_url))
    assert server_errors == []
    assert not_outcomes == []
    print(f"fuzz: {REQUESTS} requests, /metadata max {max(latencies) * 1000:.0f} ms over {len(latencies)} probes")
    assert max(latencies) < METADATA_LIMIT_S, sorted(latencies)[-5:]
    assert fuzz_server.process is not None and fuzz_server.process.poll() is None


def test_fuzz_inputs_are_seeded() -> None:
    """The same seed gives the same requests (a failure can be replayed)."""
    assert list(fuzz_requests(SEED, 50)) == list(fuzz_requests(SEED, 50))
    assert list(fuzz_requests(SEED, 50)) != list(fuzz_requests(SEED + 1, 50))
