"""One JSON line per finished task, appended atomically, so a killed run loses only tasks in flight.

Each line is a :class:`TaskRecord` (typed: the outcome, the server's diff as ``Change`` entries, the grader's
``Verdict``) with its ``format_version``. Lines of older runs load too: version 1 (no ``format_version``, written
before it existed) holds the same fields, the oldest lines hold the outcome's fields at the top level. Lines before
version 3 name no ``cluster`` (``bench rescore`` fills it in from the scenario set).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, ValidationError, model_validator

from medagent.scenarios.models import Change, Verdict
from medagent.trajectory import RunOutcome

LEGACY_OUTCOME_FIELDS = ("status", "answer", "citations", "error", "steps", "trace", "audit")
RESULTS_FORMAT = 3  # 3: each record names its cluster; 2: typed verdict and changes, format_version written;
#                   1: the same fields as 2, no version

TaskPhase = Literal["reset", "setup", "solver", "diff", "grade"]


class TaskError(BaseModel):
    """Why a task ended in error: the phase that failed, the exception's type and message, and where it was
    raised (a solver that ended its run in error itself: the run's status as the type, no location)."""

    phase: TaskPhase
    type: str
    message: str
    where: str | None = Field(None, description="The innermost frame of the exception: file:line in function.")


class TaskRecord(BaseModel):
    """Everything needed to re-grade and to show one task: inputs, the run's outcome, server diff, verdict."""

    format_version: int = RESULTS_FORMAT
    scenario_id: str
    trial: int = 0
    cluster: str | None = Field(
        None,
        description="What the bootstrap resamples the task with: 'Patient/<id>', or "
        "'task/<scenario id>' for a question about the whole population (bench.uncertainty).",
    )
    suite: str
    category: str
    split: str
    tier: str = "core"
    agent: str
    model: str | None = None
    outcome: RunOutcome
    passed: bool = False
    score: float = 0.0
    failure_cause: str | None = None
    verdict: Verdict | None = None
    changes: list[Change] = Field(default_factory=list)
    latency_s: float = 0.0
    scenario_set_hash: str | None = None
    task_error: TaskError | None = None
    checkpoints_passed: int | None = Field(
        None, description="Workflow tasks: checkpoints passed (None: no checkpoints, or not graded)."
    )
    checkpoints_total: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_legacy_record(cls, data: Any) -> Any:
        """Lines written before the outcome was one field held its fields at the top level."""
        if isinstance(data, dict) and "outcome" not in data and "status" in data:
            data = dict(data)
            data["outcome"] = {k: data.pop(k) for k in LEGACY_OUTCOME_FIELDS if k in data}
        return data

    @classmethod
    def from_line(cls, raw: bytes) -> TaskRecord:
        """A record from its JSON line; a line without ``format_version`` was written in version 1."""
        data = orjson.loads(raw)
        if isinstance(data, dict):
            data.setdefault("format_version", 1)
        return cls.model_validate(data)

    @property
    def key(self) -> tuple[str, int]:
        return self.scenario_id, self.trial


SYNC_SECONDS = 1.0


class ResultsLog:
    """Append-only JSONL of :class:`TaskRecord`; each record is one ``write`` of one line (O_APPEND).

    A written line is in the file at once (a killed process loses nothing it appended); it reaches the disk
    (fsync) within ``sync_seconds``, from a background thread, so an append never waits for the disk (the
    runner appends from its event loop, where tasks in flight would wait too), and at :meth:`close`."""

    def __init__(self, path: Path, *, sync_seconds: float = SYNC_SECONDS) -> None:
        self.path = path
        self.sync_seconds = sync_seconds
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._unsynced = threading.Event()
        self._closing = threading.Event()
        self.skipped_lines: list[int] = []

    def append(self, record: TaskRecord) -> None:
        line = (record.model_dump_json() + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._closing = threading.Event()
                threading.Thread(
                    target=self._sync_in_background,
                    args=(os.dup(self._fd), self._closing),
                    name="results-fsync",
                    daemon=True,
                ).start()
            os.write(self._fd, line)
            self._unsynced.set()

    def _sync_in_background(self, fd: int, closing: threading.Event) -> None:
        """fsync ``fd`` (the thread's own copy of the file's descriptor) after appends, at most every
        ``sync_seconds``, until the file is closed."""
        try:
            while True:
                self._unsynced.wait()
                if closing.is_set():
                    return
                self._unsynced.clear()
                os.fsync(fd)
                closing.wait(self.sync_seconds)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Sync and close the file (appending again reopens it)."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            os.fsync(fd)
            os.close(fd)
            self._closing.set()
            self._unsynced.set()  # wake the background thread: it ends

    def __iter__(self) -> Iterator[TaskRecord]:
        """Complete records; a torn last line (killed mid-write) is skipped and noted."""
        self.skipped_lines = []
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.endswith(b"\n"):
                    self.skipped_lines.append(number)
                    continue
                try:
                    yield TaskRecord.from_line(raw)
                except (ValidationError, orjson.JSONDecodeError):
                    self.skipped_lines.append(number)

    def load(self) -> list[TaskRecord]:
        return list(self)

    def finished_keys(self) -> set[tuple[str, int]]:
        return {record.key for record in self}

    def repair(self) -> None:
        """Drop a torn trailing line so new appends start on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.close()  # the file is replaced: the next append opens the new one
            keep = data[: data.rfind(b"\n") + 1]
            tmp = self.path.with_suffix(".repair")
            tmp.write_bytes(keep)
            os.replace(tmp, self.path)
