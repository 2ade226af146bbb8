"""The agent's explicit state (what a checkpoint holds) and its result record."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, Field

from medagent.tools.approval import WriteRequest
from medagent.trajectory import FINAL_STATUSES, RunOutcome, RunStatus

__all__ = ["FINAL_STATUSES", "AgentResult", "AgentState", "Limits", "RunStatus"]


class Limits(BaseModel):
    """What ends a run that does not answer: every run ends with a status, never a hang."""

    max_steps: int = Field(12, ge=1, description="Tool calls before the run stops with status step_limit.")
    max_tokens: int = Field(60_000, ge=1, description="Prompt + completion tokens over all model calls.")
    timeout_s: float = Field(
        600.0,
        gt=0,
        description="Wall-clock seconds for the whole run, not counting the time it waits for a reviewer's decision.",
    )
    max_invalid_replies: int = Field(2, ge=0, description="Unparseable model replies tolerated (each one re-asked).")
    max_reply_tokens: int = Field(512, ge=16, description="Tokens per model reply.")
    model_call_timeout_s: float | None = Field(
        None,
        gt=0,
        description=(
            "Seconds one model call may take, its retries included; a call with no answer by then ends the run with "
            "status model_error (kind timeout). None: only the run's own timeout_s bounds it."
        ),
    )

    def stated(self, max_steps: int | None = None, max_tokens: int | None = None) -> Limits:
        """These limits with a task's stated tool-call and token limits in place of the defaults (None: keep)."""
        update = {k: v for k, v in (("max_steps", max_steps), ("max_tokens", max_tokens)) if v is not None}
        return self.model_copy(update=update)

    def reached(self, steps: int, tokens: int, elapsed_s: float) -> RunStatus | None:
        """The status that ends a run after ``steps`` tool calls, ``tokens`` prompt + completion tokens and
        ``elapsed_s`` wall-clock seconds, or None while every limit still allows another step."""
        if steps >= self.max_steps:
            return "step_limit"
        if tokens >= self.max_tokens:
            return "token_budget"
        if elapsed_s >= self.timeout_s:
            return "timeout"
        return None


class AgentState(TypedDict, total=False):
    """Graph state. Lists annotated with ``operator.add`` are appended to by nodes.

    ``run_id``, ``now``, ``patient`` and ``actor`` are what the run context is rebuilt from on resume;
    ``trace`` holds ``Step`` dicts and ``audit`` ``AuditEntry`` dicts (plain JSON in the checkpoint).
    """

    run_id: str
    actor: str
    question: str
    patient: str | None
    now: str
    started_at: float
    paused_s: float  # seconds spent waiting for reviewers (not counted against Limits.timeout_s)
    messages: Annotated[list[dict[str, str]], operator.add]
    trace: Annotated[list[dict[str, Any]], operator.add]
    audit: Annotated[list[dict[str, Any]], operator.add]
    steps: int
    invalid_replies: int
    prompt_tokens: int
    completion_tokens: int
    pending: dict[str, Any] | None
    answer: str | None
    citations: list[str]
    status: RunStatus
    error: str | None
    error_kind: str | None
    limits: dict[str, Any]  # this run's limits when they differ from the agent's (a task's stated limits)
    # find_patients closed for this run: a patient in context and a question naming no one else (guards.search_closed,
    # decided once when the run starts; absent: open, as for a run checkpointed before the field existed)
    search_closed: bool
    patient_names: list[str]  # the name words of the patient in context (folded), read once when the run starts


class AgentResult(RunOutcome):
    """What a finished (or paused) agent run returns: its outcome, its id and any write waiting for a reviewer."""

    run_id: str
    pending_approval: WriteRequest | None = Field(None, description="Set while the run waits for a write decision.")
