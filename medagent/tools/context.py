"""What every tool call runs with: the FHIR client, the run's clock ("now"), write permission, audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medagent.fhir.client import FhirClient


@dataclass(frozen=True)
class ToolCall:
    """A call as the approval hook sees it: which tool, with which (validated) arguments."""

    name: str
    arguments: dict[str, Any]
    writes: bool
    destructive: bool


@dataclass(frozen=True)
class AuditEntry:
    """Who wrote what and why, at which scenario time (one per write tool call that reached the server)."""

    at: str
    actor: str
    run_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str
    reference: str
    created: bool  # False: an identical earlier call had already written it (idempotent retry)


ApprovalHook = Callable[[ToolCall], Awaitable[bool]]


@dataclass
class ToolContext:
    """The run's view of the EHR. ``now`` is the run's clock: tools never read the wall clock."""

    client: FhirClient
    now: datetime
    read_only: bool = True
    actor: str = "medagent"
    run_id: str = "run"
    token_budget: int = 800
    approve: ApprovalHook | None = None
    audit: list[AuditEntry] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)  # per-run lookups (patients, practitioner names)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("ToolContext.now must be timezone-aware (e.g. 2019-05-02T10:15:00+00:00)")
        if self.token_budget < 50:
            raise ValueError("ToolContext.token_budget must be at least 50 tokens")

    @property
    def char_budget(self) -> int:
        """The per-call budget in characters (tokens approximated as characters / 4)."""
        return self.token_budget * 4

    @property
    def now_iso(self) -> str:
        return self.now.isoformat(timespec="seconds")
