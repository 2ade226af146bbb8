"""EHRQA questions in the ten categories of the MedGemma report, answered from the bundle JSON.

Every question a chart supports is generated (about 200 per patient on average); the frozen
set samples from them (``sampling``). Yes/no questions come in balanced pairs: each "yes" has a
"no" about a code that exists elsewhere in the population, never one the patient has under a
more specific code (``codes.IMPLIES``). The clock of every question is the end of the patient's
record, stated in the text.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from medagent.scenarios.chart import Chart, ConditionFact, MedicationFact, ObservationFact
from medagent.scenarios.clock import day_of, iso, whole_years_between
from medagent.scenarios.codes import CONDITION_GROUPS, DEPENDENT_CODES, LABS, LabInfo, implied_codes
from medagent.scenarios.expect import boolean, names, number_answer, on_date, rounding_phrase
from medagent.scenarios.identity import rng_for, scenario_id
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.population import Population
from medagent.vocabulary import condition_label

CATEGORIES = [
    "condition_existence",
    "condition_existence_transitive",
    "immunization_date",
    "medication_current",
    "medication_existence",
    "medication_prescriber",
    "medication_prescription_date",
    "medication_for_condition",
    "observation_value",
    "observation_dependent",
]

FORMAT_BOOLEAN = "Answer yes or no."
FORMAT_DATE = "Answer with one date in YYYY-MM-DD format."
FORMAT_MEDICATIONS = ("Answer with the medication names exactly as written in the chart, separated by "
                      "semicolons, or 'none' if there are none.")
FORMAT_MEDS_SINCE = ('Answer as JSON: {"medications": [the medication names exactly as written in the chart], '
                     '"first_ordered": "YYYY-MM-DD" (the date of the earliest of those orders)}.')
FORMAT_PERSON = "Answer with the practitioner's full name (given name and family name)."
DEPENDENT_WINDOW = timedelta(days=90)  # "at the time of": a value at most 90 days before the event

# At least five phrasings per form; the LAST one of each list is used only in the test split, so a model
# fine-tuned on dev has never seen it (``TEST_ONLY_PHRASINGS``).
TEST_ONLY_PHRASINGS = 1
PHRASES: dict[str, list[str]] = {
    "condition": [
        "Has the patient ever been diagnosed with {c}?",
        "Does the patient's record contain a diagnosis of {c}?",
        "Is {c} documented as a condition anywhere in this patient's history?",
        "Has {c} ever been recorded on the patient's problem list?",
        "Looking through the whole chart, was {c} ever diagnosed in this patient?",
        "Is there a diagnosis of {c}, current or resolved, in this patient's chart?",
    ],
    "group": [
        "Has the patient ever been diagnosed with any form of {g}?",
        "Does the patient's history include any condition that is a kind of {g}?",
        "Has the patient ever had {g} of any type? Count any diagnosis that is a form of it.",
        "Is any kind of {g} documented among the patient's diagnoses, past or present?",
        "Counting every subtype, does this patient's problem list show {g} at any time?",
        "Would a search of this chart for {g}, including its more specific diagnoses, find anything?",
    ],
    "treated": [
        "Has the patient ever been prescribed a medication whose documented reason is {c}?",
        "Is there any medication order in the patient's record with {c} as its documented reason?",
        "Was the patient's {c} ever treated with a prescribed medication (an order whose documented reason "
        "is {c})?",
        "The patient has a diagnosis of {c}. Does any medication order document {c} as its reason?",
        "Has a drug ever been ordered for this patient's {c}, judging by the orders' documented reasons?",
        "Among the patient's prescriptions, is {c} named as the reason for any of them?",
    ],
    "vaccine_last": [
        "When did the patient most recently receive the {v} vaccine (CVX {code})?",
        "What is the date of the patient's last {v} vaccination (CVX {code})?",
        "On what date was the most recent dose of the {v} vaccine (CVX {code}) given to the patient?",
        "When was the {v} vaccine (CVX {code}) last administered to this patient?",
        "Give the date of the latest {v} immunization (CVX {code}) in the chart.",
        "What day did this patient get their most recent {v} shot (CVX {code})?",
    ],
    "vaccine_first": [
        "When did the patient receive their first dose of the {v} vaccine (CVX {code})?",
        "What is the date of the patient's earliest {v} vaccination (CVX {code})?",
        "On what date was the first {v} vaccine (CVX {code}) given to this patient?",
        "When was the {v} vaccine (CVX {code}) first administered to the patient?",
        "Give the date of the earliest {v} immunization (CVX {code}) on record.",
        "What day did this patient get their very first {v} shot (CVX {code})?",
    ],
    "med_current": [
        "Is the patient currently taking {m}, that is, is there an active order for it?",
        "Does the patient have an active prescription for {m}?",
        "Is {m} on the patient's current medication list (an order with status active)?",
        "Right now, is there an active medication order for {m} in this chart?",
        "Is {m} an active prescription for this patient at present?",
        "As of now, does the medication list show {m} as active?",
    ],
    "med_current_list": [
        "List all medications with an active order for this patient.",
        "Which medications is the patient currently prescribed (orders with status active)?",
        "What is on the patient's active medication list?",
        "Name every medication this patient has an active order for right now.",
        "Give the patient's current medications, that is, all orders with status active.",
        "Which drugs does the chart show as actively prescribed for this patient today?",
    ],
    "med_ever": [
        "Has the patient ever been prescribed {m}?",
        "Is there any prescription of {m} in the patient's record, past or present?",
        "Was {m} ever ordered for this patient?",
        "Does the chart show any order for {m}, at any time?",
        "Has this patient had {m} prescribed at some point?",
        "At any time in this record, was a prescription for {m} written?",
    ],
    "prescriber": [
        "Who prescribed the patient's most recent order of {m}?",
        "Which practitioner wrote the latest prescription of {m} for this patient?",
        "Name the prescriber of the most recent {m} order.",
        "Who is the requester on the patient's latest order for {m}?",
        "Which clinician signed the newest prescription of {m} in this chart?",
        "The last time {m} was ordered for this patient, who ordered it?",
    ],
    "med_date_last": [
        "When was {m} most recently prescribed to the patient?",
        "On what date was the latest order for {m} written for this patient?",
        "What is the date of the patient's most recent prescription of {m}?",
        "When was the newest order for {m} authored?",
        "Give the date on which {m} was last ordered for this patient.",
        "What day was {m} last prescribed here?",
    ],
    "med_date_first": [
        "When was {m} first prescribed to the patient?",
        "On what date was the earliest order for {m} written for this patient?",
        "What is the date of the patient's first prescription of {m}?",
        "When was the oldest order for {m} authored?",
        "Give the date on which {m} was first ordered for this patient.",
        "What day was {m} prescribed to this patient for the very first time?",
    ],
    "meds_for_condition": [
        "Which medications were prescribed to the patient for {c} (orders whose documented reason is {c})?",
        "List the medications in the patient's record whose documented reason is {c}.",
        "What drugs have been ordered for the patient's {c}, by the orders' documented reason?",
        "Name every medication with {c} as the documented reason of its order.",
        "Which prescriptions in this chart document {c} as their reason? Give the medications.",
        "For the patient's {c}, which medications were ordered (documented reason {c})?",
    ],
    "med_for_condition": [
        "Was {m} ever prescribed for the patient's {c} (is {c} the documented reason of an order for it)?",
        "Is {c} a documented reason for a prescription of {m} in this patient's record?",
        "Does any order for {m} name {c} as its reason?",
        "Was {m} ordered to treat the patient's {c}, according to the orders' documented reasons?",
        "Has this patient received {m} with {c} as the documented indication?",
        "Judging by the documented reasons, was {m} ever given for {c} in this patient?",
    ],
    "obs_last": [
        "What was the patient's most recent {label} (LOINC {code})?",
        "What is the latest recorded {label} (LOINC {code}) for this patient?",
        "Give the newest {label} result (LOINC {code}) in the chart.",
        "What value did the last {label} measurement (LOINC {code}) show?",
        "What is the patient's {label} (LOINC {code}) as of the latest result?",
        "Most recent {label} (LOINC {code}) for this patient: what was it?",
    ],
    "obs_on_day": [
        "What was the patient's {label} (LOINC {code}) on {day}?",
        "What {label} (LOINC {code}) value was recorded for the patient on {day}?",
        "Give the {label} (LOINC {code}) measured on {day}.",
        "On {day}, what was this patient's {label} (LOINC {code})?",
        "What result did the {label} (LOINC {code}) taken on {day} show?",
        "Find the {label} (LOINC {code}) from {day}: what was the value?",
    ],
    "obs_at_condition": [
        "What was the patient's {label} (LOINC {code}) at the time of their first diagnosis of {c}, "
        "that is, the most recent value recorded on or before the day of that diagnosis?",
        "When {c} was first diagnosed, what was the patient's {label} (LOINC {code})? Use the latest value "
        "recorded on or before the day of that first diagnosis.",
        "Give the {label} (LOINC {code}) that was current when the patient was first diagnosed with {c}: the "
        "last value recorded on or before that day.",
        "What {label} (LOINC {code}) did the patient have at the first diagnosis of {c} (the most recent result "
        "on or before the diagnosis day)?",
        "At the first documented diagnosis of {c}, what was the latest {label} (LOINC {code}) on record, "
        "counting results up to and including that day?",
        "Just before or on the day {c} was first diagnosed, what was the patient's most recent {label} "
        "(LOINC {code})?",
    ],
    "obs_at_medication": [
        "What was the patient's {label} (LOINC {code}) when {m} was first prescribed, that is, the most "
        "recent value recorded on or before the day of that first prescription?",
        "When {m} was first ordered, what was the patient's {label} (LOINC {code})? Use the latest value "
        "recorded on or before the day of that first order.",
        "Give the {label} (LOINC {code}) that was current when {m} was first prescribed: the last value "
        "recorded on or before that day.",
        "What {label} (LOINC {code}) did the patient have at the first prescription of {m} (the most recent "
        "result on or before the day of that order)?",
        "At the first order of {m}, what was the latest {label} (LOINC {code}) on record, counting results up "
        "to and including that day?",
        "Just before or on the day {m} was first prescribed, what was the patient's most recent {label} "
        "(LOINC {code})?",
    ],
}


def phrasings_for(form: str, test: bool) -> list[str]:
    """The phrasings a question of this form may use: all of them in the test split, all but the test-only ones
    in dev."""
    every = PHRASES[form]
    return every if test else every[:-TEST_ONLY_PHRASINGS]


def number_format(info: LabInfo, decimals: int) -> str:
    return f"Answer with one number in {info.unit}, {rounding_phrase(decimals)}."


@dataclass
class _Builder:
    """Turns facts of one chart into Scenarios: shared clock, text, ids and random streams."""

    chart: Chart
    population: Population
    seed: int
    test: bool = False  # the patient is in the test split (test-only phrasings allowed)

    @property
    def now(self) -> datetime:
        assert self.chart.record_end is not None
        return self.chart.record_end

    def rng(self, *key: object) -> random.Random:
        return rng_for(self.seed, "ehrqa", self.chart.patient_id, *key)

    def plausible(self, code: str | Iterable[str]) -> bool:
        """A "no" a clinician could ask of this patient (sex, age at now): see ``Population.plausible_for``."""
        age = whole_years_between(self.chart.birth_date, day_of(self.now))
        return self.population.plausible_for(code, self.chart.gender, age)

    def make(self, category: str, key: tuple[object, ...], phrases: str, fmt: str, answer: ExpectedAnswer,
             provenance: Iterable[str], entity: str | None = None, hard: bool = False, **words: object) -> Scenario:
        template = self.rng(category, *key).choice(phrasings_for(phrases, self.test))
        question = template.format(**words)
        text = (f"It is now {iso(self.now)}. The patient is {self.chart.name} "
                f"(Patient/{self.chart.patient_id}).\nQuestion: {question}\nAnswer format: {fmt}")
        meta: dict[str, object] = {"form": phrases, "key": [str(k) for k in key],
                                   "phrasing": PHRASES[phrases].index(template)}
        if answer.type == "boolean":
            meta["polarity"] = "yes" if answer.value else "no"
            meta["entity"] = entity if entity is not None else "/".join(str(k) for k in key[1:])
            if hard:
                meta["hard"] = True
        return Scenario(
            id=scenario_id("ehrqa", category, self.chart.patient_id, *key), suite="ehrqa", category=category,
            patient=self.chart.patient_id, now=iso(self.now), question=text, answer=answer,
            provenance=sorted(set(provenance)), meta=meta,
        )


def _by_code(items: Iterable[MedicationFact]) -> dict[str, list[MedicationFact]]:
    grouped: dict[str, list[MedicationFact]] = defaultdict(list)
    for item in items:
        grouped[item.code.code].append(item)
    for orders in grouped.values():
        orders.sort(key=lambda m: (m.authored, m.id))
    return dict(sorted(grouped.items()))


def _first_conditions(chart: Chart) -> dict[str, list[ConditionFact]]:
    grouped: dict[str, list[ConditionFact]] = defaultdict(list)
    for condition in chart.conditions:
        grouped[condition.code.code].append(condition)
    for items in grouped.values():
        items.sort(key=lambda c: (c.onset, c.id))
    return dict(sorted(grouped.items()))


# ---------- the ten categories ----------

def condition_existence(b: _Builder) -> list[Scenario]:
    category = "condition_existence"
    mine = _first_conditions(b.chart)
    out = [b.make(category, ("yes", code), "condition", FORMAT_BOOLEAN, boolean(True),
                  [f"Condition/{c.id}" for c in items], c=condition_label(items[0].code.display))
           for code, items in mine.items()]
    exclude = implied_codes(set(mine))
    # every code of the population the patient does not have (nor implies): the sampler matches them to the
    # positives code by code, so the code asked about says nothing about the answer
    for code, display in b.population.conditions.items():
        if code not in exclude and b.plausible(code):
            out.append(b.make(category, ("no", code), "condition", FORMAT_BOOLEAN, boolean(False), [],
                              c=condition_label(display)))
    return out


def condition_existence_transitive(b: _Builder) -> list[Scenario]:
    category = "condition_existence_transitive"
    mine = _first_conditions(b.chart)
    codes = implied_codes(set(mine))
    out: list[Scenario] = []
    present_groups = {code for group in CONDITION_GROUPS for code in group.members if code in b.population.conditions}
    yes_groups, no_groups = [], []
    for group in CONDITION_GROUPS:
        members = group.members & set(mine)
        if members:
            yes_groups.append((group, members))
        elif not (group.ambiguous & codes) and not (group.members & codes) and \
                group.members & present_groups and b.plausible(group.members):
            no_groups.append(group)
    for group, members in yes_groups:
        refs = [f"Condition/{c.id}" for code in members for c in mine[code]]
        out.append(b.make(category, ("group-yes", group.key), "group", FORMAT_BOOLEAN, boolean(True), refs,
                          g=group.label))
    for group in no_groups:
        out.append(b.make(category, ("group-no", group.key), "group", FORMAT_BOOLEAN, boolean(False), [],
                          g=group.label))
    # via a medication's reason: the condition exists *and* was treated
    by_id = {c.id: c for c in b.chart.conditions}
    treated: dict[str, list[str]] = defaultdict(list)
    for med in b.chart.medications:
        for reason in med.reasons:
            if reason in by_id:
                treated[by_id[reason].code.code].append(f"MedicationRequest/{med.id}")
                treated[by_id[reason].code.code].append(f"Condition/{reason}")
    for code, refs in sorted(treated.items()):
        out.append(b.make(category, ("treated-yes", code), "treated", FORMAT_BOOLEAN, boolean(True), refs,
                          c=condition_label(b.population.treated_conditions[code])))
    # "no" only about a condition the patient has (so "does X exist" does not answer it) that some patient's
    # order documents as its reason, and that no order of this patient documents (nor one it implies)
    exclude = implied_codes(set(treated))
    for code, items in mine.items():
        if code in exclude or code not in b.population.treated_conditions:
            continue
        out.append(b.make(category, ("treated-no", code), "treated", FORMAT_BOOLEAN, boolean(False),
                          [f"Condition/{c.id}" for c in items], c=condition_label(items[0].code.display)))
    return out


def immunization_date(b: _Builder) -> list[Scenario]:
    category = "immunization_date"
    grouped: dict[str, list] = defaultdict(list)
    for shot in b.chart.immunizations:
        grouped[shot.code.code].append(shot)
    out = []
    for code, shots in sorted(grouped.items()):
        shots.sort(key=lambda s: (s.when, s.id))
        words = {"v": shots[0].code.display, "code": code}
        last = shots[-1]
        out.append(b.make(category, ("last", code), "vaccine_last", FORMAT_DATE, on_date(day_of(last.when).isoformat()),
                          [f"Immunization/{last.id}"], **words))
        if day_of(shots[0].when) != day_of(last.when):
            out.append(b.make(category, ("first", code), "vaccine_first", FORMAT_DATE,
                              on_date(day_of(shots[0].when).isoformat()), [f"Immunization/{shots[0].id}"], **words))
    return out


def medication_current(b: _Builder) -> list[Scenario]:
    category = "medication_current"
    if b.chart.deceased is not None:
        return []  # "currently" has no meaning after death
    orders = _by_code(b.chart.medications)
    active = {code: items for code, items in orders.items() if any(m.status == "active" for m in items)}
    out = []
    for code, items in active.items():
        refs = [f"MedicationRequest/{m.id}" for m in items if m.status == "active"]
        out.append(b.make(category, ("yes", code), "med_current", FORMAT_BOOLEAN, boolean(True), refs,
                          m=items[-1].code.display))
    # every drug without an active order: stopped ones are "hard" (the sampler prefers them), then the rest
    for code, display in b.population.medications.items():
        if code in active or not b.plausible(code):
            continue
        stopped = code in orders
        refs = [f"MedicationRequest/{m.id}" for m in orders.get(code, [])]
        out.append(b.make(category, ("no", code), "med_current", FORMAT_BOOLEAN, boolean(False), refs,
                          hard=stopped, m=orders[code][-1].code.display if stopped else display))
    listed = [items[-1].code.display for items in active.values()]
    refs = [f"MedicationRequest/{m.id}" for items in active.values() for m in items if m.status == "active"]
    if orders:
        out.append(b.make(category, ("list",), "med_current_list", FORMAT_MEDICATIONS,
                          names(listed, "medication"), refs))
    return out


def medication_existence(b: _Builder) -> list[Scenario]:
    category = "medication_existence"
    orders = _by_code(b.chart.medications)
    out = [b.make(category, ("yes", code), "med_ever", FORMAT_BOOLEAN, boolean(True),
                  [f"MedicationRequest/{m.id}" for m in items], m=items[-1].code.display)
           for code, items in orders.items()]
    for code, display in b.population.medications.items():
        if code not in orders and b.plausible(code):
            out.append(b.make(category, ("no", code), "med_ever", FORMAT_BOOLEAN, boolean(False), [], m=display))
    return out


def medication_prescriber(b: _Builder) -> list[Scenario]:
    category = "medication_prescriber"
    out = []
    usual = usual_prescribers(b.chart.medications)
    for code, items in _by_code(b.chart.medications).items():
        last = items[-1]
        same_time = {m.requester for m in items if m.authored == last.authored}
        name = b.chart.practitioners.get(last.requester or "")
        if len(same_time) != 1 or not name:
            continue
        if len({m.requester for m in items}) < 2 and last.requester in usual:
            continue  # the patient's usual prescriber would answer it without looking at this drug
        out.append(b.make(category, ("last", code), "prescriber", FORMAT_PERSON, names([name], "person"),
                          [f"MedicationRequest/{last.id}", f"Practitioner/{last.requester}"], m=last.code.display))
    return out


def usual_prescribers(orders: Iterable[MedicationFact]) -> set[str | None]:
    """The patient's most frequent prescriber(s) over all orders (ties: all of them)."""
    counts: dict[str | None, int] = defaultdict(int)
    for order in orders:
        counts[order.requester] += 1
    top = max(counts.values(), default=0)
    return {who for who, n in counts.items() if n == top}


def medication_prescription_date(b: _Builder) -> list[Scenario]:
    category = "medication_prescription_date"
    out = []
    for code, items in _by_code(b.chart.medications).items():
        first, last = items[0], items[-1]
        out.append(b.make(category, ("last", code), "med_date_last", FORMAT_DATE,
                          on_date(day_of(last.authored).isoformat()), [f"MedicationRequest/{last.id}"],
                          m=last.code.display))
        if day_of(first.authored) != day_of(last.authored):
            out.append(b.make(category, ("first", code), "med_date_first", FORMAT_DATE,
                              on_date(day_of(first.authored).isoformat()), [f"MedicationRequest/{first.id}"],
                              m=last.code.display))
    return out


def medication_for_condition(b: _Builder) -> list[Scenario]:
    category = "medication_for_condition"
    by_id = {c.id: c for c in b.chart.conditions}
    treated: dict[str, dict[str, MedicationFact]] = defaultdict(dict)  # condition code -> med code -> order
    for med in sorted(b.chart.medications, key=lambda m: (m.authored, m.id)):
        for reason in med.reasons:
            if reason in by_id:
                treated[by_id[reason].code.code][med.code.code] = med
    out = []
    for code, meds in sorted(treated.items()):
        label = condition_label(b.population.conditions[code])
        refs = [f"MedicationRequest/{m.id}" for m in b.chart.medications
                if any(r in by_id and by_id[r].code.code == code for r in m.reasons)]
        first = min((m for m in b.chart.medications if f"MedicationRequest/{m.id}" in refs),
                    key=lambda m: (m.authored, m.id))
        # with the date of the first such order: the condition alone predicts the drugs (Synthea prescribes the
        # same drugs for the same condition), the date needs the chart
        answer = ExpectedAnswer(type="record", fields={
            "medications": names([m.code.display for m in meds.values()], "medication"),
            "first_ordered": on_date(day_of(first.authored).isoformat())})
        out.append(b.make(category, ("list", code), "meds_for_condition", FORMAT_MEDS_SINCE, answer, refs, c=label))
    # v2 asks no yes/no "was M prescribed for C": Synthea prescribes the same drug for the same condition, so no
    # drug/condition pair occurs with both answers and the pair itself would give the answer away (a chart-blind
    # prior scored it perfectly); the list form above needs the chart
    return out


def _day_values(chart: Chart, code: str) -> dict[date, list[ObservationFact]]:
    grouped: dict[date, list[ObservationFact]] = defaultdict(list)
    for fact in chart.values(code):
        grouped[day_of(fact.when)].append(fact)
    return dict(sorted(grouped.items()))


def observation_value(b: _Builder) -> list[Scenario]:
    category = "observation_value"
    out = []
    for code, info in LABS.items():
        days = _day_values(b.chart, code)
        if not days:
            continue
        every = [f.value for facts in days.values() for f in facts]
        words = {"label": info.label, "code": code}
        for day, facts in days.items():
            if len({f.value for f in facts}) != 1:
                continue
            built = number_answer(facts[0].value, info, every)
            if built is None:
                continue
            answer, decimals = built
            out.append(b.make(category, ("day", code, day.isoformat()), "obs_on_day", number_format(info, decimals),
                              answer, [f"Observation/{f.id}" for f in facts], day=day.isoformat(), **words))
        last_facts = [f for f in b.chart.values(code) if f.when == b.chart.values(code)[-1].when]
        if len({f.value for f in last_facts}) == 1:
            built = number_answer(last_facts[0].value, info, every)
            if built is not None:
                answer, decimals = built
                out.append(b.make(category, ("last", code), "obs_last", number_format(info, decimals), answer,
                                  [f"Observation/{f.id}" for f in last_facts], **words))
    return out


def _value_at(chart: Chart, code: str, anchor: date) -> list[ObservationFact] | None:
    """Facts of the latest day on or before the anchor day, if one value and within the window."""
    days = [(day, facts) for day, facts in _day_values(chart, code).items() if day <= anchor]
    if not days:
        return None
    day, facts = days[-1]
    if anchor - day > DEPENDENT_WINDOW or len({f.value for f in facts}) != 1:
        return None
    return facts


def observation_dependent(b: _Builder) -> list[Scenario]:
    category = "observation_dependent"
    anchors: list[tuple[str, str, str, date, str]] = []  # (kind, code, label, day, ref)
    for code, items in _first_conditions(b.chart).items():
        anchors.append(("condition", code, condition_label(items[0].code.display), day_of(items[0].onset),
                        f"Condition/{items[0].id}"))
    for code, items in _by_code(b.chart.medications).items():
        anchors.append(("medication", code, items[0].code.display, day_of(items[0].authored),
                        f"MedicationRequest/{items[0].id}"))
    out = []
    for kind, anchor_code, anchor_label, day, anchor_ref in anchors:
        for code in DEPENDENT_CODES:
            info = LABS[code]
            facts = _value_at(b.chart, code, day)
            if facts is None:
                continue
            every = [f.value for f in b.chart.values(code)]
            built = number_answer(facts[0].value, info, every)
            if built is None:
                continue
            answer, decimals = built
            words = {"label": info.label, "code": code, ("c" if kind == "condition" else "m"): anchor_label}
            out.append(b.make(category, (kind, anchor_code, code), f"obs_at_{kind}", number_format(info, decimals),
                              answer, [anchor_ref, *(f"Observation/{f.id}" for f in facts)], **words))
    return out


GENERATORS: dict[str, Callable[[_Builder], list[Scenario]]] = {
    "condition_existence": condition_existence,
    "condition_existence_transitive": condition_existence_transitive,
    "immunization_date": immunization_date,
    "medication_current": medication_current,
    "medication_existence": medication_existence,
    "medication_prescriber": medication_prescriber,
    "medication_prescription_date": medication_prescription_date,
    "medication_for_condition": medication_for_condition,
    "observation_value": observation_value,
    "observation_dependent": observation_dependent,
}


def generate_ehrqa(chart: Chart, population: Population, seed: int, test: bool = False) -> list[Scenario]:
    """Every EHRQA question this chart supports, in category order; every possible "no" of the boolean forms
    (``sampling.sample_ehrqa`` matches them to the positives entity by entity)."""
    builder = _Builder(chart, population, seed, test)
    out: list[Scenario] = []
    for category in CATEGORIES:
        out.extend(GENERATORS[category](builder))
    return out
