"""The run context: what every tool call of one run runs with (client, clock, actor, run id, approval, cache, audit).

One :class:`ToolContext` is created per run (by the agent, a code policy's session or the MCP server) and
passed to every tool call of that run, so its cache and its audit trail last the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from medagent.fhir.client import FhirClient
from medagent.tools.approval import REFUSE_WRITES, ApprovalPolicy, WritePreview


class AuditEntry(BaseModel):
    """Who wrote what and why, at which scenario time (one per write tool call that reached the server)."""

    model_config = ConfigDict(frozen=True)

    at: str
    actor: str
    run_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str
    reference: str
    created: bool  # False: an identical earlier call had already written it (idempotent retry)


class PreparedWrite(Exception):
    """Raised by the write path (``write_clinical.create`` / ``update``) of a preview context instead of
    sending: it carries the prepared write. :meth:`medagent.tools.registry.Registry.preview` catches it."""

    def __init__(self, preview: WritePreview) -> None:
        super().__init__(preview.summary)
        self.preview = preview


AGENT_TOKEN_BUDGET = 800  # tokens a tool answers within per call, unless a run asks for more


@dataclass
class ToolContext:
    """The run's view of the EHR. ``now`` is the run's clock: tools never read the wall clock.

    ``approval`` decides every write (read-only unless a run says otherwise); ``patient`` is the
    patient in context (an EHR launch context), if the run has one. ``preview``: a dry run; the write
    path prepares each write exactly (same builders, lookups, stamping, validation) and raises
    :class:`PreparedWrite` instead of sending it (reads still run). ``write_patient``: set by the registry
    while a decided write runs, to the patient the write was decided for; the write path sends no resource
    of another patient.
    """

    client: FhirClient
    now: datetime
    approval: ApprovalPolicy = REFUSE_WRITES
    actor: str = "medagent"
    run_id: str = "run"
    patient: str | None = None
    token_budget: int = AGENT_TOKEN_BUDGET
    audit: list[AuditEntry] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)  # per-run lookups (patients, practitioner names)
    preview: bool = False
    write_patient: str | None = None

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
