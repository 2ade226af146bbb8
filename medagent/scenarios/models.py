"""The data contracts shared by generators, graders, the bench runner and the oracle.

A ``Scenario`` is one JSONL line of a frozen set. Everything a grader needs is inside it (the
expected answer with its tolerance, the writes that must and must not happen, absolute time
windows computed from the scenario's own ``now``), so grading never reads the wall clock and
never talks to the FHIR server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Suite = Literal["ehrqa", "agentic"]
Tier = Literal["core", "hard", "workflow"]
Split = Literal["dev", "test"]
Branch = Literal["act", "no-action"]
AnswerType = str  # a name declared in medagent.scenarios.answer_types (checked when an ExpectedAnswer is made)
NamesKind = Literal["generic", "medication", "person", "vaccine", "condition", "identifier"]
FailureCause = Literal["wrong_answer", "missing_write", "forbidden_write", "wrong_write"]
CheckpointKind = Literal["fact", "order", "no_order", "note", "safety"]
NoteFactKind = Literal["reference", "no_reference", "number", "date", "text", "written"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tolerance(_Model):
    """How far a number or date may be from the truth: |got - want| <= max(abs, rel * |want|)."""

    abs: float = 0.0
    rel: float = 0.0
    days: int = 0


class ExpectedAnswer(_Model):
    """The typed expected final answer.

    ``value`` None on a boolean-free type means the correct answer is "none" (no such data).
    ``type == "none"``: the final answer is not graded (write-only tasks).
    ``type == "record"``: several named parts, each an ExpectedAnswer in ``fields``.
    """

    type: AnswerType
    value: bool | float | str | list[str] | None = None
    unit: str | None = None
    tolerance: Tolerance = Field(default_factory=Tolerance)
    unit_factors: dict[str, float] = Field(
        default_factory=dict,
        description="Other accepted units -> factor that converts a value in that unit into `unit`.",
    )
    names_kind: NamesKind = "generic"
    aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="Expected name -> other accepted spellings (e.g. its code)."
    )
    fields: dict[str, ExpectedAnswer] = Field(default_factory=dict)
    free: bool = Field(
        False,
        description="The question states no answer format: the answer is a free sentence "
        "(scenarios.free_answers) whose value the graders read out of it.",
    )
    single_number: bool = Field(
        default=False,
        description="number (v3): the answer must hold exactly one number outside dates, so a code or a "
        "second value beside it fails instead of being read as the first number.",
    )

    @field_validator("type")
    @classmethod
    def _declared_type(cls, value: str) -> str:
        from medagent.scenarios.answer_types import answer_type  # the declarations import this module

        try:
            answer_type(value)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return value


class CodingSpec(_Model):
    system: str
    code: str
    display: str | None = None


class QuantityOption(_Model):
    """One accepted encoding of a quantity: the node(s) at ``path`` hold value and unit."""

    path: str
    value: float
    unit: str
    value_key: str = "value"
    unit_keys: list[str] = Field(default_factory=lambda: ["unit", "code"])
    tolerance: Tolerance = Field(default_factory=Tolerance)
    unit_factors: dict[str, float] = Field(default_factory=dict)


class QuantityRule(_Model):
    """A quantity that must be present; any one of the options satisfies it."""

    name: str
    options: list[QuantityOption]


class FieldRule(_Model):
    """Some string under ``path`` (text, display, code...) must equal/contain one of ``any_of``.

    Comparison is case-, whitespace- and punctuation-insensitive.
    """

    name: str
    path: str
    any_of: list[str]
    mode: Literal["equals", "contains"] = "equals"


class WindowRule(_Model):
    """A date/time at one of ``paths`` must fall in [not_before, not_after] (absolute ISO times)."""

    name: str
    paths: list[str]
    not_before: str
    not_after: str


class WriteSpec(_Model):
    """One write the task requires, matched against the server's diff by content, not by id."""

    name: str
    resource_type: str
    action: Literal["create", "update"] = "create"
    target: str | None = Field(None, description="'Type/id' of the resource an update must change.")
    subject: str | None = Field(None, description="'Patient/<id>' the resource must point to.")
    subject_path: str = "subject.reference"
    code_path: str | None = Field(None, description="Path of the codings, e.g. 'code.coding'.")
    codes: list[CodingSpec] = Field(default_factory=list, description="Any one of these codings.")
    intent: list[str] | None = None
    status: list[str] | None = None
    quantities: list[QuantityRule] = Field(default_factory=list)
    fields: list[FieldRule] = Field(default_factory=list)
    windows: list[WindowRule] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list, description="Update: paths equal before/after.")
    count: int = 1


class StatedLimits(_Model):
    """The agent's limits a task states when it needs more than the defaults (tool calls, tokens)."""

    max_steps: int = Field(ge=1, description="Tool calls before the run stops (the agent's Limits.max_steps).")
    max_tokens: int = Field(ge=1, description="Prompt + completion tokens over the run (Limits.max_tokens).")


class NoteFact(_Model):
    """One fact the structured note must hold, in the section with LOINC code ``section``.

    reference: an entry of the section references one of ``any_of`` ('Type/id'); no_reference: none of them;
    number: a number written in the section's text (dates left out) equals ``value`` within ``tolerance``;
    date: a date written in the section's text is ``any_of[0]`` (ISO date); text: the text contains one of
    ``any_of`` (case, spacing and punctuation folded); written: the entries reference every resource the task
    wrote for the write specs named in ``any_of`` (the orders the note reports)."""

    name: str
    section: str
    kind: NoteFactKind
    any_of: list[str] = Field(default_factory=list)
    value: float | None = None
    tolerance: float = 0.0


class ForbiddenWrite(_Model):
    """A write the task must not make: a create (or update) of ``resource_type`` whose code is one of ``codes``
    (any code when empty); an update's ``target`` limits it to that resource."""

    name: str
    resource_type: str
    action: Literal["create", "update"] = "create"
    code_path: str | None = None
    codes: list[CodingSpec] = Field(default_factory=list)
    target: str | None = None


class Checkpoint(_Model):
    """One graded step of a workflow task; the task passes only when every checkpoint passes.

    A checkpoint passes when its answer fields pass, its required writes (WriteSpec names) are each matched,
    none of its forbidden writes was made, its note facts hold in the note matched to ``note`` (a WriteSpec
    name), and, with ``no_other_writes``, no write outside every spec and forbidden rule was made."""

    name: str
    kind: CheckpointKind
    answer_fields: list[str] = Field(default_factory=list)
    writes: list[str] = Field(default_factory=list)
    forbidden: list[ForbiddenWrite] = Field(default_factory=list)
    note: str | None = None
    note_facts: list[NoteFact] = Field(default_factory=list)
    no_other_writes: bool = False


class Scenario(_Model):
    """One question or task: patient, the scenario's clock, full task text and how to grade it."""

    id: str
    suite: Suite
    tier: Tier = "core"
    split: Split = "dev"
    category: str
    patient: str = Field(description="Patient.id on the FHIR server.")
    now: str = Field(description="The scenario's clock (ISO datetime); never the wall clock.")
    question: str = Field(description="Full task text, including context and the answer format.")
    answer: ExpectedAnswer
    provenance: list[str] = Field(default_factory=list, description="'Type/id' the answer rests on.")
    expected_writes: list[WriteSpec] = Field(default_factory=list)
    read_only: bool = True
    branch: Branch | None = None
    setup: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Resources (with ids) the runner writes after resetting the snapshot and before "
        "the agent runs; the grader ignores their creation in the diff.",
    )
    meta: dict[str, Any] = Field(default_factory=dict)
    limits: StatedLimits | None = Field(
        default=None,
        description="Limits the task states for the agent (v3 items that need more than the agent's "
        "defaults); the bench runner applies them.",
    )
    checkpoints: list[Checkpoint] = Field(
        default_factory=list, description="Workflow tier: the graded steps; every check belongs to one of them."
    )

    @property
    def patient_context(self) -> str | None:
        """The patient a solver runs in the context of (an EHR launch context); None when the task names the
        patient only by name and birth date, so finding the right one is part of the task."""
        return None if self.meta.get("patient_context") is False else self.patient


class Change(_Model):
    """One entry of the embedded server's ``GET /$diff`` ``changes`` list."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    resourceType: str
    id: str
    action: Literal["create", "update", "delete"]
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class Check(_Model):
    name: str
    passed: bool
    expected: Any = None
    got: Any = None
    detail: str | None = None


class CheckpointVerdict(_Model):
    name: str
    kind: CheckpointKind
    passed: bool
    failed: list[str] = Field(default_factory=list, description="What failed: check names and their details.")


class Verdict(_Model):
    scenario_id: str
    passed: bool
    score: float
    checks: list[Check]
    failure_cause: FailureCause | None = None
    checkpoints: list[CheckpointVerdict] = Field(default_factory=list)

    @property
    def checkpoint_rate(self) -> float | None:
        """Checkpoints passed / checkpoints (None for a task without checkpoints)."""
        if not self.checkpoints:
            return None
        return sum(c.passed for c in self.checkpoints) / len(self.checkpoints)


class FileEntry(_Model):
    sha256: str
    count: int
    suite: str | None = Field(None, description="Suite of the file's scenarios (v1 manifests: from the path).")
    split: str | None = Field(None, description="Split of the file's scenarios (v1 manifests: from the path).")
    tier: str = "core"


class Manifest(_Model):
    """What a build produced; ``content_hash`` identifies the whole frozen set in results."""

    name: str | None = Field(None, description="The set's name (v2 on); v1 manifests: the folder's name.")
    generator_version: str
    seed: int
    patients: int = Field(description="Number of patients the sets were built from.")
    content_hash: str
    files: dict[str, FileEntry]
    counts: dict[str, dict[str, int]] = Field(description="suite -> split -> scenarios.")
    table: dict[str, dict[str, int]] = Field(description="'suite/category' -> answer type -> count.")
    branches: dict[str, dict[str, int]] = Field(description="'agentic/category' -> branch -> count.")
    available_per_patient: dict[str, float] = Field(
        description="EHRQA questions the generator can produce per patient (mean, min, max) before the frozen sample."
    )
    test_patients: list[str]
    evaluation_only: bool = Field(
        False,
        description="A held-out evaluation set (e.g. scenarios/natural): a run on it "
        "is never training data (medagent.train.examples refuses it).",
    )
