"""The one approval path: every write tool call is decided here (approve, reject or escalate) before it runs.

:meth:`medagent.tools.registry.Registry.call` asks the run context's :class:`ApprovalPolicy` about every
call of a write tool (after its arguments validated) and runs the tool only on an ``approve``. The
policies: ``REFUSE_WRITES`` (read-only mode, the default), ``APPROVE_WRITES`` (benchmarks, where
the grader judges the server's diff), ``ESCALATE_WRITES`` (a person decides: the agent pauses with a
LangGraph interrupt and resumes with the reviewer's :class:`ApprovalDecision`; a caller without a reviewer
refuses), and :class:`ReviewerCallback` (an async callback decides, e.g. a test or a UI). The CLI's
``--approve refuse|ask|auto``, MCP's ``--allow-writes`` and the bench runner all choose one of these.

A rule such as "a write to a patient other than the one in context needs explicit approval" is a policy
that wraps another: ``decide`` sees the write's patient (:attr:`WriteRequest.patient`, which the registry
resolves for every write: named by an argument, or the subject of the record it changes) and the run's
patient in context (:attr:`WriteRequest.context_patient`) and returns ``escalate`` for a mismatch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["approve", "reject", "escalate"]
ApprovalMode = Literal["refuse", "ask", "auto"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = ("refuse", "ask", "auto")


class WritePreview(BaseModel):
    """Exactly what a write tool call would send, prepared by the tool's own code without sending it.

    ``action``: ``create`` (``resource`` is the new resource as it would be POSTed), ``update`` (``resource``
    is the resource as it would be after the PUT; ``reference`` names it), ``none`` (the call would write
    nothing: an identical earlier call already wrote ``reference``, or the change is already made) or
    ``error`` (the call would fail with ``error``, the same text the model would read).
    The server adds only ``id``, ``meta.versionId`` and ``meta.lastUpdated`` to what is written.
    """

    model_config = ConfigDict(frozen=True)

    action: Literal["create", "update", "none", "error"]
    summary: str = Field(description="One line: the compact line the tools show the model, or the error.")
    resource: dict[str, Any] | None = None
    reference: str | None = Field(None, description="The resource changed (update) or already there (none).")
    error: str | None = None


class WriteRequest(BaseModel):
    """A write as a policy (or a reviewer) sees it: which tool, with which validated arguments, for whom.

    ``preview`` (set when a person is asked, see :meth:`medagent.tools.registry.Registry.review`) is what
    the call would write.
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    arguments: dict[str, Any]
    destructive: bool = False
    patient: str | None = Field(
        None,
        description="Patient.id the write is about: named by its arguments, or the "
        "subject of the record it changes (the registry resolves it).",
    )
    context_patient: str | None = Field(None, description="Patient.id in the run's context, if any.")
    run_id: str = ""
    preview: WritePreview | None = None


class ApprovalDecision(BaseModel):
    """What a policy or a reviewer decided about one write; ``label`` is what the trajectory records."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    by: str = Field(description="Who decided: auto, read-only, reviewer, or a policy's name.")
    reason: str = ""

    @classmethod
    def reviewer(cls, approve: bool, reason: str = "") -> ApprovalDecision:
        """A person's answer to an escalated write."""
        return cls(verdict="approve" if approve else "reject", by="reviewer", reason=reason)

    @property
    def label(self) -> str:
        if self.verdict == "escalate":
            return "waiting for a reviewer"
        if self.by == "read-only":
            return "refused: read-only mode"
        if self.by == "reviewer":
            if self.verdict == "approve":
                return "approved"
            return "rejected by user" + (f": {self.reason}" if self.reason else "")
        if self.verdict == "approve":
            return "auto-approved" if self.by == "auto" else f"approved by {self.by}"
        return f"refused by {self.by}" + (f": {self.reason}" if self.reason else "")


@runtime_checkable
class ApprovalPolicy(Protocol):
    """Decides a write before it runs. ``name`` shows in traces; ``decide`` must not write anything."""

    name: str

    async def decide(self, request: WriteRequest) -> ApprovalDecision: ...


class FixedVerdict:
    """A policy that decides every write the same way (the three modes below)."""

    def __init__(self, name: str, decision: ApprovalDecision) -> None:
        self.name = name
        self.decision = decision

    async def decide(self, request: WriteRequest) -> ApprovalDecision:
        return self.decision


class ReviewerCallback:
    """An async callback approves (True) or rejects (False) each write."""

    name = "callback"

    def __init__(self, callback: Callable[[WriteRequest], Awaitable[bool]], *, name: str = "callback") -> None:
        self.callback = callback
        self.name = name

    async def decide(self, request: WriteRequest) -> ApprovalDecision:
        approved = await self.callback(request)
        return ApprovalDecision(verdict="approve" if approved else "reject", by=self.name)


REFUSE_WRITES = FixedVerdict("refuse", ApprovalDecision(verdict="reject", by="read-only"))
"""Read-only mode: every write is refused (and recorded as refused)."""
ESCALATE_WRITES = FixedVerdict("ask", ApprovalDecision(verdict="escalate", by="ask"))
"""Every write waits for a person (the agent pauses the run until a reviewer decides)."""


class PatientInContext:
    """The rule "a write to a patient other than the one in context needs explicit approval".

    Part of ``auto`` (:data:`APPROVE_WRITES`): a person's decision (``ask``, a reviewer callback) is the
    explicit approval. Wraps another policy: a write naming a patient that is not the run's patient in context is
    escalated to a person (never auto-approved, whatever the inner policy says; a caller without a
    reviewer refuses it); every other write is decided by the inner policy. Record text can name
    other patients, so an injected instruction cannot reach them without a reviewer.
    """

    def __init__(self, inner: ApprovalPolicy) -> None:
        self.inner = inner
        self.name = inner.name

    async def decide(self, request: WriteRequest) -> ApprovalDecision:
        decision = await self.inner.decide(request)
        if decision.verdict != "approve" or request.context_patient is None:
            return decision
        context = request.context_patient.removeprefix("Patient/")
        if request.patient is None:  # never the case through the registry, which resolves every write's patient
            return ApprovalDecision(
                verdict="escalate",
                by="patient-in-context rule",
                reason=f"the write names no patient (Patient/{context} in context)",
            )
        if request.patient.removeprefix("Patient/") != context:
            return ApprovalDecision(
                verdict="escalate",
                by="patient-in-context rule",
                reason=f"the write names Patient/{request.patient.removeprefix('Patient/')}, "
                f"not Patient/{context} in context",
            )
        return decision


APPROVE_WRITES = PatientInContext(FixedVerdict("auto", ApprovalDecision(verdict="approve", by="auto")))
"""Every write to the patient in context is approved (benchmark runs: the grader judges what reached the
server); a write to another patient is escalated (:class:`PatientInContext`)."""


def approval_policy(mode: ApprovalMode | ApprovalPolicy) -> ApprovalPolicy:
    """The policy for a mode name (``refuse``, ``ask``, ``auto``), or the policy itself."""
    if not isinstance(mode, str):
        return mode
    policies: dict[str, ApprovalPolicy] = {"refuse": REFUSE_WRITES, "ask": ESCALATE_WRITES, "auto": APPROVE_WRITES}
    if mode not in policies:
        raise ValueError(f"unknown approval mode {mode!r}; use one of {', '.join(APPROVAL_MODES)}")
    return policies[mode]
