"""What the CDS service keeps (one SQLite file): the cards it issued (uuid, service, hook instance, suggestion
uuids; never patient data) and the feedback CDS clients post about them."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from medagent.serve.cds_hooks.messages import Card, Feedback
from medagent.serve.errors import ApiError

SCHEMA = """
CREATE TABLE IF NOT EXISTS card (
    uuid TEXT PRIMARY KEY, service TEXT NOT NULL, hook_instance TEXT NOT NULL, indicator TEXT NOT NULL,
    topic TEXT, suggestions TEXT NOT NULL, issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, card TEXT NOT NULL REFERENCES card(uuid), service TEXT NOT NULL,
    outcome TEXT NOT NULL, accepted TEXT NOT NULL, override_reason TEXT, outcome_at TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class FeedbackRow:
    card: str
    service: str
    outcome: str
    accepted: list[str]
    override_reason: dict[str, object] | None
    outcome_at: str


class CdsRecords:
    """Thread-safe; methods block (call them with ``asyncio.to_thread``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def issue(self, service: str, hook_instance: str, cards: list[Card]) -> None:
        now = _now()
        rows = [
            (
                c.uuid,
                service,
                hook_instance,
                c.indicator,
                c.source.topic.code if c.source.topic else None,
                orjson.dumps([s.uuid for s in c.suggestions or []]).decode(),
                now,
            )
            for c in cards
        ]
        with self._lock:
            self._conn.executemany("INSERT INTO card VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def record_feedback(self, service: str, items: list[Feedback]) -> int:
        """All items or none: a card this service did not issue is a 404, a suggestion not on the card a 400."""
        now = _now()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for index, item in enumerate(items):
                    row = self._conn.execute(
                        "SELECT suggestions FROM card WHERE uuid = ? AND service = ?", (item.card, service)
                    ).fetchone()
                    if row is None:
                        raise ApiError(
                            404, "unknown_card", f"feedback[{index}]: service {service} issued no card {item.card}"
                        )
                    offered = set(orjson.loads(row[0]))
                    accepted = [s.id for s in item.acceptedSuggestions or []]
                    unknown = [s for s in accepted if s not in offered]
                    if unknown:
                        raise ApiError(
                            400,
                            "unknown_suggestion",
                            f"feedback[{index}]: card {item.card} has no suggestion {', '.join(unknown)}",
                        )
                    reason = item.overrideReason.as_json() if item.overrideReason else None
                    self._conn.execute(
                        "INSERT INTO feedback (card, service, outcome, accepted, override_reason, outcome_at, "
                        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            item.card,
                            service,
                            item.outcome,
                            orjson.dumps(accepted).decode(),
                            orjson.dumps(reason).decode() if reason else None,
                            item.outcomeTimestamp.astimezone(UTC).isoformat(),
                            now,
                        ),
                    )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return len(items)

    def feedback(self, service: str | None = None) -> list[FeedbackRow]:
        """Recorded feedback, oldest first (for reports, and the tests)."""
        rows = self._rows(
            "SELECT card, service, outcome, accepted, override_reason, outcome_at FROM feedback", service, "seq"
        )
        return [
            FeedbackRow(card, svc, outcome, orjson.loads(accepted), orjson.loads(reason) if reason else None, at)
            for card, svc, outcome, accepted, reason, at in rows
        ]

    def issued(self, service: str | None = None) -> list[str]:
        """Uuids of the issued cards, oldest first."""
        return [row[0] for row in self._rows("SELECT uuid FROM card", service, "rowid")]

    def _rows(self, select: str, service: str | None, order: str) -> list[tuple[Any, ...]]:
        where, args = (" WHERE service = ?", (service,)) if service is not None else ("", ())
        with self._lock:
            return self._conn.execute(f"{select}{where} ORDER BY {order}", args).fetchall()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
