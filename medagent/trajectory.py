"""The one trajectory record: each :class:`Step` of a run and the :class:`RunOutcome` of the whole run.

Written by the agent, the code policies (``bench.tool_session``) and the whole-record baseline; stored
in the results log (``bench.results.TaskRecord``); read by rescore, the summary and the HTML report.
Counts and times are derived from the steps, so they are stated once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from medagent.tools.context import AuditEntry
from medagent.tools.registry import FINAL_ANSWER

RunStatus = Literal[
    "running", "answered", "step_limit", "token_budget", "timeout", "model_error", "invalid_output", "error"
]
FINAL_STATUSES = ("answered", "step_limit", "token_budget", "timeout", "model_error", "invalid_output", "error")


class ContextCut(BaseModel):
    """How much of a patient's record fitted a whole-record prompt (the rest was cut, oldest first)."""

    resources: int
    kept: int
    cut: int


class Step(BaseModel):
    """One step: a model reply (or a policy's decision), the tool call it chose, and what came back."""

    model_config = ConfigDict(extra="forbid")

    step: int
    tool: str | None = Field(None, description="The tool called, final_answer, or None (an unusable reply).")
    arguments: dict[str, Any] | None = None
    result: str | None = Field(None, description="The tool's text as the model read it (may be cut for the log).")
    error: str | None = None
    references: list[str] = Field(default_factory=list)
    wrote: list[str] = Field(default_factory=list)
    approval: str | None = Field(None, description="The approval decision of a write (ApprovalDecision.label).")
    note: str | None = None
    model_output: str | None = None
    thinking: str | None = None
    model_s: float = 0.0
    tool_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    context: ContextCut | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_whole_record_keys(cls, data: Any) -> Any:
        """Traces written before ContextCut held its counts as record_resources/record_kept/record_cut."""
        if isinstance(data, dict) and "record_resources" in data:
            data = dict(data)
            data["context"] = {
                "resources": data.pop("record_resources"),
                "kept": data.pop("record_kept", 0),
                "cut": data.pop("record_cut", 0),
            }
        return data

    @property
    def is_tool_call(self) -> bool:
        return self.tool is not None and self.tool != FINAL_ANSWER


class RunOutcome(BaseModel):
    """How a run ended: status, answer, citations, the steps and the audit trail of its writes."""

    status: RunStatus = "answered"
    answer: str | None = None
    citations: list[str] = Field(default_factory=list)
    error: str | None = None
    error_kind: str | None = Field(
        None,
        description="With status model_error: the model failure's kind "
        "(timeout, connection, server, ...; ModelError.kind).",
    )
    steps: int = Field(0, description="Tool calls the run's step limit counted (a model-only run counts 1).")
    trace: list[Step] = Field(default_factory=list)
    audit: list[AuditEntry] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tool_calls(self) -> int:
        return sum(1 for s in self.trace if s.is_tool_call)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.trace)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.trace)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def model_s(self) -> float:
        return sum(s.model_s for s in self.trace)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tool_s(self) -> float:
        return sum(s.tool_s for s in self.trace)

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
