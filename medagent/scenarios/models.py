"""The data contracts shared by generators, graders, the bench runner and the oracle policy.

A ``Scenario`` is one JSONL line of a frozen set. Everything a grader needs is inside it (the
expected answer with its tolerance, the writes that must and must not happen, absolute time
windows computed from the scenario's own ``now``), so grading never reads the wall clock and
never talks to the FHIR server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Suite = Literal["ehrqa", "agentic"]
Split = Literal["dev", "test"]
Branch = Literal["act", "no-action"]
AnswerType = Literal["boolean", "date", "names", "number", "text-contains", "none", "record"]
NamesKind = Literal["generic", "medication", "person", "vaccine", "condition", "identifier"]
FailureCause = Literal["wrong_answer", "missing_write", "forbidden_write", "wrong_write"]


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
    free: bool = Field(False, description="The question states no answer format: the answer is a free sentence "
                                          "(scenarios.free_answers) whose value the graders read out of it.")


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


class Scenario(_Model):
    """One question or task: patient, the scenario's clock, full task text and how to grade it."""

    id: str
    suite: Suite
    tier: Literal["core", "hard"] = "core"
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


class Verdict(_Model):
    scenario_id: str
    passed: bool
    score: float
    checks: list[Check]
    failure_cause: FailureCause | None = None


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
        description="EHRQA questions the generator can produce per patient (mean, min, max) before "
        "the frozen sample."
    )
    test_patients: list[str]
    evaluation_only: bool = Field(False, description="A held-out evaluation set (e.g. scenarios/natural): a run on it "
                                  "is never training data (medagent.train.examples refuses it).")
