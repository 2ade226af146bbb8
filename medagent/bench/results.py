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
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError, model_validator

from medagent.scenarios.models import Change, Verdict
from medagent.trajectory import RunOutcome

LEGACY_OUTCOME_FIELDS = ("status", "answer", "citations", "error", "steps", "trace", "audit")
RESULTS_FORMAT = 3  # 3: each record names its cluster; 2: typed verdict and changes, format_version written;
#                   1: the same fields as 2, no version


class TaskRecord(BaseModel):
    """Everything needed to re-grade and to show one task: inputs, the run's outcome, server diff, verdict."""

    format_version: int = RESULTS_FORMAT
    scenario_id: str
    trial: int = 0
    cluster: str | None = Field(None, description="What the bootstrap resamples the task with: 'Patient/<id>', or "
                                "'task/<scenario id>' for a question about the whole population (bench.uncertainty).")
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
    checkpoints_passed: int | None = Field(None, description="Workflow tasks: checkpoints passed (None: no "
                                                              "checkpoints, or not graded).")
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


class ResultsLog:
    """Append-only JSONL of :class:`TaskRecord`; each record is one ``write`` of one line (O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.skipped_lines: list[int] = []

    def append(self, record: TaskRecord) -> None:
        line = (record.model_dump_json() + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

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
            keep = data[: data.rfind(b"\n") + 1]
            tmp = self.path.with_suffix(".repair")
            tmp.write_bytes(keep)
            os.replace(tmp, self.path)
