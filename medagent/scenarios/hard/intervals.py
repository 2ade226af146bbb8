"""Intervals and ages: date arithmetic over two facts of the record.

- ``age_at_diagnosis``: age in completed years on the day a condition was first diagnosed (birth date from
  the Patient, onset from the Condition); never within 3 days of a birthday.
- ``days_to_treatment``: days from the first diagnosis of a condition to the first medication order whose
  documented reason is that condition (a later order, not the same day).
- ``vaccine_span``: days between the first and the most recent dose of a vaccine (at least 3 doses, so the
  agent must find both ends of the series).

All in UTC calendar days; answers are exact whole numbers.
"""

from __future__ import annotations

from datetime import date

from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.hard.common import HardBuilder, exact_integer
from medagent.scenarios.models import Scenario

CATEGORY = "interval_age"
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
    "How many days passed between the first diagnosis of {condition} (SNOMED {snomed}) and the first medication "
    "order written for it (an order whose documented reason is that condition)?",
    "From the day {condition} (SNOMED {snomed}) was first diagnosed, how many days later was the first medication "
    "prescribed with that condition as its documented reason?",
    "What is the number of days between the onset of the first {condition} (SNOMED {snomed}) and the first order of "
    "any medication documented as treating it?",
    "Count the days from the first {condition} diagnosis (SNOMED {snomed}) to the date of the earliest medication "
    "order whose reason is {condition}.",
    "How long, in days, did it take from the first documented {condition} (SNOMED {snomed}) to the first medication "
    "order for it?",
    "The first treatment order for {condition} (SNOMED {snomed}) came how many days after its first diagnosis?",
]
VACCINE_PHRASINGS = [
    "How many days lie between the patient's first and most recent dose of {vaccine} (CVX {cvx})?",
    "What is the number of days from the first {vaccine} dose (CVX {cvx}) to the latest one on record?",
    "Count the days between the earliest and the latest {vaccine} (CVX {cvx}) vaccination in the chart.",
    "How long, in days, is the span from the first to the most recent {vaccine} immunization (CVX {cvx})?",
    "From the first {vaccine} shot (CVX {cvx}) to the last one given by now, how many days passed?",
    "Taking the oldest and the newest {vaccine} doses (CVX {cvx}) in the record, how many days apart are they?",
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


def generate(b: HardBuilder) -> list[Scenario]:
    now = b.end
    rng = b.rng(CATEGORY)
    out: list[Scenario] = []
    firsts: dict[str, object] = {}
    for condition in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id)):
        if condition.onset <= now:
            firsts.setdefault(condition.code.code, condition)
    ages = []
    for code, condition in sorted(firsts.items()):
        onset_day = day_of(condition.onset)  # type: ignore[attr-defined]
        if whole_years_between(b.chart.birth_date, onset_day) >= 1 and not _near_birthday(b.chart.birth_date, onset_day):
            ages.append(condition)
    for condition in rng.sample(ages, min(2, len(ages))):
        onset_day = day_of(condition.onset)  # type: ignore[attr-defined]
        age = whole_years_between(b.chart.birth_date, onset_day)
        key = ("age_at_diagnosis", condition.code.code)  # type: ignore[attr-defined]
        index, template = b.phrasing(CATEGORY, key, AGE_PHRASINGS)
        question = template.format(condition=condition.code.display, snomed=condition.code.code)  # type: ignore[attr-defined]
        out.append(b.ehrqa(CATEGORY, key, now=now, question=question, answer_format=FORMAT_YEARS,
                           answer=exact_integer(age, "years"), phrasing=index,
                           provenance=[f"Patient/{b.chart.patient_id}", f"Condition/{condition.id}"],  # type: ignore[attr-defined]
                           meta={"form": "age_at_diagnosis", "snomed": condition.code.code}))  # type: ignore[attr-defined]
    treated = []
    by_id = {c.id: c for c in b.chart.conditions}
    for code, condition in sorted(firsts.items()):
        orders = sorted((m for m in b.chart.medications if m.authored <= now
                         and any(by_id.get(r) is not None and by_id[r].code.code == code for r in m.reasons)),
                        key=lambda m: (m.authored, m.id))
        if orders and day_of(orders[0].authored) > day_of(condition.onset):  # type: ignore[attr-defined]
            treated.append((condition, orders[0]))
    for condition, order in rng.sample(treated, min(1, len(treated))):
        days = (day_of(order.authored) - day_of(condition.onset)).days  # type: ignore[attr-defined]
        key = ("days_to_treatment", condition.code.code)  # type: ignore[attr-defined]
        index, template = b.phrasing(CATEGORY, key, TREATMENT_PHRASINGS)
        question = template.format(condition=condition.code.display, snomed=condition.code.code)  # type: ignore[attr-defined]
        out.append(b.ehrqa(CATEGORY, key, now=now, question=question, answer_format=FORMAT_DAYS,
                           answer=exact_integer(days, "days"), phrasing=index,
                           provenance=[f"Condition/{condition.id}", f"MedicationRequest/{order.id}"],  # type: ignore[attr-defined]
                           meta={"form": "days_to_treatment", "snomed": condition.code.code}))  # type: ignore[attr-defined]
    series: dict[str, list] = {}
    for shot in sorted(b.chart.immunizations, key=lambda s: (s.when, s.id)):
        if shot.when <= now:
            series.setdefault(shot.code.code, []).append(shot)
    spans = [(code, shots) for code, shots in sorted(series.items())
             if len(shots) >= 3 and day_of(shots[-1].when) > day_of(shots[0].when)]
    for code, shots in rng.sample(spans, min(1, len(spans))):
        days = (day_of(shots[-1].when) - day_of(shots[0].when)).days
        key = ("vaccine_span", code)
        index, template = b.phrasing(CATEGORY, key, VACCINE_PHRASINGS)
        question = template.format(vaccine=shots[0].code.display, cvx=code)
        out.append(b.ehrqa(CATEGORY, key, now=now, question=question, answer_format=FORMAT_DAYS,
                           answer=exact_integer(days, "days"), phrasing=index,
                           provenance=[f"Immunization/{shots[0].id}", f"Immunization/{shots[-1].id}"],
                           meta={"form": "vaccine_span", "cvx": code, "rows": len(shots)}))
    return out
