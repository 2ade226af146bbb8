#!/usr/bin/env python
"""Benchmark the embedded FHIR server: ingest rate and search latency under agent-like load.

    python tools/bench_fhir.py                    # fresh temp DBs, 2000 requests at 1, 16 and 64 clients
    python tools/bench_fhir.py --requests 500 --concurrency 1,4,16
    python tools/bench_fhir.py --via-cli          # ingest with `medagent fhir load --server URL`
    python tools/bench_fhir.py --url http://127.0.0.1:8321   # searches only, against a loaded server
    python tools/bench_fhir.py --workers 2 --client raw --searches-only

1. Measures the raw-SQLite floor: the same 100 bundles parsed and their resources written as
   JSON rows (one ``executemany`` transaction per bundle, WAL, synchronous=NORMAL) with no
   validation, versioning or search index: the least any SQLite-backed FHIR store must do.
2. Times the server's first-start load of the packaged patients into an empty store (in
   process, the path ``medagent fhir serve`` takes on an empty database).
3. Starts ``medagent fhir serve --no-load`` on an empty temporary database (a real process) and
   ingests the 100 patients over HTTP: one transaction Bundle per patient, ids kept
   (``PUT Type/id`` entries, as ``medagent fhir load`` sends them), one bundle at a time; every
   resource is validated (the server cannot know where HTTP data comes from).
4. Runs a fixed, seeded mix of agent-like requests (patient by name, latest results of one test,
   conditions, active medications, observations in a date range, read by id) with 1, 16 and 64
   concurrent clients, a bounded number of requests per level, and prints p50/p99 latency per
   query kind, throughput, the server's CPU time per request (all its processes), the load
   average, and a summary line against the targets.

Clients (``--client``, default ``both``: each level with each client, one after the other):
``httpx`` gives each concurrent client its own ``httpx.AsyncClient``
with one kept-alive connection (the library the agent's client uses; one AsyncClient shared by 16
tasks halved the throughput and gave 4-6x the p99 at 16 clients, side by side on one server).
``raw`` is the cheaper load generator for a machine whose cores the benchmark shares with the
server: one asyncio stream per concurrent client, kept alive, sending a GET request prepared as
bytes before the clock starts and reading the response status line, headers and the
``Content-Length`` body (nothing parsed beyond that). Both time each request from send to the
last body byte.

``--workers N`` starts the server with N worker processes on one port (``--workers`` of
``medagent fhir serve``); ``--searches-only`` skips the ingest measurements and lets the server load
the patients itself on its first start.

Timings are reported, never asserted (``--check`` turns missed targets into exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from medagent.data import default_archive, iter_bundles
from medagent.fhir.bundles import as_upsert_transaction, count_resources
from medagent.fhir.server.loading import load_into_store
from medagent.fhir.server.process import EmbeddedServer
from medagent.fhir.server.store import Store

INGEST_TARGET_RATIO = 4.0  # first-start load at most 4x the raw-SQLite floor measured in the same run
P99_TARGET_MS = 20.0  # search p99 at 16 clients
P99_TARGET_CLIENTS = 16
TAIL_TARGET_RATIO = 3.0  # p99 at most 3x p50 at 16 clients, with each client (issue 30)
HBA1C = "http://loinc.org|4548-4"


@dataclass
class Request:
    kind: str
    path: str
    params: dict[str, str] | None = None


# --------------------------------------------------------------------------------------------
# the request mix, from the bundle files
# --------------------------------------------------------------------------------------------

def build_mix(count: int, seed: int) -> list[Request]:
    """``count`` requests, equal shares of six agent-like kinds, deterministic for a seed."""
    rng = random.Random(seed)
    patients: list[dict[str, Any]] = []
    codes: dict[str, list[str]] = {}
    years: dict[str, list[int]] = {}
    resources: list[tuple[str, str]] = []
    for _, bundle in iter_bundles():
        items = [e["resource"] for e in bundle.get("entry", [])]
        patient = next(r for r in items if r["resourceType"] == "Patient")
        patients.append(patient)
        observations = [r for r in items if r["resourceType"] == "Observation"]
        codes[patient["id"]] = sorted({f"{c['system']}|{c['code']}" for o in observations for c in o["code"]["coding"]})
        years[patient["id"]] = sorted({int(o["effectiveDateTime"][:4]) for o in observations}) or [2015]
        resources += [(r["resourceType"], r["id"]) for r in items if r["resourceType"] != "Patient"]

    def patient_by_name() -> Request:
        name = rng.choice(patients)["name"][0]
        family = name["family"]
        if rng.random() < 0.5:
            return Request("patient-by-name", "Patient", {"family": family[: max(3, len(family) - 2)]})
        return Request("patient-by-name", "Patient", {"name": name["given"][0], "family": family})

    def latest_results() -> Request:
        pid = rng.choice(patients)["id"]
        code = HBA1C if rng.random() < 0.3 else rng.choice(codes[pid] or [HBA1C])
        return Request("obs-latest", "Observation", {"patient": pid, "code": code, "_sort": "-date", "_count": "5"})

    def conditions() -> Request:
        return Request("conditions", "Condition", {"patient": rng.choice(patients)["id"]})

    def medications() -> Request:
        return Request("medreq-active", "MedicationRequest",
                       {"patient": rng.choice(patients)["id"], "status": "active"})

    def date_range() -> Request:
        pid = rng.choice(patients)["id"]
        start = rng.choice(years[pid])
        params = [("patient", pid), ("date", f"ge{start}-01-01"), ("date", f"lt{start + 2}-01-01")]
        return Request("obs-date-range", "Observation", params)  # type: ignore[arg-type]

    def read() -> Request:
        if rng.random() < 0.3:
            return Request("read", f"Patient/{rng.choice(patients)['id']}")
        rtype, rid = rng.choice(resources)
        return Request("read", f"{rtype}/{rid}")

    makers = [patient_by_name, latest_results, conditions, medications, date_range, read]
    mix = [makers[i % len(makers)]() for i in range(count)]
    rng.shuffle(mix)
    return mix


# --------------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------------

@dataclass
class Ingest:
    bundles: int
    resources: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def raw_sqlite_floor(folder: Path) -> Ingest:
    """Parse each bundle and write its resources as JSON rows: no validation, versions or index."""
    import sqlite3
    import zipfile

    with zipfile.ZipFile(default_archive()) as archive:
        raw = [archive.read(name) for name in sorted(archive.namelist()) if name.endswith(".json")]
    conn = sqlite3.connect(folder / "floor.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE resource (rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, "
                 "body BLOB, UNIQUE (type, id))")
    total = 0
    started = time.perf_counter()
    for payload in raw:
        bundle = orjson.loads(payload)
        rows = [(e["resource"]["resourceType"], e["resource"]["id"], orjson.dumps(e["resource"]))
                for e in bundle.get("entry", []) if e.get("resource")]
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO resource (type, id, body) VALUES (?,?,?)", rows)
        conn.execute("COMMIT")
        total += len(rows)
    seconds = time.perf_counter() - started
    conn.close()
    return Ingest(len(raw), total, seconds)


def first_start_load(folder: Path) -> Ingest:
    """The server's own load of the packaged patients into an empty store (no HTTP)."""
    store = Store(folder / "first-start.sqlite")
    started = time.perf_counter()
    bundles, resources = load_into_store(store)
    seconds = time.perf_counter() - started
    store.close()
    return Ingest(bundles, resources, seconds)


def ingest_http(base_url: str) -> Ingest:
    bundles = list(iter_bundles())
    payloads = [(name, as_upsert_transaction(bundle), count_resources(bundle)) for name, bundle in bundles]
    total = 0
    with httpx.Client(timeout=600) as client:
        started = time.perf_counter()
        for name, payload, resources in payloads:
            response = client.post(base_url, json=payload, headers={"Content-Type": "application/fhir+json"})
            if response.status_code != 200:
                raise SystemExit(f"ingest of {name} failed: {response.status_code} {response.text[:500]}")
            total += resources
        seconds = time.perf_counter() - started
    return Ingest(len(payloads), total, seconds)


def ingest_cli(base_url: str) -> Ingest:
    resources = sum(count_resources(bundle) for _, bundle in iter_bundles())
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "medagent", "fhir", "load", "--server", base_url], check=True,
                   stdout=subprocess.DEVNULL)
    return Ingest(100, resources, time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# search load
# --------------------------------------------------------------------------------------------

@dataclass
class Level:
    concurrency: int
    latencies: dict[str, list[float]]  # kind -> seconds
    seconds: float
    errors: int
    server_cpu_seconds: float | None = None  # CPU the server process used during the level
    load: str = ""  # uptime's line right after the level

    @property
    def cpu_ms_per_request(self) -> float | None:
        count = len(self.all)
        return None if self.server_cpu_seconds is None or not count else self.server_cpu_seconds * 1000 / count

    @property
    def all(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    @property
    def throughput(self) -> float:
        return len(self.all) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1] * 1000


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (Linux /proc), all threads included:
    with ``--workers`` the server is a supervisor and its worker processes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += process_cpu_seconds(int(child))
            except FileNotFoundError:  # it ended meanwhile
                pass
    return total


def load_line() -> str:
    """``uptime``'s line (the load averages), printed with each figure."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


class RawClient:
    """The cheap load generator (``--client raw``): one kept-alive HTTP/1.1 connection (asyncio streams),
    requests prepared as bytes, responses read by ``Content-Length`` and otherwise not parsed."""

    def __init__(self, base_url: str) -> None:
        parsed = urlsplit(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.prefix = parsed.path.rstrip("/")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def prepare(self, request: Request) -> bytes:
        target = f"{self.prefix}/{request.path}"
        if request.params:
            items = request.params.items() if isinstance(request.params, dict) else request.params
            target += "?" + urlencode(list(items))
        return (f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Accept: application/fhir+json\r\n\r\n").encode()

    async def send(self, prepared: bytes) -> int:
        """One request on the kept-alive connection (opened on first use); returns the status code."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(prepared)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise httpx.TransportError(f"response without Content-Length: {head[:200]!r}")
        end = lower.find(b"\r\n", at + 2)
        await self.reader.readexactly(int(head[at + 17:end]))
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def run_level_raw(base_url: str, mix: list[Request], concurrency: int, warmup: int,
                        server_pid: int | None = None) -> Level:
    """:func:`run_level` with the raw client: each concurrent client is one :class:`RawClient`."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    clients = [RawClient(base_url) for _ in range(concurrency)]
    prepared = [(request.kind, request.path, clients[0].prepare(request)) for request in mix]
    for index, (_, _, data) in enumerate(prepared[:warmup]):
        await clients[index % concurrency].send(data)
    position = 0

    async def worker(client: RawClient) -> None:
        nonlocal errors, position
        while position < len(prepared):
            kind, path, data = prepared[position]
            position += 1
            started = time.perf_counter()
            try:
                status = await client.send(data)
            except (OSError, asyncio.IncompleteReadError, httpx.TransportError) as exc:
                errors += 1
                print(f"  {kind} {path}: {exc!r}", file=sys.stderr)
                await client.close()
                continue
            elapsed = time.perf_counter() - started
            if status != 200:
                errors += 1
            latencies[kind].append(elapsed)

    cpu_before = process_cpu_seconds(server_pid) if server_pid else None
    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    seconds = time.perf_counter() - started
    cpu = process_cpu_seconds(server_pid) - cpu_before if server_pid and cpu_before is not None else None
    for client in clients:
        await client.close()
    return Level(concurrency, dict(latencies), seconds, errors, cpu)


async def run_level(base_url: str, mix: list[Request], concurrency: int, warmup: int,
                    server_pid: int | None = None) -> Level:
    """One level with the httpx client: each concurrent client is its own ``httpx.AsyncClient`` holding one
    kept-alive connection (one client shared by all makes every request contend for its pool's lock)."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits,
                                 headers={"Accept": "application/fhir+json"}) for _ in range(concurrency)]
    try:
        for index, request in enumerate(mix[:warmup]):
            await clients[index % concurrency].get(request.path, params=request.params)
        queue: asyncio.Queue[Request] = asyncio.Queue()
        for request in mix:
            queue.put_nowait(request)

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors
            while True:
                try:
                    request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                try:
                    response = await client.get(request.path, params=request.params)
                    await response.aread()
                except httpx.TransportError as exc:  # counted, not fatal: the figures say how many
                    errors += 1
                    print(f"  {request.kind} {request.path}: {exc!r}", file=sys.stderr)
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    errors += 1
                latencies[request.kind].append(elapsed)

        cpu_before = process_cpu_seconds(server_pid) if server_pid else None
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for client in clients))
        seconds = time.perf_counter() - started
        cpu = process_cpu_seconds(server_pid) - cpu_before if server_pid and cpu_before is not None else None
    finally:
        for client in clients:
            await client.aclose()
    return Level(concurrency, dict(latencies), seconds, errors, cpu)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


@dataclass
class Ingests:
    floor: Ingest
    first_start: Ingest
    http: Ingest
    http_mode: str


def print_report(ingests: Ingests | None, levels: list[Level], setup: str = "") -> dict[str, Any]:
    print()
    summary: dict[str, Any] = {"levels": {}}
    parts = []
    if ingests is not None:
        floor = ingests.floor
        for label, ingest in (("raw-SQLite floor", floor), ("first-start load", ingests.first_start),
                              (f"HTTP ({ingests.http_mode})", ingests.http)):
            ratio = ingest.seconds / floor.seconds if floor.seconds else float("nan")
            print(f"ingest {label:<32} {ingest.resources:>7,} resources in {ingest.seconds:6.1f} s = "
                  f"{ingest.rate:>7,.0f} resources/s  ({ratio:.1f}x the floor)")
        ratio = ingests.first_start.seconds / floor.seconds
        http_ratio = ingests.http.seconds / floor.seconds
        summary["ingest"] = {
            "floor": vars(floor) | {"resources_per_s": floor.rate},
            "first_start": vars(ingests.first_start) | {"resources_per_s": ingests.first_start.rate, "x_floor": ratio},
            "http": vars(ingests.http) | {"resources_per_s": ingests.http.rate, "x_floor": http_ratio},
            "target_x_floor": INGEST_TARGET_RATIO}
        parts.append(f"first-start load {ingests.first_start.rate:,.0f} res/s = {ratio:.1f}x the raw-SQLite floor "
                     f"({floor.rate:,.0f} res/s; target <= {INGEST_TARGET_RATIO:.0f}x: "
                     f"{verdict(ratio <= INGEST_TARGET_RATIO)}); HTTP ingest {ingests.http.rate:,.0f} res/s = "
                     f"{http_ratio:.1f}x")
    kinds = sorted({k for level in levels for k in level.latencies})
    head = f"{'query':<18}" + "".join(f"{f'{lv.concurrency} client' + ('s' if lv.concurrency > 1 else ''):>27}"
                                      for lv in levels)
    sub = f"{'':<18}" + "".join(f"{'n':>7}{'p50 ms':>10}{'p99 ms':>10}" for _ in levels)
    print()
    print("search latency")
    print(head)
    print(sub)
    for kind in [*kinds, "all"]:
        row = f"{kind:<18}"
        for level in levels:
            values = level.all if kind == "all" else level.latencies.get(kind, [])
            row += f"{len(values):>7}{percentile(values, 50):>10.1f}{percentile(values, 99):>10.1f}"
        print(row)
    print(f"{'throughput req/s':<18}" + "".join(f"{level.throughput:>27,.0f}" for level in levels))
    print(f"{'errors (non-200)':<18}" + "".join(f"{level.errors:>27}" for level in levels))
    if all(level.cpu_ms_per_request is not None for level in levels):
        print(f"{'server CPU ms/req':<18}" + "".join(f"{level.cpu_ms_per_request:>27.2f}" for level in levels))
        print(f"{'= req/s per core':<18}" + "".join(f"{1000 / level.cpu_ms_per_request:>27,.0f}" for level in levels))
    for level in levels:
        summary["levels"][level.concurrency] = {
            "requests": len(level.all), "errors": level.errors, "throughput": level.throughput,
            "p50_ms": percentile(level.all, 50), "p99_ms": percentile(level.all, 99),
            "server_cpu_ms_per_request": level.cpu_ms_per_request, "uptime": level.load,
            "by_kind": {k: {"n": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
                        for k, v in level.latencies.items()}}
    for level in levels:
        p99 = percentile(level.all, 99)
        text = (f"@{level.concurrency}: p50/p99 {percentile(level.all, 50):.1f}/{p99:.1f} ms, "
                f"{level.throughput:,.0f} req/s")
        if level.concurrency == P99_TARGET_CLIENTS:
            ratio = p99 / percentile(level.all, 50)
            text += (f" (target p99 <= {P99_TARGET_MS:.0f} ms: {verdict(p99 <= P99_TARGET_MS)}; p99/p50 {ratio:.1f}, "
                     f"target <= {TAIL_TARGET_RATIO:.0f}: {verdict(ratio <= TAIL_TARGET_RATIO)})")
        parts.append(text)
    print()
    for level in levels:
        print(f"after {level.concurrency} client(s): {level.load}")
    print(f"summary ({os.cpu_count()} CPUs, {setup}load average {os.getloadavg()[0]:.1f} at the end): "
          + "; ".join(parts))
    summary["setup"] = setup
    return summary


def targets_met(summary: dict[str, Any]) -> bool:
    ingest = summary.get("ingest")
    ok = ingest is None or ingest["first_start"]["x_floor"] <= INGEST_TARGET_RATIO
    level = summary["levels"].get(P99_TARGET_CLIENTS)
    return ok and (level is None or (level["p99_ms"] <= P99_TARGET_MS
                                     and level["p99_ms"] <= TAIL_TARGET_RATIO * level["p50_ms"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level (default 2000)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated client counts (default 1,16,64)")
    parser.add_argument("--warmup", type=int, default=60, help="unmeasured requests before each level")
    parser.add_argument("--seed", type=int, default=4548)
    parser.add_argument("--via-cli", action="store_true", help="ingest with `medagent fhir load --server URL`")
    parser.add_argument("--url", help="benchmark searches on this already-loaded server (no ingest)")
    parser.add_argument("--server-pid", type=int, help="with --url: that server's pid, to report its CPU per request")
    parser.add_argument("--db", type=Path, help="database file for the started server (default: a temp file)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the started server (default 1)")
    parser.add_argument("--client", choices=("httpx", "raw", "both"), default="both",
                        help="load generator: httpx.AsyncClient, the cheaper raw keep-alive streams, or both (default: "
                             "each level with httpx, then raw)")
    parser.add_argument("--searches-only", action="store_true",
                        help="skip the ingest measurements: the started server loads the patients itself")
    args = parser.parse_args(argv)
    levels_wanted = [int(x) for x in args.concurrency.split(",") if x.strip()]
    mix = build_mix(args.requests, args.seed)

    clients = ["httpx", "raw"] if args.client == "both" else [args.client]
    runners = {"httpx": run_level, "raw": run_level_raw}
    target = f"server {'at ' + args.url if args.url else f'with {args.workers} worker(s)'}; "

    async def searches(base_url: str, server_pid: int | None = None) -> dict[str, list[Level]]:
        levels: dict[str, list[Level]] = {client: [] for client in clients}
        for concurrency in levels_wanted:
            for client in clients:  # the clients one after the other at each level: the same load around both
                level = await runners[client](base_url, mix, concurrency, args.warmup, server_pid)
                level.load = load_line()
                cpu = f", server CPU {level.cpu_ms_per_request:.2f} ms/req" if level.cpu_ms_per_request else ""
                print(f"  {client:>5} {concurrency} clients: p50/p99 {percentile(level.all, 50):.1f}/"
                      f"{percentile(level.all, 99):.1f} ms, {level.throughput:,.0f} req/s, {level.errors} errors{cpu}; "
                      f"{level.load}", flush=True)
                levels[client].append(level)
        return levels

    server_args = ["--workers", str(args.workers)] if args.workers > 1 else []

    ingests: Ingests | None = None
    mode = "medagent fhir load" if args.via_cli else "transaction endpoint"
    if args.url:
        levels = asyncio.run(searches(args.url.rstrip("/"), args.server_pid))
    elif args.searches_only:
        with tempfile.TemporaryDirectory() as tmp:
            print("starting the embedded server on an empty database (it loads the patients) ...", flush=True)
            with EmbeddedServer(args.db or Path(tmp) / "bench.sqlite", extra_args=server_args) as server:
                print(f"searching: {args.requests} requests at {args.concurrency} concurrent clients ...", flush=True)
                assert server.process is not None
                levels = asyncio.run(searches(server.base_url, server.process.pid))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            print("raw-SQLite floor: writing the 100 bundles' resources as plain JSON rows ...", flush=True)
            floor = raw_sqlite_floor(folder)
            print(f"  {floor.rate:,.0f} resources/s ({floor.seconds:.1f} s)", flush=True)
            print("first-start load of the packaged patients into an empty store ...", flush=True)
            first = first_start_load(folder)
            print(f"  {first.rate:,.0f} resources/s ({first.seconds:.1f} s)", flush=True)
            db = args.db or folder / "bench.sqlite"
            if db.exists():
                raise SystemExit(f"{db} exists: the benchmark needs an empty database")
            print(f"starting the embedded server on an empty database ({db}) ...", flush=True)
            with EmbeddedServer(db, load_default=False, extra_args=server_args) as server:
                print(f"ingesting 100 patients into {server.base_url} via the {mode} ...", flush=True)
                http = ingest_cli(server.base_url) if args.via_cli else ingest_http(server.base_url)
                print(f"  {http.rate:,.0f} resources/s ({http.seconds:.1f} s)", flush=True)
                ingests = Ingests(floor, first, http, mode)
                print(f"searching: {args.requests} requests at {args.concurrency} concurrent clients ...", flush=True)
                assert server.process is not None
                levels = asyncio.run(searches(server.base_url, server.process.pid))
    summaries = {client: print_report(ingests if client == clients[0] else None, client_levels,
                                      f"{client} client, {target}") for client, client_levels in levels.items()}
    if args.json:
        args.json.write_text(json.dumps(summaries if len(summaries) > 1 else summaries[clients[0]], indent=2))
    return 1 if args.check and not all(targets_met(summary) for summary in summaries.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
