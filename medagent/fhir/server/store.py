"""SQLite persistence of the embedded server: versioned resources, search index, snapshots.

One file in WAL mode. Every write appends to a change log, so a snapshot is just a change
sequence number: the diff since a snapshot and a reset back to it touch only what changed.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson

from medagent.fhir.server.audit_trail import keep_audit_trail
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search_params import index_resource

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body BLOB,
    UNIQUE (type, id)
);
CREATE TABLE IF NOT EXISTS resource_version (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB,
    PRIMARY KEY (type, id, version)
);
CREATE TABLE IF NOT EXISTS change (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL, id TEXT NOT NULL, action TEXT NOT NULL, prev_version INTEGER
);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idx_token (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT, code TEXT, text TEXT);
CREATE INDEX IF NOT EXISTS idx_token_code ON idx_token (type, param, code, system, rid);
CREATE INDEX IF NOT EXISTS idx_token_rid ON idx_token (rid, param, system, code);
CREATE TABLE IF NOT EXISTS idx_ref (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, ref TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_ref_ref ON idx_ref (type, param, ref, rid);
CREATE INDEX IF NOT EXISTS idx_ref_rid ON idx_ref (rid, param, ref);
CREATE TABLE IF NOT EXISTS idx_date (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_date_lo ON idx_date (type, param, lo, hi, rid);
CREATE INDEX IF NOT EXISTS idx_date_rid ON idx_date (rid, param, lo, hi);
CREATE TABLE IF NOT EXISTS idx_string (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    norm TEXT NOT NULL, raw TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_string_norm ON idx_string (type, param, norm, rid);
CREATE INDEX IF NOT EXISTS idx_string_rid ON idx_string (rid, param, norm);
CREATE TABLE IF NOT EXISTS idx_quantity (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, system TEXT, code TEXT, unit TEXT);
CREATE INDEX IF NOT EXISTS idx_quantity_value ON idx_quantity (type, param, value);
CREATE INDEX IF NOT EXISTS idx_quantity_rid ON idx_quantity (rid, param);
"""

# The search indexes cover what searches read from them (the driving list's rid, the probes' compared
# columns): a search then never visits the index tables themselves (~25% less time on the
# Observation searches of tools/bench_fhir.py). A database from before (user_version below this)
# gets them rebuilt on first open.
SCHEMA_VERSION = 2
INDEXES_BEFORE_V2 = (
    "idx_token_code",
    "idx_token_rid",
    "idx_ref_ref",
    "idx_ref_rid",
    "idx_date_lo",
    "idx_date_rid",
    "idx_string_norm",
    "idx_string_rid",
)

DEFAULT_QUERY_SECONDS = 10.0
# SQLite VM instructions between two looks at the query's deadline. Each look is a Python call, which takes
# the GIL: a query on a pool thread waits for it while the event loop runs other requests (up to the switch
# interval each time), so the looks are kept few (a look every ~0.1-0.3 ms of SQLite work)
PROGRESS_STEPS = 20_000
# SQLite errors that mean "this query is too big", not "the server is broken": a 400 too-costly
_TOO_COSTLY = (
    "interrupted",
    "expression tree is too large",
    "too many sql variables",
    "parser stack overflow",
    "pattern too complex",
    "string or blob too big",
    "too many terms",
)

INDEX_TABLES = ("idx_token", "idx_ref", "idx_date", "idx_string", "idx_quantity")

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource; ``blob`` is its stored JSON (parsed into ``body`` on first use)."""

    type: str
    id: str
    version: int
    last_updated: str
    deleted: bool
    blob: bytes | None

    @cached_property
    def body(self) -> dict[str, Any] | None:
        return None if self.blob is None else orjson.loads(self.blob)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class Change:
    """One resource's net change since a snapshot, in the server's ``$diff`` format."""

    resource_type: str
    id: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "resourceType": self.resource_type,
            "id": self.id,
            "action": self.action,
            "before": self.before,
            "after": self.after,
        }


def now_instant() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_id() -> str:
    return str(uuid.uuid4())


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    if read_only:
        conn.execute("PRAGMA query_only=ON")
    return conn


class Store:
    """Versioned resource storage with a search index.

    Concurrency: one writer connection, used by one thread at a time under ``_write_lock``
    (writes are serialized and each ``transaction()`` is all-or-nothing), and one read-only
    connection per reading thread (WAL lets readers run alongside the writer and each other).
    A thread inside ``transaction()`` reads through the writer, so it sees its own writes.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = self._open(read_only=False)
        self._writer.execute("PRAGMA main.journal_mode=WAL")
        self._writer.execute(f"PRAGMA main.synchronous={self.synchronous}")
        self._writer.execute("PRAGMA foreign_keys=OFF")
        self._create_schema()
        self._write_lock = threading.RLock()
        self._writer_thread: int | None = None
        self._depth = 0
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.query_seconds = DEFAULT_QUERY_SECONDS
        self._writer.set_progress_handler(self._past_deadline, PROGRESS_STEPS)

    def _create_schema(self) -> None:
        """Tables and indexes of this version; an older database's search indexes are rebuilt first."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")  # several worker processes may open one database at once
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                for name in INDEXES_BEFORE_V2:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    synchronous = "NORMAL"  # a committed write survives a crash of this process (WAL), not always of the OS

    def _open(self, *, read_only: bool) -> sqlite3.Connection:
        """A new connection to this store's database (the writer, or one reading thread's)."""
        return _connect(self.path, read_only=read_only)

    def _past_deadline(self) -> bool:
        """SQLite's progress handler: True aborts the running statement (its thread's deadline passed, or the
        CPU budget of its read). The thread's CPU clock is a system call (a few µs): it is read only once the
        budget has passed in wall time, as it must have before it can in CPU time."""
        local = self._local
        now = time.monotonic()
        if now > getattr(local, "deadline", math.inf):
            return True
        return now > getattr(local, "budget_wall_end", math.inf) and time.thread_time() > getattr(
            local, "cpu_deadline", math.inf
        )

    def close(self) -> None:
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._writer.close()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the main file (so a plain file copy holds everything)."""
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # connections -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """The writer inside this thread's write transaction, else this thread's read connection."""
        if self._writer_thread == threading.get_ident():
            return self._writer
        reader = getattr(self._local, "conn", None)
        if reader is None:
            reader = self._open(read_only=True)
            reader.set_progress_handler(self._past_deadline, PROGRESS_STEPS)
            self._local.conn = reader
            self._local.depth = 0
            with self._readers_lock:
                self._readers.append(reader)
        return reader

    def query(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (inside ``reading()`` for a consistent multi-statement view).

        A statement running past ``query_seconds`` is aborted and raised as a 400 ``too-costly``, which
        frees its thread; so is one SQLite refuses as too large. Inside ``read_budget()`` a statement
        still running when the budget ends is aborted as ``ReadBudgetSpent``."""
        self._local.deadline = time.monotonic() + self.query_seconds
        budget_end = getattr(self._local, "budget_end", math.inf)
        self._local.cpu_deadline = budget_end
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if budget_end != math.inf and time.thread_time() >= budget_end and _interrupted(exc):
                raise ReadBudgetSpent(f"a read passed its budget: {sql[:80]}") from None
            raise _too_costly(exc, self.query_seconds) from None
        finally:
            self._local.deadline = self._local.cpu_deadline = math.inf

    @contextmanager
    def read_budget(self, seconds: float) -> Iterator[None]:
        """Reads inside (all statements together) get ``seconds`` of this thread's CPU time: a statement still
        running then is aborted with ``ReadBudgetSpent``, and the caller runs the read again where it may take
        longer (a read changes nothing, so running it twice is safe). CPU time, not wall time: a read the OS
        preempted, on a busy machine, did not cost more and is not moved. Not for writes: they are never cut
        short."""
        self._local.budget_end = time.thread_time() + seconds
        self._local.budget_wall_end = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.budget_end = self._local.budget_wall_end = math.inf

    def query_one(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Statements inside see one consistent state of the database (a read transaction); nests."""
        conn = self._conn()
        if conn is self._writer:
            yield
            return
        outer = self._local.depth == 0
        if outer:
            conn.execute("BEGIN")
        self._local.depth += 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if outer:
                conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all; nests; one writing thread at a time."""
        with self._write_lock:
            outer = self._depth == 0
            if outer:
                self._writer.execute("BEGIN IMMEDIATE")
                self._writer_thread = threading.get_ident()
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._writer_thread = None
                    self._writer.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._writer_thread = None
                self._writer.execute("COMMIT")

    # reads -------------------------------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> StoredResource | None:
        row = (
            self._conn()
            .execute(
                "SELECT version, last_updated, deleted, body FROM resource WHERE type=? AND id=?",
                (resource_type, resource_id),
            )
            .fetchone()
        )
        return None if row is None else _stored(resource_type, resource_id, row)

    def _vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        current = self.read(resource_type, resource_id)
        if current is not None and current.version == version:
            return current
        row = (
            self._conn()
            .execute(
                "SELECT version, last_updated, deleted, body FROM resource_version WHERE type=? AND id=? AND version=?",
                (resource_type, resource_id, version),
            )
            .fetchone()
        )
        return None if row is None else _stored(resource_type, resource_id, row)

    def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        with self.reading():
            return self._vread(resource_type, resource_id, version)

    def rows_by_rid(self, rids: list[int]) -> list[tuple[str, str, bytes]]:
        """(type, id, stored JSON) of live resources by row id, in the order given."""
        found: dict[int, tuple[str, str, bytes]] = {}
        for start in range(0, len(rids), 500):
            chunk = rids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, rtype, res_id, blob in self.query(
                f"SELECT rid, type, id, body FROM resource WHERE deleted = 0 AND rid IN ({marks})", chunk
            ):
                found[rid] = (rtype, res_id, blob)
        return [found[rid] for rid in rids if rid in found]

    def history(
        self, resource_type: str | None, resource_id: str | None, *, since: str | None, count: int, offset: int
    ) -> tuple[int, list[StoredResource]]:
        """(total, one page of versions) of one resource, one type or the whole server, newest first."""
        conditions, args = [], []
        if resource_type is not None:
            conditions.append("type = ?")
            args.append(resource_type)
        if resource_id is not None:
            conditions.append("id = ?")
            args.append(resource_id)
        if since is not None:
            conditions.append("last_updated >= ?")
            args.append(since)
        where = " AND ".join(conditions) or "1"
        versions = (
            f"SELECT type, id, version, last_updated, deleted, body FROM resource WHERE {where} UNION ALL "
            f"SELECT type, id, version, last_updated, deleted, body FROM resource_version WHERE {where}"
        )
        with self.reading():
            total = self.query_one(f"SELECT COUNT(*) FROM ({versions})", [*args, *args])[0]  # type: ignore[index]
            rows = self.query(
                f"{versions} ORDER BY last_updated DESC, version DESC, type, id LIMIT ? OFFSET ?",
                [*args, *args, count, offset],
            )
        return int(total), [StoredResource(t, i, v, lu, bool(d), b) for t, i, v, lu, d, b in rows]

    def count_by_type(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT type, COUNT(*) FROM resource WHERE deleted=0 GROUP BY type ORDER BY type")
        return dict(rows.fetchall())

    def is_empty(self) -> bool:
        return self._conn().execute("SELECT 1 FROM resource LIMIT 1").fetchone() is None

    # writes ------------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> StoredResource:
        """Create with a server-assigned id (FHIR create ignores a client id)."""
        return self.put(body["resourceType"], new_id(), body)[0]

    def put(
        self, resource_type: str, resource_id: str, body: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Update, or create with the client's id. Returns (stored, created)."""
        with self.transaction():
            current = (
                self._conn()
                .execute(
                    "SELECT rid, version, deleted, body FROM resource WHERE type=? AND id=?",
                    (resource_type, resource_id),
                )
                .fetchone()
            )
            if if_match is not None and (current is None or current[1] != if_match):
                found = "no current version" if current is None else f"version {current[1]}"
                raise FhirError(
                    412, f"If-Match version {if_match} does not match {resource_type}/{resource_id} ({found})"
                )
            version = 1 if current is None else current[1] + 1
            if current is not None and not current[2]:
                body = keep_audit_trail(orjson.loads(current[3]), body)
            stamped = _stamp(body, resource_id, version, now_instant())
            blob = orjson.dumps(stamped)
            last_updated = stamped["meta"]["lastUpdated"]
            if current is None:
                rid = self._next_rid()
                self._conn().execute(
                    "INSERT INTO resource (rid, type, id, version, last_updated, deleted, body) VALUES (?,?,?,?,?,0,?)",
                    (rid, resource_type, resource_id, version, last_updated, blob),
                )
                self._log(resource_type, resource_id, "create", None)
            else:
                rid = current[0]
                self._archive(resource_type, resource_id)
                self._unindex(rid)
                self._conn().execute(
                    "UPDATE resource SET version=?, last_updated=?, deleted=0, body=? WHERE rid=?",
                    (version, last_updated, blob, rid),
                )
                self._log(resource_type, resource_id, "update", current[1])
            self._index(rid, stamped)
        created = current is None or bool(current[2])
        return _written(resource_type, resource_id, version, last_updated, stamped, blob), created

    def put_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[StoredResource, bool]]:
        """Bulk :meth:`put` in one transaction: new resources are inserted with batched statements."""
        keys = [(t, i) for t, i, _ in items]
        if len(set(keys)) != len(keys):
            return [self.put(t, i, b) for t, i, b in items]
        with self.transaction():
            existing = self._existing(keys)
            results: list[tuple[StoredResource, bool] | None] = [None] * len(items)
            fresh = []
            for position, (rtype, rid, body) in enumerate(items):
                if (rtype, rid) in existing:
                    results[position] = self.put(rtype, rid, body)
                else:
                    fresh.append(position)
            if fresh:
                last_updated = now_instant()
                next_rid = self._next_rid()
                rows, changes, indexed = [], [], []
                for offset, position in enumerate(fresh):
                    rtype, rid, body = items[position]
                    stamped = _stamp(body, rid, 1, last_updated)
                    blob = orjson.dumps(stamped)
                    rows.append((next_rid + offset, rtype, rid, 1, last_updated, blob))
                    changes.append((rtype, rid, "create", None))
                    indexed.append((next_rid + offset, stamped))
                    results[position] = (_written(rtype, rid, 1, last_updated, stamped, blob), True)
                self._conn().executemany(
                    "INSERT INTO resource (rid, type, id, version, last_updated, deleted, body) VALUES (?,?,?,?,?,0,?)",
                    rows,
                )
                self._conn().executemany(
                    "INSERT INTO change (type, id, action, prev_version) VALUES (?,?,?,?)", changes
                )
                self._index_many(indexed)
        return [r for r in results if r is not None]

    # Statements below read the newest row as ``ORDER BY key DESC LIMIT 1`` rather than ``MAX(key)``: the same
    # index seek here, and one that SQLite can still make when the table is a union (a slot's view, slots.py)

    def _next_rid(self) -> int:
        """The row id of the next new resource (ids of rows deleted by a reset may be used again)."""
        row = self._conn().execute("SELECT rid FROM resource ORDER BY rid DESC LIMIT 1").fetchone()
        return 1 if row is None else int(row[0]) + 1

    def _existing(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        by_type: dict[str, list[str]] = {}
        for rtype, rid in keys:
            by_type.setdefault(rtype, []).append(rid)
        for rtype, ids in by_type.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = (
                    self._conn()
                    .execute(
                        f"SELECT id FROM resource WHERE type=? AND id IN ({','.join('?' * len(chunk))})",
                        [rtype, *chunk],
                    )
                    .fetchall()
                )
                found.update((rtype, row[0]) for row in rows)
        return found

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """Logical delete (a new, deleted version). None if there was nothing live to delete."""
        with self.transaction():
            current = (
                self._conn()
                .execute(
                    "SELECT rid, version, deleted FROM resource WHERE type=? AND id=?", (resource_type, resource_id)
                )
                .fetchone()
            )
            if current is None or current[2]:
                return None
            rid, version = current[0], current[1] + 1
            self._archive(resource_type, resource_id)
            self._unindex(rid)
            last_updated = now_instant()
            self._conn().execute(
                "UPDATE resource SET version=?, last_updated=?, deleted=1, body=NULL WHERE rid=?",
                (version, last_updated, rid),
            )
            self._log(resource_type, resource_id, "delete", current[1])
        return StoredResource(resource_type, resource_id, version, last_updated, True, None)

    def _archive(self, resource_type: str, resource_id: str) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO resource_version (type, id, version, last_updated, deleted, body) "
            "SELECT type, id, version, last_updated, deleted, body FROM resource WHERE type=? AND id=?",
            (resource_type, resource_id),
        )

    def _log(self, resource_type: str, resource_id: str, action: Action, prev_version: int | None) -> None:
        self._conn().execute(
            "INSERT INTO change (type, id, action, prev_version) VALUES (?,?,?,?)",
            (resource_type, resource_id, action, prev_version),
        )

    def _index(self, rid: int, body: dict[str, Any]) -> None:
        self._index_many([(rid, body)])

    def _index_many(self, resources: list[tuple[int, dict[str, Any]]]) -> None:
        token, ref, date, string, quantity = [], [], [], [], []
        for rid, body in resources:
            rows = index_resource(body)
            rtype = body["resourceType"]
            token += [(rid, rtype, *r) for r in rows.token]
            ref += [(rid, rtype, *r) for r in rows.reference]
            date += [(rid, rtype, *r) for r in rows.date]
            string += [(rid, rtype, *r) for r in rows.string]
            quantity += [(rid, rtype, *r) for r in rows.quantity]
        ex = self._conn().executemany
        ex("INSERT INTO idx_token VALUES (?,?,?,?,?,?)", token)
        ex("INSERT INTO idx_ref VALUES (?,?,?,?)", ref)
        ex("INSERT INTO idx_date VALUES (?,?,?,?,?)", date)
        ex("INSERT INTO idx_string VALUES (?,?,?,?,?)", string)
        ex("INSERT INTO idx_quantity VALUES (?,?,?,?,?,?,?)", quantity)

    def _unindex(self, rid: int) -> None:
        for table in INDEX_TABLES:
            self._conn().execute(f"DELETE FROM {table} WHERE rid=?", (rid,))

    # snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> int:
        """Record the current state; returns the snapshot id."""
        with self.transaction():
            self._conn().execute("INSERT INTO snapshot (seq, created) VALUES (?,?)", (self._head(), now_instant()))
            snapshot_id = self.latest_snapshot()
            assert snapshot_id is not None
            return snapshot_id

    def latest_snapshot(self) -> int | None:
        row = self._conn().execute("SELECT id FROM snapshot ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else int(row[0])

    def _head(self) -> int:
        row = self._conn().execute("SELECT seq FROM change ORDER BY seq DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0])

    def _snapshot_seq(self, snapshot_id: int | None) -> tuple[int, int]:
        snapshot_id = snapshot_id if snapshot_id is not None else self.latest_snapshot()
        if snapshot_id is None:
            raise FhirError(409, "no snapshot has been taken; POST /$snapshot first")
        row = self._conn().execute("SELECT seq FROM snapshot WHERE id=?", (snapshot_id,)).fetchone()
        if row is None:
            raise FhirError(404, f"unknown snapshot {snapshot_id}")
        return snapshot_id, int(row[0])

    def _touched_since(self, seq: int) -> list[tuple[str, str, int | None, str]]:
        """(type, id, version at snapshot or None, first action) for each resource changed after seq."""
        rows = (
            self._conn()
            .execute(
                "SELECT seq, type, id, prev_version, action FROM change WHERE seq IN "
                "(SELECT MIN(seq) FROM change WHERE seq > ? GROUP BY type, id) ORDER BY seq",
                (seq,),
            )
            .fetchall()
        )
        return [(t, i, p, a) for _, t, i, p, a in rows]

    def diff(self, snapshot_id: int | None = None) -> tuple[int, list[Change]]:
        """Net changes since the snapshot (default: the latest), one per resource."""
        with self.reading():
            return self._diff(snapshot_id)

    def _diff(self, snapshot_id: int | None) -> tuple[int, list[Change]]:
        snapshot_id, seq = self._snapshot_seq(snapshot_id)
        changes = []
        for rtype, rid, prev_version, _ in self._touched_since(seq):
            before_row = None if prev_version is None else self.vread(rtype, rid, prev_version)
            before = before_row.body if before_row and not before_row.deleted else None
            current = self.read(rtype, rid)
            after = current.body if current and not current.deleted else None
            if before is None and after is None:
                continue
            action: Action = "create" if before is None else "delete" if after is None else "update"
            changes.append(Change(rtype, rid, action, before, after))
        return snapshot_id, changes

    def diff_then_reset(self, since: int | None, reset_to: int | None) -> tuple[int, list[Change], tuple[int, int]]:
        """:meth:`diff` since one snapshot, then :meth:`reset` to another, in one transaction (a scored task's
        last step: what it changed, and the server made clean for the next one)."""
        with self.transaction():
            snapshot_id, changes = self._diff(since)
            return snapshot_id, changes, self.reset(reset_to)

    def reset(self, snapshot_id: int | None = None) -> tuple[int, int]:
        """Restore the snapshot's state; returns (snapshot id, resources restored)."""
        with self.transaction():
            snapshot_id, seq = self._snapshot_seq(snapshot_id)
            touched = self._touched_since(seq)
            for rtype, res_id, prev_version, _ in touched:
                row = self._conn().execute("SELECT rid FROM resource WHERE type=? AND id=?", (rtype, res_id)).fetchone()
                if row is not None:
                    self._unindex(row[0])
                if prev_version is None:
                    self._conn().execute("DELETE FROM resource WHERE type=? AND id=?", (rtype, res_id))
                    self._conn().execute("DELETE FROM resource_version WHERE type=? AND id=?", (rtype, res_id))
                    continue
                old = (
                    self._conn()
                    .execute(
                        "SELECT version, last_updated, deleted, body FROM resource_version WHERE type=? AND id=? AND version=?",
                        (rtype, res_id, prev_version),
                    )
                    .fetchone()
                )
                self._conn().execute(
                    "UPDATE resource SET version=?, last_updated=?, deleted=?, body=? WHERE type=? AND id=?",
                    (*old, rtype, res_id),
                )
                self._conn().execute(
                    "DELETE FROM resource_version WHERE type=? AND id=? AND version>=?", (rtype, res_id, prev_version)
                )
                if row is not None and not old[2]:
                    self._index(row[0], orjson.loads(old[3]))
            self._conn().execute("DELETE FROM change WHERE seq > ?", (seq,))
            self._conn().execute("DELETE FROM snapshot WHERE id > ?", (snapshot_id,))
        return snapshot_id, len(touched)


class ReadBudgetSpent(Exception):
    """A read inside ``Store.read_budget()`` was still running when the budget ended (and was aborted)."""


def _interrupted(exc: sqlite3.OperationalError) -> bool:
    """SQLite aborted the statement because the progress handler said so (a deadline passed)."""
    return "interrupted" in str(exc).lower()


def _too_costly(exc: sqlite3.OperationalError, seconds: float) -> Exception:
    message = str(exc).lower()
    if _interrupted(exc):
        return FhirError(
            400,
            f"the search took longer than the server's limit of {seconds:g} s per query and was "
            "stopped; narrow it (fewer parameters or alternatives, a patient, a date range)",
            code="too-costly",
        )
    if any(text in message for text in _TOO_COSTLY):
        return FhirError(
            400,
            f"the search is too large for the database ({exc}); send fewer parameters or alternatives",
            code="too-costly",
        )
    return exc


def _stored(resource_type: str, resource_id: str, row: tuple[Any, ...]) -> StoredResource:
    version, last_updated, deleted, blob = row
    return StoredResource(resource_type, resource_id, version, last_updated, bool(deleted), blob)


def _written(
    resource_type: str, resource_id: str, version: int, last_updated: str, body: dict[str, Any], blob: bytes
) -> StoredResource:
    stored = StoredResource(resource_type, resource_id, version, last_updated, False, blob)
    stored.__dict__["body"] = body  # already parsed: spare the cached_property a second parse
    return stored


def _stamp(body: dict[str, Any], resource_id: str, version: int, last_updated: str) -> dict[str, Any]:
    meta = {k: v for k, v in (body.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    stamped = {
        "resourceType": body["resourceType"],
        "id": resource_id,
        "meta": {"versionId": str(version), "lastUpdated": last_updated, **meta},
    }
    stamped.update((k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta"))
    return stamped
