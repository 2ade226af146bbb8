"""The store on real SQLite files: readers run beside an open write, writes are serialized and
all-or-nothing, a write transaction sees its own changes, checkpoints leave a self-contained file."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search import matching_ids
from medagent.fhir.server.store import Store


def patient(gender: str, family: str = "Zqstore") -> dict:
    return {"resourceType": "Patient", "gender": gender, "name": [{"family": family}]}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "store.sqlite")
    yield opened
    opened.close()


def read_elsewhere(store: Store, rtype: str, rid: str):
    """A read from another thread (its own read connection)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(store.read, rtype, rid).result(timeout=30)


def test_readers_are_not_blocked_by_an_open_write(store: Store) -> None:
    store.put("Patient", "p1", patient("male"))
    inside, release = threading.Event(), threading.Event()

    def write() -> None:
        with store.transaction():
            store.put("Patient", "p1", patient("female"))
            inside.set()
            release.wait(30)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert inside.wait(30)
        seen = read_elsewhere(store, "Patient", "p1")  # would wait for the lock with one shared connection
        assert seen is not None and seen.version == 1 and seen.body["gender"] == "male"
    finally:
        release.set()
        writer.join(30)
    after = read_elsewhere(store, "Patient", "p1")
    assert after.version == 2 and after.body["gender"] == "female"


def test_a_write_transaction_sees_its_own_writes(store: Store) -> None:
    with store.transaction():
        store.put("Patient", "p2", patient("other", family="Zqownwrite"))
        assert store.read("Patient", "p2") is not None
        assert matching_ids(store, "Patient", [("family", "Zqownwrite")], limit=2) == ["p2"]
        assert read_elsewhere(store, "Patient", "p2") is None  # not visible to others before commit
    assert read_elsewhere(store, "Patient", "p2").version == 1


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    store.put("Patient", "keep", patient("male"))
    with pytest.raises(FhirError):
        with store.transaction():
            store.put("Patient", "gone", patient("female"))
            store.put("Patient", "keep", patient("female"))
            store.delete("Patient", "keep")
            raise FhirError(422, "a later entry is invalid")
    assert store.read("Patient", "gone") is None
    kept = store.read("Patient", "keep")
    assert kept.version == 1 and kept.body["gender"] == "male"
    assert matching_ids(store, "Patient", [("gender", "female")], limit=5) == []


def test_reading_is_one_consistent_view(store: Store) -> None:
    store.put("Patient", "p3", patient("male"))
    with store.reading():
        first = store.read("Patient", "p3")
        writer = threading.Thread(target=store.put, args=("Patient", "p3", patient("female")))
        writer.start()
        writer.join(30)
        again = store.read("Patient", "p3")
    assert first.version == again.version == 1
    assert store.read("Patient", "p3").version == 2


def test_concurrent_writers_are_serialized_and_all_land(store: Store) -> None:
    def write_many(worker: int) -> None:
        for n in range(20):
            store.put("Patient", f"w{worker}-{n}", patient("unknown", family=f"Zqw{worker}"))
            store.put("Patient", f"w{worker}-{n}", patient("female", family=f"Zqw{worker}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write_many, range(8)))
    assert store.count_by_type() == {"Patient": 160}
    assert len(matching_ids(store, "Patient", [("gender", "female")], limit=500)) == 160
    total, versions = store.history("Patient", None, since=None, count=1000, offset=0)
    assert total == 320 and {v.version for v in versions} == {1, 2}


def test_checkpoint_leaves_a_self_contained_file(store: Store, tmp_path: Path) -> None:
    store.put("Patient", "p4", patient("male"))
    store.checkpoint()
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(store.path, copy)  # the main file only, no -wal
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("SELECT id FROM resource").fetchall() == [("p4",)]
    finally:
        conn.close()


def test_history_pages_newest_first(store: Store) -> None:
    store.put("Patient", "h1", patient("male"))
    store.put("Patient", "h1", patient("female"))
    store.delete("Patient", "h1")
    total, page = store.history("Patient", "h1", since=None, count=2, offset=0)
    assert total == 3 and [(v.version, v.deleted) for v in page] == [(3, True), (2, False)]
    _, rest = store.history("Patient", "h1", since=None, count=2, offset=2)
    assert [(v.version, v.body["gender"]) for v in rest] == [(1, "male")]


def index_sql(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"))
    finally:
        conn.close()


def test_a_database_from_before_covering_indexes_gets_them_on_open_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    first = Store(path)
    first.put("Patient", "p1", patient("male", "Zqmigrate"))
    first.close()
    conn = sqlite3.connect(path)  # turn it back into a version-1 database: the indexes as they were then
    conn.executescript("DROP INDEX idx_ref_ref; CREATE INDEX idx_ref_ref ON idx_ref (type, param, ref);"
                       "DROP INDEX idx_string_norm; CREATE INDEX idx_string_norm ON idx_string (type, param, norm);"
                       "PRAGMA user_version=0;")
    conn.close()
    assert "rid" not in index_sql(path)["idx_ref_ref"]

    reopened = Store(path)
    try:
        indexes = index_sql(path)
        assert indexes["idx_ref_ref"].replace(" ", "").endswith("(type,param,ref,rid)")
        assert indexes["idx_string_norm"].replace(" ", "").endswith("(type,param,norm,rid)")
        assert reopened.query("PRAGMA user_version") == [(2,)]
        assert matching_ids(reopened, "Patient", [("family", "Zqmigrate")], limit=2) == ["p1"]
    finally:
        reopened.close()
    again = Store(path)  # a current database is left as it is
    again.close()
    assert index_sql(path) == indexes
