"""What every core agentic task shares: the task text layout, the phrasings, the scenario clock, write-spec builders.

Each task picks its own ``now`` inside the patient's record span (before death), such that the
data the task needs exists, or deliberately does not, at that moment. The chart still holds
data after ``now`` (the server has the whole record): the agent must ignore the future, as the
task text says.

Each task type has at least five phrasings of its request (its module's ``PHRASINGS``), the last one used only
in the test split. The rules, codes, dosing and answer format of a task stay in its context and format lines
(one wording, shared by every phrasing, so the grader and the text never disagree); only the request itself
varies. Placeholders: ``{patient}`` ("the patient with MRN ..."), ``{mrn}`` and the task's own words.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medagent.scenarios.category import ChartInput
from medagent.scenarios.chart import Chart, ObservationFact
from medagent.scenarios.clock import at_clock, day_of, iso, round_to_quarter_hour, whole_years_between
from medagent.scenarios.codes import IV_ROUTE, LOINC, NDC, ORAL_ROUTE
from medagent.scenarios.identity import rng_for, scenario_id
from medagent.scenarios.models import (
    CodingSpec,
    ExpectedAnswer,
    FieldRule,
    QuantityOption,
    QuantityRule,
    Scenario,
    Tolerance,
    WindowRule,
    WriteSpec,
)
from medagent.scenarios.population import Population

FUTURE_NOTE = "Results dated after now are not yet known: ignore them."
AUTHORED_PATHS = ["authoredOn"]
OCCURRENCE_PATHS = ["occurrenceDateTime", "occurrencePeriod.start", "occurrenceTiming.event"]
EFFECTIVE_PATHS = ["effectiveDateTime", "effectivePeriod.start", "effectiveInstant"]
EXACT = Tolerance(abs=0.05)  # fixture values are written with one decimal: read them exactly
TRIES = 12
TEST_ONLY_PHRASINGS = 1


def pick_phrasing(rng: random.Random, every: Sequence[str], test: bool) -> tuple[int, str]:
    """(index, template): any phrasing in the test split, all but the test-only ones in dev."""
    allowed = every if test else every[:-TEST_ONLY_PHRASINGS]
    index = rng.randrange(len(allowed))
    return index, allowed[index]


def unique_at(facts: list[ObservationFact]) -> list[ObservationFact]:
    """Facts whose timestamp carries one value only (a same-time duplicate would be ambiguous)."""
    values: dict[datetime, set[float]] = {}
    for fact in facts:
        values.setdefault(fact.when, set()).add(fact.value)
    return [f for f in facts if len(values[f.when]) == 1]


def latest_before(facts: list[ObservationFact], moment: datetime) -> ObservationFact | None:
    before = [f for f in facts if f.when <= moment]
    return before[-1] if before else None


@dataclass
class AgenticBuilder:
    chart: Chart
    population: Population
    seed: int
    test: bool = False  # the patient is in the test split (test-only phrasings allowed)
    phrasings: Sequence[str] = ()  # the task type's phrasings of its request

    @classmethod
    def of(cls, given: ChartInput, phrasings: Sequence[str]) -> AgenticBuilder:
        return cls(given.chart, given.population, given.seed, given.test, phrasings)

    def say(self, category: str, key: Sequence[object] = (), **words: object) -> tuple[str, int]:
        """The task sentence in one of the category's phrasings (seeded per scenario) and its index."""
        index, template = pick_phrasing(self.rng(category, "phrasing", *key), self.phrasings, self.test)
        return template.format(patient=f"the patient with MRN {self.chart.mrn}", mrn=self.chart.mrn, **words), index

    @property
    def adult(self) -> bool:
        """18 or older at the end of the span (callers check the age at their own now)."""
        return whole_years_between(self.chart.birth_date, day_of(self.span[1])) >= 18

    def rng(self, category: str, *key: object) -> random.Random:
        return rng_for(self.seed, "agentic", category, self.chart.patient_id, *key)

    def id_for(self, category: str, *key: object) -> str:
        return scenario_id("agentic", category, self.chart.patient_id, *key)

    @property
    def span(self) -> tuple[datetime, datetime]:
        """First encounter to the end of the record (or death)."""
        assert self.chart.record_end is not None
        end = self.chart.record_end
        if self.chart.deceased is not None:
            end = min(end, self.chart.deceased)
        return self.chart.record_start, end

    def inside(self, moment: datetime) -> bool:
        start, end = self.span
        return start <= moment <= end

    def clock(self, moment: datetime) -> datetime:
        return round_to_quarter_hour(moment)

    def make(
        self,
        category: str,
        key: Sequence[object],
        *,
        now: datetime,
        instruction: str,
        context: str,
        answer_format: str,
        answer: ExpectedAnswer,
        writes: Iterable[WriteSpec] = (),
        branch: str | None = None,
        variant: str | None = None,
        setup: Iterable[dict[str, Any]] = (),
        provenance: Iterable[str] = (),
        meta: dict[str, Any] | None = None,
    ) -> Scenario:
        writes = list(writes)
        text = (
            f"{instruction}\n\nContext: It is now {iso(now)}. {context}".rstrip()
            + f"\n\nAnswer format: {answer_format}"
        )
        info: dict[str, Any] = {"mrn": self.chart.mrn, **(meta or {})}
        if variant:
            info["variant"] = variant
        return Scenario(
            id=self.id_for(category, *key),
            suite="agentic",
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
        )


# ---------- write-spec builders ----------


def around(
    now: datetime,
    name: str,
    paths: list[str],
    before: timedelta = timedelta(hours=1),
    after: timedelta = timedelta(hours=1),
) -> WindowRule:
    """The written time must be the scenario's now (within an hour), never the wall clock."""
    return WindowRule(name=name, paths=paths, not_before=iso(now - before), not_after=iso(now + after))


def next_morning(now: datetime, hour: int = 8) -> tuple[datetime, WindowRule]:
    """08:00 on the next calendar day; accepted between 06:00 and 10:00 of that day."""
    day = day_of(now) + timedelta(days=1)
    target = at_clock(day, hour)
    return target, WindowRule(
        name="next morning", paths=OCCURRENCE_PATHS, not_before=iso(at_clock(day, 6)), not_after=iso(at_clock(day, 10))
    )


def quantity(
    name: str, path: str, value: float, unit: str, factors: dict[str, float] | None = None, tolerance: float = 1e-6
) -> QuantityRule:
    return QuantityRule(
        name=name,
        options=[
            QuantityOption(
                path=path, value=value, unit=unit, unit_factors=factors or {}, tolerance=Tolerance(abs=tolerance)
            )
        ],
    )


def medication_order(
    name: str,
    patient: str,
    now: datetime,
    system: str,
    code: str,
    *,
    quantities: Iterable[QuantityRule] = (),
    route: list[str] | None = None,
) -> WriteSpec:
    fields = [FieldRule(name="route", path="dosageInstruction.route", any_of=route)] if route else []
    return WriteSpec(
        name=name,
        resource_type="MedicationRequest",
        subject=f"Patient/{patient}",
        code_path="medicationCodeableConcept.coding",
        codes=[CodingSpec(system=system, code=code)],
        intent=["order"],
        status=["active"],
        quantities=list(quantities),
        fields=fields,
        windows=[around(now, "authored now", AUTHORED_PATHS)],
    )


def service_order(
    name: str,
    patient: str,
    now: datetime,
    codes: list[CodingSpec],
    *,
    extra_windows: Iterable[WindowRule] = (),
    fields: Iterable[FieldRule] = (),
) -> WriteSpec:
    return WriteSpec(
        name=name,
        resource_type="ServiceRequest",
        subject=f"Patient/{patient}",
        code_path="code.coding",
        codes=codes,
        intent=["order"],
        status=["active"],
        fields=list(fields),
        windows=[around(now, "authored now", AUTHORED_PATHS), *extra_windows],
    )


def potassium_order(patient: str, now: datetime, dose_meq: float) -> WriteSpec:
    return medication_order(
        "oral potassium replacement",
        patient,
        now,
        NDC,
        "40032-917-01",
        route=ORAL_ROUTE,
        quantities=[
            quantity(
                "dose",
                "dosageInstruction.doseAndRate.doseQuantity",
                dose_meq,
                "mEq",
                {"meq": 1.0, "mmol": 1.0},
                tolerance=0.1,
            )
        ],
    )


def potassium_followup(patient: str, now: datetime) -> WriteSpec:
    _, window = next_morning(now)
    return service_order(
        "serum potassium next morning",
        patient,
        now,
        [CodingSpec(system=LOINC, code="2823-3"), CodingSpec(system=LOINC, code="6298-4")],
        extra_windows=[window],
    )


def magnesium_order(patient: str, now: datetime, grams: float, hours: float) -> WriteSpec:
    duration = QuantityRule(
        name="infusion duration",
        options=[
            QuantityOption(
                path="dosageInstruction.doseAndRate.rateQuantity",
                value=hours,
                unit="h",
                unit_factors={"hour": 1.0, "hours": 1.0, "hr": 1.0, "min": 1 / 60},
            ),
            QuantityOption(
                path="dosageInstruction.timing.repeat",
                value=hours,
                unit="h",
                value_key="duration",
                unit_keys=["durationUnit"],
                unit_factors={"min": 1 / 60},
            ),
            QuantityOption(
                path="dosageInstruction.doseAndRate.rateQuantity",
                value=grams / hours,
                unit="g/h",
                unit_factors={"g/hr": 1.0, "g/hour": 1.0},
                tolerance=Tolerance(abs=1e-6),
            ),
        ],
    )
    dose = quantity(
        "dose",
        "dosageInstruction.doseAndRate.doseQuantity",
        grams,
        "g",
        {"gram": 1.0, "grams": 1.0, "mg": 0.001},
        tolerance=1e-6,
    )
    return medication_order(
        "IV magnesium replacement", patient, now, NDC, "0338-1715-40", route=IV_ROUTE, quantities=[dose, duration]
    )


def pick_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A uniformly random moment in [start, end]."""
    return start + (end - start) * rng.random()
