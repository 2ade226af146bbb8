"""What every workflow generator shares: the builder, the task layout, the tier's limits and the grading pieces.

A workflow task is long on purpose: it states a clinic protocol whose clauses depend on chart facts the task
does not state, asks for orders (or for none), a structured note and a JSON answer, and is graded at 4-10
checkpoints (``Scenario.checkpoints``). Its setup adds record noise a clinician handles without being told.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medagent.scenarios.agentic.common import around, quantity
from medagent.scenarios.category import Category, PopulationInput, register
from medagent.scenarios.chart import Chart
from medagent.scenarios.clock import iso, parse_instant, round_to_quarter_hour, whole_years_between
from medagent.scenarios.codes import LOINC, RXNORM
from medagent.scenarios.identity import rng_for, short_hash
from medagent.scenarios.models import (
    Checkpoint,
    CodingSpec,
    ExpectedAnswer,
    FieldRule,
    ForbiddenWrite,
    NoteFact,
    Scenario,
    StatedLimits,
    Tolerance,
    WindowRule,
    WriteSpec,
)
from medagent.scenarios.population import Population
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.workflow.reading import ChartSummary, Plan, read_chart_summary, solve_workflow
from medagent.scenarios.workflow.record import Reading, Record, record_of

SET_TAG = "v3"
TIER = "workflow"
LIMITS = StatedLimits(max_steps=40, max_tokens=300_000)
"""The tier's stated limits: long workflows need more than the agent's default 12 tool calls and 60k tokens."""
FUTURE_NOTE = "Records dated after now are not yet known: ignore them."
NOTE_TOOL = "add_structured_note"
MIN_PHRASINGS = 5

# LOINC section codes of the structured note (medagent.tools.notes.NOTE_SECTIONS; repeated here: the scenarios
# layer imports no tools, and a test checks the two agree)
SECTIONS = {
    "reason_for_referral": "42349-1",
    "history_of_present_illness": "10164-2",
    "problems": "11450-4",
    "medications": "10160-0",
    "allergies": "48765-2",
    "results": "30954-2",
    "vital_signs": "8716-3",
    "immunizations": "11369-6",
    "procedures": "47519-4",
    "hospital_course": "8648-8",
    "assessment": "51848-0",
    "plan": "18776-5",
}
NOTE_DOCUMENTS = {
    "progress_note": "11506-3",
    "consult_note": "11488-4",
    "referral_note": "57133-1",
    "discharge_summary": "18842-5",
    "history_and_physical": "34117-2",
}


def workflow_id(category: str, patient: str, *key: object) -> str:
    """``v3-workflow-<category>-<patient>-<hash>``: the set and tier in the id, like every v2+ id."""
    return f"{SET_TAG}-{TIER}-{category}-{patient[:8]}-{short_hash(SET_TAG, TIER, category, patient, *key, length=8)}"


def pick_phrasing(rng: random.Random, phrasings: Sequence[str], split: str) -> tuple[int, str]:
    """(index, template): dev draws from all but the last phrasing; test from all of them."""
    if len(phrasings) < MIN_PHRASINGS:
        raise ValueError(f"a workflow category needs at least {MIN_PHRASINGS} phrasings, got {len(phrasings)}")
    allowed = len(phrasings) if split == "test" else len(phrasings) - 1
    index = rng.randrange(allowed)
    return index, phrasings[index]


@dataclass(frozen=True)
class TaskText:
    """What every task of a category says the same: its phrasings, protocol, how to record, note and format."""

    category: str
    phrasings: Sequence[str]
    protocol_title: str
    protocol: Sequence[str]
    recording: Sequence[str]
    note: NoteRequest
    answer_format: str


@dataclass
class WorkflowBuilder:
    """One chart's workflow tasks: seeded streams, ids, the split and the task layout."""

    chart: Chart
    population: Population
    seed: int
    split: str

    def rng(self, category: str, *key: object) -> random.Random:
        return rng_for(self.seed, SET_TAG, TIER, category, self.chart.patient_id, *key)

    def id_for(self, category: str, *key: object) -> str:
        return workflow_id(category, self.chart.patient_id, *key)

    @property
    def end(self) -> datetime:
        """The end of the record (or the death): the latest possible now."""
        assert self.chart.record_end is not None
        end = self.chart.record_end
        return min(end, self.chart.deceased) if self.chart.deceased is not None else end

    def alive_at(self, moment: datetime) -> bool:
        return self.chart.deceased is None or moment < self.chart.deceased

    def age_at(self, moment: datetime) -> int:
        return whole_years_between(self.chart.birth_date, moment.date())

    def record(self, setup: Iterable[dict[str, Any]] = ()) -> Record:
        return record_of(self.chart, setup)

    @staticmethod
    def clock(moment: datetime) -> datetime:
        return round_to_quarter_hour(moment)

    def phrasing(self, category: str, key: Sequence[object], phrasings: Sequence[str]) -> tuple[int, str]:
        return pick_phrasing(self.rng(category, "phrasing", *key), phrasings, self.split)

    def workflow_task(
        self,
        text: TaskText,
        key: Sequence[object],
        *,
        now: datetime,
        answer: ExpectedAnswer,
        writes: Iterable[WriteSpec],
        checkpoints: Iterable[Checkpoint],
        setup: Iterable[dict[str, Any]] = (),
        branch: str | None = None,
        variant: str | None = None,
        provenance: Iterable[str] = (),
        meta: dict[str, Any] | None = None,
    ) -> Scenario:
        """A task of a category's text: one of its phrasings (seeded per task), its protocol, note and format."""
        index, template = self.phrasing(text.category, key, text.phrasings)
        return self.task(
            text.category,
            key,
            now=now,
            instruction=template.format(mrn=self.chart.mrn),
            protocol=text.protocol,
            protocol_title=text.protocol_title,
            recording=text.recording,
            note=text.note,
            answer_format=text.answer_format,
            answer=answer,
            writes=writes,
            checkpoints=checkpoints,
            phrasing=index,
            setup=setup,
            branch=branch,
            variant=variant,
            provenance=provenance,
            meta=meta,
        )

    def task(
        self,
        category: str,
        key: Sequence[object],
        *,
        now: datetime,
        instruction: str,
        protocol: Sequence[str],
        protocol_title: str,
        recording: Sequence[str],
        note: NoteRequest,
        answer_format: str,
        answer: ExpectedAnswer,
        writes: Iterable[WriteSpec],
        checkpoints: Iterable[Checkpoint],
        phrasing: int,
        setup: Iterable[dict[str, Any]] = (),
        branch: str | None = None,
        variant: str | None = None,
        provenance: Iterable[str] = (),
        meta: dict[str, Any] | None = None,
    ) -> Scenario:
        """The task text (instruction, context, protocol, how to record, the note, the answer format) and grading."""
        clauses = "\n".join(f"{i}. {clause}" for i, clause in enumerate(protocol, 1))
        how = "\n".join(f"- {line}" for line in [*recording, note.instruction()])
        text = (
            f"{instruction}\n\nContext: It is now {iso(now)}. The patient's MRN is {self.chart.mrn}. {FUTURE_NOTE}"
            f"\n\nProtocol ({protocol_title}):\n{clauses}\n\nHow to record your work:\n{how}"
            f"\n\nAnswer format: {answer_format}"
        )
        info: dict[str, Any] = {
            "mrn": self.chart.mrn,
            "phrasing": phrasing,
            "note_type": note.note_type,
            **(meta or {}),
        }
        if variant:
            info["variant"] = variant
        writes = list(writes)
        return Scenario(
            id=self.id_for(category, *key),
            suite="agentic",
            tier="workflow",
            split=self.split,
            category=category,
            patient=self.chart.patient_id,
            now=iso(now),
            question=text,
            answer=answer,
            provenance=sorted(set(provenance)),
            expected_writes=writes,
            read_only=not writes,
            branch=branch,
            setup=list(setup),
            meta=info,
            checkpoints=list(checkpoints),
            limits=LIMITS,
        )


# ---------- the structured note ----------

MEDICATION_LIST = (
    "the current medication list: cite every medication order that is active after your changes (the "
    "ones you placed included, the ones you stopped or that are not active excluded)"
)
CHART_SECTIONS = (
    ("problems", "the active problem list: cite every active diagnosis (not resolved, refuted or entered in error)"),
    ("allergies", "the patient's active drug allergies by substance name, or 'no known drug allergies'"),
)
NO_DRUG_ALLERGY = ["no known drug allerg", "nkda", "no drug allerg"]


@dataclass(frozen=True)
class NoteRequest:
    """The note a task asks for: its document type and what each section must say. Every workflow note also
    carries the chart summary a visit note holds: the problem list, the drug allergies and the current
    medication list (prepended to the task's own 'medications' requirement)."""

    note_type: str
    sections: tuple[tuple[str, str], ...]  # (section kind, what it must say)

    @property
    def all_sections(self) -> tuple[tuple[str, str], ...]:
        own = dict(self.sections)
        medications = MEDICATION_LIST + (f"; and {own.pop('medications')}" if "medications" in own else "")
        return (*CHART_SECTIONS, ("medications", medications), *own.items())

    def instruction(self) -> str:
        parts = "; ".join(f"{kind}: {what}" for kind, what in self.all_sections)
        return (
            f"Documentation: write exactly one structured note ({NOTE_TOOL}, note_type {self.note_type}) with "
            f"these sections (a section's entries are the references of the records it cites): {parts}."
        )

    def spec(self, patient: str, now: datetime) -> WriteSpec:
        return WriteSpec(
            name="structured note",
            resource_type="Composition",
            subject=f"Patient/{patient}",
            code_path="type.coding",
            codes=[CodingSpec(system=LOINC, code=NOTE_DOCUMENTS[self.note_type])],
            status=["final"],
            windows=[around(now, "dated now", ["date"])],
        )


NOTE_SPEC = "structured note"


def fact_reference(name: str, section: str, refs: Iterable[str]) -> NoteFact:
    return NoteFact(name=name, section=SECTIONS[section], kind="reference", any_of=sorted(set(refs)))


def fact_no_reference(name: str, section: str, refs: Iterable[str]) -> NoteFact:
    return NoteFact(name=name, section=SECTIONS[section], kind="no_reference", any_of=sorted(set(refs)))


def fact_number(name: str, section: str, value: float, tolerance: float) -> NoteFact:
    return NoteFact(name=name, section=SECTIONS[section], kind="number", value=round(value, 4), tolerance=tolerance)


def fact_date(name: str, section: str, moment: datetime) -> NoteFact:
    return NoteFact(name=name, section=SECTIONS[section], kind="date", any_of=[moment.date().isoformat()])


def fact_text(name: str, section: str, phrases: Iterable[str]) -> NoteFact:
    return NoteFact(name=name, section=SECTIONS[section], kind="text", any_of=list(phrases))


def fact_written(name: str, section: str, specs: Iterable[str]) -> NoteFact:
    """The section cites (as entries) what the task wrote for these write specs."""
    return NoteFact(name=name, section=SECTIONS[section], kind="written", any_of=list(specs))


def chart_summary(
    record: Record, now: datetime, *, stopped: Iterable[str] = (), started: Iterable[str] = ()
) -> list[Checkpoint]:
    """The two checkpoints every workflow note has: the problem list with the drug allergies, and the current
    medication list after the task's changes (``stopped``: order references the task stops; ``started``: the
    names of the write specs of the drug orders it places)."""
    problems = record.problem_list(now)
    wrong = sorted(p.ref for p in record.problems if p.verification in ("refuted", "entered-in-error"))
    facts = [fact_reference(f"problem {p.display} cited", "problems", [p.ref]) for p in problems]
    if wrong:
        facts.append(fact_no_reference("no refuted or erroneous diagnosis cited", "problems", wrong))
    allergies = record.drug_allergies()
    if allergies:
        facts += [fact_text(f"drug allergy {a.display}", "allergies", [a.display]) for a in allergies]
    else:
        facts.append(fact_text("no known drug allergies", "allergies", NO_DRUG_ALLERGY))
    stopped = set(stopped)
    current = [o for o in record.all_active_orders(now) if o.ref not in stopped]
    not_current = sorted({o.ref for o in record.orders if o.status != "active" or o.authored > now} | stopped)
    meds = [fact_reference(f"current order {o.display} cited", "medications", [o.ref]) for o in current]
    started = list(started)
    if started:
        meds.append(fact_written("orders placed today cited", "medications", started))
    if not_current:
        meds.append(fact_no_reference("no stopped or inactive order cited", "medications", not_current))
    return [
        note_checkpoint("note: problems and allergies", facts),
        note_checkpoint(
            "note: current medications", meds or [fact_text("no medications", "medications", ["no active", "none"])]
        ),
    ]


def note_checkpoint(name: str, facts: Iterable[NoteFact]) -> Checkpoint:
    return Checkpoint(name=name, kind="note", note=NOTE_SPEC, note_facts=list(facts))


# ---------- orders ----------


def lab_order(name: str, patient: str, now: datetime, loinc: str, *, windows: Iterable[WindowRule] = ()) -> WriteSpec:
    return WriteSpec(
        name=name,
        resource_type="ServiceRequest",
        subject=f"Patient/{patient}",
        code_path="code.coding",
        codes=[CodingSpec(system=LOINC, code=loinc)],
        intent=["order"],
        status=["active"],
        windows=[around(now, "authored now", ["authoredOn"]), *windows],
    )


def no_lab_order(name: str, loinc: str) -> ForbiddenWrite:
    return ForbiddenWrite(
        name=name, resource_type="ServiceRequest", code_path="code.coding", codes=[CodingSpec(system=LOINC, code=loinc)]
    )


def drug_order(
    name: str, patient: str, now: datetime, rxnorm: str, dose: float, unit: str, route: Sequence[str] | None = None
) -> WriteSpec:
    fields = [FieldRule(name="route", path="dosageInstruction.route", any_of=list(route))] if route else []
    return WriteSpec(
        name=name,
        resource_type="MedicationRequest",
        subject=f"Patient/{patient}",
        code_path="medicationCodeableConcept.coding",
        codes=[CodingSpec(system=RXNORM, code=rxnorm)],
        intent=["order"],
        status=["active"],
        fields=fields,
        quantities=[
            quantity(
                "dose",
                "dosageInstruction.doseAndRate.doseQuantity",
                dose,
                unit,
                {"g": 1000.0} if unit == "mg" else {},
                tolerance=0.01,
            )
        ],
        windows=[around(now, "authored now", ["authoredOn"])],
    )


def no_drug_order(name: str, codes: Iterable[str]) -> ForbiddenWrite:
    return ForbiddenWrite(
        name=name,
        resource_type="MedicationRequest",
        code_path="medicationCodeableConcept.coding",
        codes=[CodingSpec(system=RXNORM, code=c) for c in sorted(set(codes))],
    )


def stop_order(name: str, order_ref: str) -> WriteSpec:
    """Discontinuing one order: an update of that MedicationRequest to stopped (cancelled accepted)."""
    return WriteSpec(
        name=name,
        resource_type="MedicationRequest",
        action="update",
        target=order_ref,
        status=["stopped", "cancelled"],
        unchanged=["medicationCodeableConcept", "subject"],
    )


def no_stop(name: str, order_ref: str) -> ForbiddenWrite:
    return ForbiddenWrite(name=name, resource_type="MedicationRequest", action="update", target=order_ref)


def days_window(now: datetime, name: str, low: int, high: int) -> WindowRule:
    """An occurrence between ``low`` and ``high`` days after now (whole days, inclusive)."""
    start = (now + timedelta(days=low)).replace(hour=0, minute=0, second=0)
    end = (now + timedelta(days=high)).replace(hour=23, minute=59, second=59)
    return WindowRule(
        name=name, paths=["occurrenceDateTime", "occurrencePeriod.start"], not_before=iso(start), not_after=iso(end)
    )


# ---------- answers ----------


def number_field(
    value: float | None, unit: str, tolerance: float, factors: dict[str, float] | None = None
) -> ExpectedAnswer:
    return ExpectedAnswer(
        type="number",
        value=None if value is None else round(value, 4),
        unit=unit,
        tolerance=Tolerance(abs=tolerance),
        unit_factors=factors or {},
        single_number=True,  # a JSON field holds one value: "2.1 (target 2-3)" fails, never read as its first number
    )


def date_field(moment: datetime | None) -> ExpectedAnswer:
    return ExpectedAnswer(type="date", value=None if moment is None else moment.date().isoformat())


def choice_field(value: str) -> ExpectedAnswer:
    return ExpectedAnswer(type="names", value=[value])


def names_field(
    values: Iterable[str], kind: str = "generic", aliases: dict[str, list[str]] | None = None
) -> ExpectedAnswer:
    wanted = sorted(set(values))
    return ExpectedAnswer(
        type="names",
        value=wanted,
        names_kind=kind,
        aliases={k: v for k, v in (aliases or {}).items() if k in wanted},
    )


def drug_names(drugs: Iterable[tuple[str, str]], short: dict[str, str] | None = None) -> ExpectedAnswer:
    """Medication names (code, display): each accepted as its display, its RxNorm code, or a short name given."""
    drugs = list(drugs)
    aliases = {display: [code, *([short[code]] if short and code in short else [])] for code, display in drugs}
    return names_field([display for _, display in drugs], "medication", aliases)


def record_answer(**fields: ExpectedAnswer) -> ExpectedAnswer:
    return ExpectedAnswer(type="record", fields=fields)


def one_decimal(value: float) -> float:
    return round(value + 1e-9, 1)


def gap_ok(readings: Sequence[Reading], value: float, tolerance: float) -> bool:
    """No other reading is within twice the tolerance of the value (a near miss must fail)."""
    return all(abs(r.value - value) > 2 * tolerance for r in readings if abs(r.value - value) > 1e-9)


# ---------- one declaration per category ----------

CAP = {"dev": 30, "test": 12}
"""At most this many items of one category per split (the tier's categories weigh alike)."""


def balanced(items: list[Scenario], key: Callable[[Scenario], str], seed: int) -> list[Scenario]:
    """Per split, every branch value (``key``) kept as often as the rarest, at most ``CAP`` in all; the kept ones
    chosen by a seeded hash of their ids (deterministic)."""
    keep: set[str] = set()
    for split in ("dev", "test"):
        groups: dict[str, list[Scenario]] = {}
        for scenario in items:
            if scenario.split == split:
                groups.setdefault(key(scenario), []).append(scenario)
        if not groups:
            continue
        size = min(min(len(group) for group in groups.values()), CAP[split] // len(groups))
        for group in groups.values():
            keep.update(s.id for s in sorted(group, key=lambda s: short_hash(seed, s.id))[:size])
    return [s for s in items if s.id in keep]


def declare(
    name: str,
    *,
    order: int,
    description: str,
    generate: Callable[[WorkflowBuilder], list[Scenario]],
    read_facts: Callable[[ToolCaller, Scenario], Awaitable[Any]],
    decide: Callable[[Any, datetime], Any],
    plan: Callable[[Scenario, Any, Any, ChartSummary], Plan],
    phrasings: Sequence[str],
    balance: Callable[[Scenario], str] | None = None,
) -> Category:
    """Register a workflow category: its per-chart generator run over the population and balanced (``balance``:
    the branch to keep 1:1), and its oracle: open the chart, read the protocol's facts through the tools
    (``read_facts``) and the chart summary, apply the protocol (``decide``, the function the generator applies to
    the record), and carry out the ``plan`` (the writes, the note, the answer)."""

    async def solve_plan(tools: ToolCaller, scenario: Scenario) -> Plan:
        facts = await read_facts(tools, scenario)
        summary = await read_chart_summary(tools, scenario.patient)
        return plan(scenario, facts, decide(facts, parse_instant(scenario.now)), summary)

    def generate_population(given: PopulationInput) -> list[Scenario]:
        out: list[Scenario] = []
        for chart in sorted(given.charts, key=lambda c: c.patient_id):
            split = "test" if chart.patient_id in given.test_patients else "dev"
            out.extend(generate(WorkflowBuilder(chart, given.population, given.seed, split)))
        return sorted(balanced(out, balance or (lambda s: ""), given.seed), key=lambda s: (s.split, s.patient, s.id))

    async def solve(tools: ToolCaller, scenario: Scenario) -> OracleAnswer:
        answer, citations = await solve_workflow(tools, scenario, solve_plan)
        return OracleAnswer(answer, citations)

    solve.__module__ = generate.__module__  # the category's own module (the registry names it)
    return register(
        Category(
            name=name,
            suite="agentic",
            tier="workflow",
            order=order,
            description=description,
            generate_population=generate_population,
            solve=solve,
            phrasings={name: list(phrasings)},
            since=3,
        )
    )
