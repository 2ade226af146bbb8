"""Task databases ("slots"): one server process serves many, each the loaded template under its own changes.

A slot's database file holds only what was written on that slot. The template (a loaded database, read-only,
opened ``immutable`` so no locks are taken on it, and shared through the OS page cache by every slot) is
attached to each of the slot's connections as ``base``. Temporary views named like the store's tables show the
union: the template's rows the slot has not replaced, then the slot's own rows. INSTEAD OF triggers send the
store's writes to the slot's tables (a replaced or deleted template resource is hidden by its row id in
``hidden_resource``; its search-index rows, which the store always deletes together, by ``hidden_index``). So
:class:`~medagent.fhir.server.store.Store` runs on a slot unchanged: reads, searches, writes, versions and
history, snapshots, ``$reset`` and ``$diff``. Resetting a slot to the template deletes the slot's rows: a few
milliseconds, whatever the template's size; nothing is copied when a slot is made.

Over HTTP, slot ``n`` is the FHIR API at ``/slots/{n}`` (:class:`SlotRouting`): the prefix becomes part of the
base URL, so absolute URLs, ``fullUrl``s, paging links and ``Location`` headers name the slot.

A statement over a union view is planned well when SQLite can flatten the view or push the statement's
conditions into both halves; the store's and the search's SQL keep to such shapes (``tests/fhir/test_slots.py``
checks every statement a slot runs for full scans of the template).
"""

from __future__ import annotations

import re
import sqlite3
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from medagent.fhir.server.outcome import FhirError, outcome_body
from medagent.fhir.server.store import SCHEMA_VERSION, Store

SLOT_PATH = re.compile(r"/slots/(\d{1,6})(?=/|$)")
RESOURCE_TABLE = "resource"
# The slot's own tables are the template's, renamed with this prefix: a trigger may not name a schema, so the
# tables it writes must not share the names of the views it is attached to
PREFIX = "slot_"
HIDDEN_RESOURCE = "slot_hidden_resource"  # template resources replaced or deleted on the slot (by row id)
HIDDEN_INDEX = "slot_hidden_index"  # template resources whose search-index rows the slot replaced (by row id)
HIDDEN_TABLES = (
    f"CREATE TABLE {HIDDEN_RESOURCE} (rid INTEGER PRIMARY KEY)",
    f"CREATE TABLE {HIDDEN_INDEX} (rid INTEGER PRIMARY KEY)",
)
TEMPLATE_MMAP_BYTES = 1 << 30  # template pages are read through the shared mapping, not copied per connection
CACHE_KIB = 512  # each slot connection's own page cache (the slot's tables are small)

request_store: ContextVar[Store] = ContextVar("request_store")
"""The store of the slot the current request addressed (set by :class:`SlotRouting`)."""


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # primary key columns (append-only tables: how a row is deleted)
    ddl: tuple[str, ...]  # CREATE TABLE and CREATE INDEX statements of the slot's copy (renamed)


@dataclass(frozen=True)
class Template:
    """A loaded database that slots are made from; it must not change while slots use it."""

    path: Path
    tables: tuple[TableShape, ...]
    head_seq: int  # its newest change: a slot's snapshot at this sequence is the template itself

    @classmethod
    def open(cls, path: Path) -> Template:
        path = path.resolve()
        if not path.is_file():
            raise ValueError(f"slot template {path} does not exist")
        if Path(f"{path}-wal").exists() and Path(f"{path}-wal").stat().st_size:
            raise ValueError(f"slot template {path} has a write-ahead log: close its writers (checkpoint) first")
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise ValueError(
                    f"slot template {path} has schema version {version}, this server {SCHEMA_VERSION}: "
                    "open it once with the plain server (medagent fhir serve --db) to update it"
                )
            schema = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL "
                "AND tbl_name NOT LIKE 'sqlite%' ORDER BY type DESC, name"
            ).fetchall()
            tables = []
            for kind, name, _, sql in schema:
                if kind != "table":
                    continue
                info = conn.execute(f"PRAGMA table_info({name})").fetchall()
                key = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
                ddl = [_renamed(sql)] + [_renamed(s) for k, _, t, s in schema if k == "index" and t == name]
                tables.append(TableShape(name, tuple(row[1] for row in info), key, tuple(ddl)))
            head = conn.execute("SELECT seq FROM change ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            conn.close()
        return cls(path, tuple(tables), int(head[0]) if head else 0)

    @property
    def uri(self) -> str:
        return f"{self.path.as_uri()}?mode=ro&immutable=1"


def _renamed(ddl: str) -> str:
    """A template table's or index's CREATE statement (as SQLite keeps it), for the slot's copy."""
    renamed = re.sub(r"^CREATE TABLE (\w+)", rf"CREATE TABLE {PREFIX}\1", ddl)
    return re.sub(r"^CREATE INDEX (\w+) ON (\w+)", rf"CREATE INDEX {PREFIX}\1 ON {PREFIX}\2", renamed)


def _is_index(table: TableShape) -> bool:
    """Search-index tables: rows keyed by the resource's row id, deleted all together (``Store._unindex``)."""
    return table.name != RESOURCE_TABLE and "rid" in table.columns


def _view_sql(table: TableShape) -> str:
    cols = ", ".join(table.columns)
    hidden = HIDDEN_RESOURCE if table.name == RESOURCE_TABLE else HIDDEN_INDEX if _is_index(table) else None
    where = f" WHERE rid NOT IN (SELECT rid FROM {hidden})" if hidden else ""
    return (
        f"CREATE TEMP VIEW {table.name} AS SELECT {cols} FROM base.{table.name}{where} "
        f"UNION ALL SELECT {cols} FROM {PREFIX}{table.name}"
    )


def _trigger_sql(table: TableShape) -> list[str]:
    """INSTEAD OF triggers: the store's INSERT, UPDATE and DELETE on the view, done on the slot's own tables."""
    name, own, cols = table.name, PREFIX + table.name, ", ".join(table.columns)
    new = ", ".join(f"NEW.{c}" for c in table.columns)
    read_only = f"SELECT RAISE(ABORT, 'a slot cannot change the template''s {name} rows this way');"
    insert = f"INSERT INTO {own} ({cols}) VALUES ({new});"
    if name == RESOURCE_TABLE:
        replaced = ", ".join("OLD.rid" if c == "rid" else f"NEW.{c}" for c in table.columns)
        on_insert = f"SELECT RAISE(ABORT, 'a new resource on a slot needs its row id') WHERE NEW.rid IS NULL; {insert}"
        on_update = (
            f"SELECT RAISE(ABORT, 'a slot cannot change a row id') WHERE NEW.rid IS NOT OLD.rid; "
            f"INSERT OR IGNORE INTO {HIDDEN_RESOURCE} (rid) VALUES (OLD.rid); "
            f"INSERT OR REPLACE INTO {own} ({cols}) VALUES ({replaced});"
        )
        on_delete = (
            f"INSERT OR IGNORE INTO {HIDDEN_RESOURCE} (rid) VALUES (OLD.rid); DELETE FROM {own} WHERE rid = OLD.rid;"
        )
    elif _is_index(table):
        on_insert, on_update = insert, read_only
        on_delete = (
            f"INSERT OR IGNORE INTO {HIDDEN_INDEX} (rid) VALUES (OLD.rid); DELETE FROM {own} WHERE rid = OLD.rid;"
        )
    else:  # append-only: versions, the change log, snapshots
        match = " AND ".join(f"{c} = OLD.{c}" for c in table.key or table.columns)
        on_insert, on_update = insert, read_only
        on_delete = (
            f"SELECT RAISE(ABORT, 'a slot cannot delete the template''s {name} rows') "
            f"WHERE EXISTS (SELECT 1 FROM base.{name} WHERE {match}); DELETE FROM {own} WHERE {match};"
        )
    return [
        f"CREATE TEMP TRIGGER {name}_{event.lower()} INSTEAD OF {event} ON {name} BEGIN {body} END"
        for event, body in (("INSERT", on_insert), ("UPDATE", on_update), ("DELETE", on_delete))
    ]


class SlotStore(Store):
    """A :class:`Store` whose database is ``template`` plus this slot's changes (kept in ``path``)."""

    synchronous = "OFF"  # a slot is scratch: it starts from the template again after any crash

    def __init__(self, path: Path, template: Template) -> None:
        self.template = template
        _new_slot_file(path, template)
        super().__init__(path)

    def _create_schema(self) -> None:
        return None  # made by _new_slot_file, before the views that share the tables' names

    def _open(self, *, read_only: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, uri=True)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("ATTACH DATABASE ? AS base", (self.template.uri,))
        conn.execute(f"PRAGMA main.cache_size=-{CACHE_KIB}")
        conn.execute(f"PRAGMA base.cache_size=-{CACHE_KIB}")
        conn.execute(f"PRAGMA base.mmap_size={TEMPLATE_MMAP_BYTES}")
        conn.execute("BEGIN")  # the views and triggers in one go (one schema change, not one per statement)
        for table in self.template.tables:
            conn.execute(_view_sql(table))
            if not read_only:
                for trigger in _trigger_sql(table):
                    conn.execute(trigger)
        conn.execute("COMMIT")
        if read_only:
            conn.execute("PRAGMA query_only=ON")
        return conn

    def reset(self, snapshot_id: int | None = None) -> tuple[int, int]:
        """Back to a snapshot; to one taken on the template itself, by deleting the slot's rows."""
        with self.transaction():
            snapshot_id, seq = self._snapshot_seq(snapshot_id)
            if seq != self.template.head_seq:
                if seq < self.template.head_seq:
                    raise FhirError(
                        409,
                        f"snapshot {snapshot_id} is older than this slot's template: a slot resets "
                        "to the template or to a snapshot taken on the slot",
                    )
                return super().reset(snapshot_id)
            conn = self._conn()
            touched = conn.execute(f"SELECT COUNT(*) FROM (SELECT DISTINCT type, id FROM {PREFIX}change)").fetchone()[0]
            for table in self.template.tables:
                if table.name == "snapshot":
                    conn.execute(f"DELETE FROM {PREFIX}snapshot WHERE id > ?", (snapshot_id,))
                else:
                    conn.execute(f"DELETE FROM {PREFIX}{table.name}")
            conn.execute(f"DELETE FROM {HIDDEN_RESOURCE}")
            conn.execute(f"DELETE FROM {HIDDEN_INDEX}")
        return snapshot_id, int(touched)


def _new_slot_file(path: Path, template: Template) -> None:
    """An empty slot database: the store's tables (empty), the hidden-row tables, and the template's
    sequence numbers continued (new changes and snapshots number after the template's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # a slot is scratch (also: no sync while it is made)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        for statement in [*(ddl for table in template.tables for ddl in table.ddl), *HIDDEN_TABLES]:
            conn.execute(statement)
        conn.execute("ATTACH DATABASE ? AS base", (template.uri,))
        conn.execute(
            f"INSERT INTO main.sqlite_sequence (name, seq) SELECT '{PREFIX}' || name, seq FROM base.sqlite_sequence"
        )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE base")
    finally:
        conn.close()


class SlotStores:
    """The ``count`` slots of one server, made empty in ``folder`` over one template."""

    def __init__(self, template: Path, folder: Path, count: int) -> None:
        if count < 1:
            raise ValueError(f"a slot server needs at least one slot, got {count}")
        self.template = Template.open(template)
        self.folder = folder
        self.stores = [SlotStore(folder / f"slot-{n}.sqlite", self.template) for n in range(count)]

    def __len__(self) -> int:
        return len(self.stores)

    def __getitem__(self, index: int) -> SlotStore:
        return self.stores[index]

    def close(self) -> None:
        for store in self.stores:
            store.close()


def slot_url(base_url: str, slot: int) -> str:
    """The FHIR base URL of slot ``slot`` on a slot server at ``base_url``."""
    return f"{base_url.rstrip('/')}/slots/{slot}"


class SlotRouting:
    """ASGI middleware: ``/slots/{n}/...`` is the FHIR API of slot ``n``; the request runs with that slot's store
    (:data:`request_store`) and with ``/slots/{n}`` in its root path, so the base URL it builds names the slot."""

    def __init__(self, app: ASGIApp, slots: SlotStores) -> None:
        self.app = app
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path: str = scope["path"]
        match = SLOT_PATH.match(path.removeprefix(root))
        if match is None or int(match[1]) >= len(self.slots):
            status, message = (
                404,
                (
                    f"no FHIR interaction at {path}: this server serves task databases at "
                    f"/slots/0 to /slots/{len(self.slots) - 1}"
                ),
            )
            body, content_type = outcome_body(status, message)
            await Response(body, status_code=status, media_type=content_type)(scope, receive, send)
            return
        token = request_store.set(self.slots[int(match[1])])
        try:
            await self.app({**scope, "root_path": root + match[0]}, receive, send)
        finally:
            request_store.reset(token)
