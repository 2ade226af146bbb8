"""The JSON shapes of the serve API (request bodies, views, errors); the OpenAPI schema is built from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medagent.fhir.ids import check_fhir_id
from medagent.tools.approval import WritePreview
from medagent.vocabulary import parse_instant

RunState = Literal["running", "awaiting_approval", "interrupted", "finished"]


def iso_moment(value: str, name: str = "now") -> str:
    """The value unchanged if it is an ISO 8601 date or date-time, else a ValueError naming it."""
    try:
        parse_instant(value)
    except ValueError:
        raise ValueError(
            f"{name} {value!r} is not an ISO 8601 date or date-time (e.g. 2020-06-01 or 2020-06-01T09:30:00+00:00)"
        ) from None
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StartRun(Body):
    """Start a run: a question or task about one patient at the run's clock ``now``."""

    question: str = Field(min_length=1, max_length=4000, description="The question or task, in plain words.")
    patient: str | None = Field(None, description="Patient id (or 'Patient/<id>') the run is about.")
    now: str | None = Field(None, description="The run's clock, ISO date or date-time; default: the current time.")

    @field_validator("patient")
    @classmethod
    def _patient_id(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return check_fhir_id(value.removeprefix("Patient/"))

    @field_validator("now")
    @classmethod
    def _now(cls, value: str | None) -> str | None:
        return None if value in (None, "") else iso_moment(value)


class Decision(Body):
    """Approve or reject the write a run is waiting on; ``pending_id`` names that write (from the run view)."""

    pending_id: str = Field(min_length=1, max_length=200, description="The id of the pending write being decided.")
    approve: bool = Field(description="true: perform the write; false: reject it (the model is told).")
    reason: str = Field("", max_length=500, description="Why (shown to the model when rejected).")


class Login(Body):
    token: str = Field(min_length=1, max_length=500)


class StepView(BaseModel):
    """One finished step of a run: the model's action, the tool call and its compact result."""

    step: int | None = None
    kind: Literal["tool", "answer", "invalid"] = "tool"
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    model_output: str | None = None
    result: str | None = None
    error: str | None = None
    references: list[str] = Field(default_factory=list)
    wrote: list[str] = Field(default_factory=list)
    approval: str | None = None
    note: str | None = None
    model_s: float | None = None
    tool_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class NextAction(BaseModel):
    """What the model chose and the run is about to do (a tool call not finished yet)."""

    step: int | None = None
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    writes: bool = False


class PendingWrite(BaseModel):
    """A write the run is paused on: the arguments the tool will receive and ``preview``, what it will write."""

    id: str = Field(description="Pass as pending_id when deciding.")
    tool: str
    title: str = Field(description="What the tool does, in one line.")
    arguments: dict[str, Any]
    patient: str | None = Field(
        None,
        description="The patient the write is about: named by its arguments, or the "
        "subject of the record it changes (which may not be the run's).",
    )
    destructive: bool = False
    preview: WritePreview | None = Field(
        None,
        description=(
            "What approving writes: the FHIR resource the tool will create (or the resource as it will be after an "
            "update), built by the tool's own code without sending it, with its one-line summary; or the error the "
            "call would give. The server adds only id, meta.versionId and meta.lastUpdated."
        ),
    )


class RunView(BaseModel):
    """A run as the API and the UI see it."""

    run_id: str
    question: str
    patient: str | None = None
    now: str
    state: RunState
    status: str = Field(description="The agent's status: running, answered, step_limit, token_budget, timeout, ...")
    answer: str | None = None
    citations: list[str] = Field(default_factory=list)
    error: str | None = None
    steps: list[StepView] = Field(default_factory=list)
    step_count: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    next_action: NextAction | None = None
    pending_write: PendingWrite | None = None
    started_at: str | None = None


class RunSummary(BaseModel):
    run_id: str
    question: str
    patient: str | None = None
    now: str
    state: RunState
    status: str
    step_count: int = 0
    started_at: str | None = None


class RunList(BaseModel):
    runs: list[RunSummary]


class PatientRow(BaseModel):
    id: str
    name: str
    gender: str | None = None
    birth_date: str | None = None
    age: int | None = None
    mrn: str | None = None
    deceased: str | None = None


class PatientList(BaseModel):
    patients: list[PatientRow]


class ResourceView(BaseModel):
    """A cited FHIR resource: its one-line summary and the resource itself."""

    reference: str
    summary: str
    resource: dict[str, Any]


class ServiceInfo(BaseModel):
    model: str
    approval: str
    fhir: str = Field(description="The FHIR server's software name and version (never its token).")
    auth: bool = Field(description="Whether the API needs a bearer token.")


class ApiErrorBody(BaseModel):
    error: str = Field(description="A short machine code, e.g. unknown_patient, invalid_body, already_decided.")
    message: str = Field(description="What was wrong, in words.")
