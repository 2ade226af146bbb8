"""The agent's explicit state (what a checkpoint holds) and its result record."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

Status = Literal["running", "answered", "step_limit", "token_budget", "timeout", "model_error", "invalid_output"]
FINAL_STATUSES = ("answered", "step_limit", "token_budget", "timeout", "model_error", "invalid_output")


class Limits(BaseModel):
    """What ends a run that does not answer: every run ends with a status, never a hang."""

    max_steps: int = Field(12, ge=1, description="Tool calls before the run stops with status step_limit.")
    max_tokens: int = Field(60_000, ge=1, description="Prompt + completion tokens over all model calls.")
    timeout_s: float = Field(600.0, gt=0, description="Wall-clock seconds for the whole run.")
    max_invalid_replies: int = Field(2, ge=0, description="Unparseable model replies tolerated (each one re-asked).")
    max_reply_tokens: int = Field(512, ge=16, description="Tokens per model reply.")


class StepRecord(TypedDict, total=False):
    """One step of the trajectory, as the report's viewer shows it."""

    step: int
    model_output: str
    thinking: str | None
    tool: str | None
    arguments: dict[str, Any] | None
    result: str | None
    error: str | None
    references: list[str]
    wrote: list[str]
    approval: str | None
    note: str | None
    model_s: float
    tool_s: float
    prompt_tokens: int
    completion_tokens: int


class AgentState(TypedDict, total=False):
    """Graph state. Lists annotated with ``operator.add`` are appended to by nodes."""

    run_id: str
    question: str
    patient: str | None
    now: str
    started_at: float
    messages: Annotated[list[dict[str, str]], operator.add]
    trace: Annotated[list[StepRecord], operator.add]
    steps: int
    invalid_replies: int
    prompt_tokens: int
    completion_tokens: int
    pending: dict[str, Any] | None
    answer: str | None
    citations: list[str]
    status: Status
    error: str | None


class AgentResult(BaseModel):
    """What a finished (or stopped) run returns: the answer, its sources, and what it cost."""

    run_id: str
    status: Status
    answer: str | None = None
    citations: list[str] = Field(default_factory=list)
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    trace: list[dict[str, Any]] = Field(default_factory=list)
    pending_approval: dict[str, Any] | None = Field(None, description="Set when the run waits for a write approval.")

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
