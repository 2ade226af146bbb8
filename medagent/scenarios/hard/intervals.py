"""Intervals and ages: date arithmetic over two facts of the record.

- ``age_at_diagnosis``: age in completed years on the day a condition was first diagnosed (birth date from
  the Patient, onset from the Condition); never within 3 days of a birthday.
- ``days_to_last_order``: days from the first diagnosis of a condition to the most recent medication order
  whose documented reason is that condition (at least two such orders; a later day than the diagnosis).
- ``age_at_last_dose``: age in completed years on the day of the most recent dose of a vaccine (at least two
  doses; never within 3 days of a birthday, never in the first year).

(Days from a diagnosis to its *first* treatment and the span of a vaccine series were tried and dropped:
Synthea's fixed delays and schedules make them guessable from the condition or vaccine code alone.)

All in UTC calendar days; answers are exact whole numbers.
"""

from __future__ import annotations

from datetime import date

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import ConditionFact
from medagent.scenarios.chart_reads import conditions_oldest_first, every_row, newest_with_reason
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.hard.common import HardBuilder, exact_integer
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import utc_date, utc_moment

NAME = "interval_age"
BIRTHDAY_MARGIN = 3

AGE_PHRASINGS = [
    "How old was the patient, in completed years, when {condition} (SNOMED {snomed}) was first diagnosed?",
    "At what age (whole years) was the patient first diagnosed with {condition} (SNOMED {snomed})?",
    "What was the patient's age in full years on the day of the first {condition} diagnosis (SNOMED {snomed})?",
    "When {condition} (SNOMED {snomed}) was first recorded, how many completed years old was the patient?",
    "Give the patient's age in whole years at the onset of their first episode of {condition} (SNOMED {snomed}).",
    "How many full years had the patient lived when the first diagnosis of {condition} (SNOMED {snomed}) was made?",
]
TREATMENT_PHRASINGS = [
    "How many days passed between the first diagnosis of {condition} (SNOMED {snomed}) and the most recent "
    "medication order written for it (an order whose documented reason is that condition)?",
    "From the day {condition} (SNOMED {snomed}) was first diagnosed, how many days later was the latest medication "
    "order with that condition as its documented reason written?",
    "What is the number of days between the onset of the first {condition} (SNOMED {snomed}) and the newest order of "
    "any medication documented as treating it?",
    "Count the days from the first {condition} diagnosis (SNOMED {snomed}) to the date of the most recent medication "
    "order whose reason is {condition}.",
    "How long, in days, after the first documented {condition} (SNOMED {snomed}) was the last medication order for "
    "it written?",
    "The latest treatment order for {condition} (SNOMED {snomed}) came how many days after its first diagnosis?",
]
VACCINE_PHRASINGS = [
    "How old was the patient, in completed years, at the most recent dose of {vaccine} (CVX {cvx})?",
    "At what age (whole years) did the patient receive their latest {vaccine} vaccination (CVX {cvx})?",
    "What was the patient's age in full years on the day of the last {vaccine} dose (CVX {cvx}) on record?",
    "When the most recent {vaccine} (CVX {cvx}) was given, how many completed years old was the patient?",
    "Give the patient's age in whole years at their newest {vaccine} immunization (CVX {cvx}).",
    "How many full years had the patient lived when the latest {vaccine} shot (CVX {cvx}) was administered?",
]
FORMAT_DAYS = "Answer with one whole number of days (the difference between the two calendar dates)."
FORMAT_YEARS = "Answer with one whole number of years."


def _near_birthday(born: date, on: date) -> bool:
    for year in (on.year - 1, on.year, on.year + 1):
        try:
            birthday = born.replace(year=year)
        except ValueError:  # 29 February
            birthday = date(year, 3, 1)
        if abs((on - birthday).days) <= BIRTHDAY_MARGIN:
            return True
    return False


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    now = b.end
    rng = b.rng(NAME)
    out: list[Scenario] = []
    firsts: dict[str, ConditionFact] = {}
    for condition in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id)):
        if condition.onset <= now:
            firsts.setdefault(condition.code.code, condition)
    ages = []
    for _, condition in sorted(firsts.items()):
        onset_day = day_of(condition.onset)
        if whole_years_between(b.chart.birth_date, onset_day) >= 1 and not _near_birthday(
            b.chart.birth_date, onset_day
        ):
            ages.append(condition)
    for condition in rng.sample(ages, min(2, len(ages))):
        onset_day = day_of(condition.onset)
        age = whole_years_between(b.chart.birth_date, onset_day)
        key = ("age_at_diagnosis", condition.code.code)
        index, template = b.phrasing(NAME, key, AGE_PHRASINGS)
        question = template.format(condition=condition.code.display, snomed=condition.code.code)
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=question,
                answer_format=FORMAT_YEARS,
                answer=exact_integer(age, "years"),
                phrasing=index,
                provenance=[f"Patient/{b.chart.patient_id}", f"Condition/{condition.id}"],
                meta={"form": "age_at_diagnosis", "snomed": condition.code.code},
            )
        )
    treated = []
    by_id = {c.id: c for c in b.chart.conditions}
    for code, condition in sorted(firsts.items()):
        orders = sorted(
            (
                m
                for m in b.chart.medications
                if m.authored <= now and any(by_id.get(r) is not None and by_id[r].code.code == code for r in m.reasons)
            ),
            key=lambda m: (m.authored, m.id),
        )
        if len(orders) >= 2 and day_of(orders[-1].authored) > day_of(condition.onset):
            treated.append((condition, orders[-1]))
    for condition, order in rng.sample(treated, min(1, len(treated))):
        days = (day_of(order.authored) - day_of(condition.onset)).days
        key = ("days_to_last_order", condition.code.code)
        index, template = b.phrasing(NAME, key, TREATMENT_PHRASINGS)
        question = template.format(condition=condition.code.display, snomed=condition.code.code)
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=question,
                answer_format=FORMAT_DAYS,
                answer=exact_integer(days, "days"),
                phrasing=index,
                provenance=[f"Condition/{condition.id}", f"MedicationRequest/{order.id}"],
                meta={"form": "days_to_last_order", "snomed": condition.code.code},
            )
        )
    series: dict[str, list] = {}
    for shot in sorted(b.chart.immunizations, key=lambda s: (s.when, s.id)):
        if shot.when <= now:
            series.setdefault(shot.code.code, []).append(shot)
    lasts = []
    for code, shots in sorted(series.items()):
        last_day = day_of(shots[-1].when)
        if (
            len(shots) >= 2
            and whole_years_between(b.chart.birth_date, last_day) >= 1
            and not _near_birthday(b.chart.birth_date, last_day)
        ):
            lasts.append((code, shots))
    for code, shots in rng.sample(lasts, min(1, len(lasts))):
        years = whole_years_between(b.chart.birth_date, day_of(shots[-1].when))
        key = ("age_at_last_dose", code)
        index, template = b.phrasing(NAME, key, VACCINE_PHRASINGS)
        question = template.format(vaccine=shots[0].code.display, cvx=code)
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=question,
                answer_format=FORMAT_YEARS,
                answer=exact_integer(years, "years"),
                phrasing=index,
                provenance=[f"Patient/{b.chart.patient_id}", f"Immunization/{shots[-1].id}"],
                meta={"form": "age_at_last_dose", "cvx": code, "rows": len(shots)},
            )
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """Date arithmetic between two records that two different tools return."""
    form = sc.meta["form"]
    if form == "age_at_last_dose":
        shots = [
            r
            for r in await every_row(tools, "search_immunizations", patient=sc.patient, code=sc.meta["cvx"])
            if r.get("status") in (None, "completed")
        ]
        if not shots:
            return OracleAnswer("none", [])
        last = max(shots, key=lambda r: utc_moment(r["date"]))
        patient = await tools.call("get_patient", patient=sc.patient)
        born = date.fromisoformat(patient.rows[0]["birthDate"][:10])
        return OracleAnswer(
            str(whole_years_between(born, utc_date(last["date"]))), [patient.rows[0]["ref"], last["ref"]]
        )
    conditions = await conditions_oldest_first(tools, sc.patient, sc.meta["snomed"])
    if not conditions:
        return OracleAnswer("none", [])
    first = min(conditions, key=lambda r: utc_moment(r["onset"]))
    if form == "age_at_diagnosis":
        patient = await tools.call("get_patient", patient=sc.patient)
        born = date.fromisoformat(patient.rows[0]["birthDate"][:10])
        return OracleAnswer(
            str(whole_years_between(born, utc_date(first["onset"]))), [patient.rows[0]["ref"], first["ref"]]
        )
    orders = await newest_with_reason(tools, sc.patient, conditions)
    if not orders:
        return OracleAnswer("none", [first["ref"]])
    order = max(orders, key=lambda r: utc_moment(r["authored"]))
    return OracleAnswer(
        str((utc_date(order["authored"]) - utc_date(first["onset"])).days), [first["ref"], order["ref"]]
    )


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=30,
        generate=generate,
        solve=solve,
        description="Ages and intervals: age at a diagnosis or at a vaccine's last dose, days from diagnosis to the "
        "last order for it.",
        phrasings={
            "age_at_diagnosis": AGE_PHRASINGS,
            "days_to_last_order": TREATMENT_PHRASINGS,
            "age_at_last_dose": VACCINE_PHRASINGS,
        },
    )
)
