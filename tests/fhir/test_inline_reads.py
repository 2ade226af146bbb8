"""Reads run on the event loop within a small budget and move to the thread pool past it (a real
SQLite store; ``FhirApp.reading`` driven by asyncio, no HTTP)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from medagent.fhir.server.app import FhirApp
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.store import ReadBudgetSpent, Store

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def counting(n: int) -> str:
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT count(*) FROM c"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "inline.sqlite")
    yield opened
    opened.close()


def test_a_read_past_its_budget_is_aborted_and_the_budget_does_not_stick(store: Store) -> None:
    started = time.monotonic()
    with store.read_budget(0.05), pytest.raises(ReadBudgetSpent):
        store.query(ENDLESS)
    assert time.monotonic() - started < 5
    assert store.query(counting(300_000)) == [(300_000,)]  # outside the budget a long read runs to the end
    with store.read_budget(5):
        assert store.query("SELECT 1") == [(1,)]


def test_the_budget_covers_all_statements_of_a_read_together(store: Store) -> None:
    with store.read_budget(0.2), pytest.raises(ReadBudgetSpent):
        with store.reading():
            for _ in range(10_000):  # each statement alone is short; together they pass the budget
                store.query(counting(20_000))
    assert store.query(counting(10)) == [(10,)]  # the read transaction was closed


def test_the_per_query_limit_still_answers_too_costly_inside_a_longer_budget(store: Store) -> None:
    store.query_seconds = 0.1
    with store.read_budget(30), pytest.raises(FhirError) as caught:
        store.query(ENDLESS)
    assert caught.value.status == 400 and caught.value.code == "too-costly"


def where_and_what(store: Store, sql: str) -> tuple[str, int]:
    return threading.current_thread().name, store.query(sql)[0][0]


def test_a_short_read_stays_on_the_loop_and_a_long_one_moves_to_the_pool(store: Store) -> None:
    fhir = FhirApp(store, inline_read_seconds=0.005)
    loop_thread = threading.current_thread().name

    async def both() -> tuple[tuple[str, int], tuple[str, int]]:
        short = await fhir.reading(where_and_what, store, counting(10))
        long = await fhir.reading(where_and_what, store, counting(3_000_000))
        return short, long

    try:
        short, long = asyncio.run(both())
    finally:
        fhir.executor.shutdown()
    assert short == (loop_thread, 10)
    assert long[0].startswith("fhir-db") and long[1] == 3_000_000  # run again there, to the end


def test_no_budget_sends_every_read_to_the_pool(store: Store) -> None:
    fhir = FhirApp(store, inline_read_seconds=0)
    try:
        where, value = asyncio.run(fhir.reading(where_and_what, store, counting(10)))
    finally:
        fhir.executor.shutdown()
    assert where.startswith("fhir-db") and value == 10
