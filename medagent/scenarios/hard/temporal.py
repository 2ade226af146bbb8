"""Multi-hop temporal questions: a lab value located by the dates of a diagnosis (another resource type).

- ``window_extreme``: the highest / lowest value of a lab from the day a condition began to the day it
  resolved (or now, if still active), over at least 5 results: find the condition's dates, then search
  and scan the lab's results in that window.
- ``first_after``: the first result of a lab on or after the day of a first diagnosis, when the patient
  also has earlier results of that lab (so "the latest" or "the first ever" are both wrong), among at
  least 5 results of it.

Only clinically paired condition -> lab questions are asked (blood pressure since hypertension, HbA1c
since prediabetes ...), only about conditions recorded once (one onset, no ambiguity), and only when every
other value of the lab in the chart lies more than twice the tolerance away (near misses fail).
"""

from __future__ import annotations

from datetime import date

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import ConditionFact, ObservationFact
from medagent.scenarios.chart_reads import conditions_oldest_first, latest_observation, observations
from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import LABS, SNOMED
from medagent.scenarios.expect import number_answer, rounding_phrase
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, quantity_text, stated_decimals, utc_day

NAME = "temporal_window"
MIN_ROWS = 5
PER_PATIENT = 6

# condition SNOMED code -> the labs/vitals a clinician follows for it (codes present in the data)
FOLLOWED_BY: dict[str, list[str]] = {
    "38341003": ["8480-6", "8462-4"],  # hypertension -> systolic, diastolic
    "15777000": ["4548-4", "2339-0", "39156-5"],  # prediabetes -> HbA1c, glucose, BMI
    "44054006": ["4548-4", "2339-0", "38483-4"],  # diabetes -> HbA1c, glucose, creatinine
    "162864005": ["39156-5", "29463-7"],  # obesity -> BMI, weight
    "271737000": ["718-7"],  # anemia -> hemoglobin
    "55822004": ["18262-6", "2093-3", "2571-8"],  # hyperlipidemia -> LDL, total cholesterol, triglycerides
    "302870006": ["2571-8", "2093-3"],  # hypertriglyceridemia -> triglycerides
    "237602007": ["2571-8", "2085-9", "39156-5"],  # metabolic syndrome -> triglycerides, HDL, BMI
    "53741008": ["18262-6", "8480-6"],  # coronary heart disease -> LDL, systolic
    "88805009": ["29463-7", "8480-6"],  # chronic congestive heart failure -> weight, systolic
}

EXTREME_PHRASINGS = [
    "What was the {which} {lab} (LOINC {loinc}) recorded from the day {condition} (SNOMED {snomed}) was diagnosed "
    "until {until}?",
    "Over the period from the onset of the patient's {condition} (SNOMED {snomed}) until {until}, what was the "
    "{which} {lab} (LOINC {loinc}) on record?",
    "Look at every {lab} result (LOINC {loinc}) dated from the diagnosis of {condition} (SNOMED {snomed}) to "
    "{until}. Which value was the {which}?",
    "Since {condition} (SNOMED {snomed}) was first documented, and until {until}, what is the {which} {lab} "
    "(LOINC {loinc}) value in the chart?",
    "Find the {which} {lab} (LOINC {loinc}) measured while the patient had {condition} (SNOMED {snomed}), i.e. from "
    "its onset day until {until}.",
    "Between the first documentation of {condition} (SNOMED {snomed}) and {until}, both days included, report the "
    "{which} value of {lab} (LOINC {loinc}).",
]
FIRST_PHRASINGS = [
    "What was the first {lab} (LOINC {loinc}) result on or after the day the patient was diagnosed with {condition} "
    "(SNOMED {snomed})?",
    "After {condition} (SNOMED {snomed}) was diagnosed, what was the patient's first {lab} value (LOINC {loinc}), "
    "counting a result on the day of diagnosis?",
    "Which {lab} (LOINC {loinc}) value was recorded first from the day of the {condition} (SNOMED {snomed}) "
    "diagnosis onwards?",
    "Starting on the onset day of {condition} (SNOMED {snomed}), what is the earliest {lab} result (LOINC {loinc}) "
    "in the record?",
    "Report the first {lab} (LOINC {loinc}) measured on or after the diagnosis date of {condition} (SNOMED {snomed}).",
]


def _window(chart_values: list[ObservationFact], start: date, end: date) -> list[ObservationFact]:
    return [f for f in chart_values if start <= day_of(f.when) <= end]


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    now = b.end
    counts: dict[str, int] = {}
    for condition in b.chart.conditions:
        counts[condition.code.code] = counts.get(condition.code.code, 0) + 1
    candidates: list[tuple[str, ConditionFact, str]] = []
    for condition in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id)):
        if counts[condition.code.code] != 1 or condition.code.code not in FOLLOWED_BY or condition.onset > now:
            continue
        for code in FOLLOWED_BY[condition.code.code]:
            for form in ("window_extreme", "first_after"):
                candidates.append((form, condition, code))
    rng = b.rng(NAME)
    rng.shuffle(candidates)
    out: list[Scenario] = []
    for form, condition, code in candidates:
        if len(out) >= PER_PATIENT:
            break
        made = (
            _extreme(b, condition, code, now, rng.choice(["highest", "lowest"]))
            if form == "window_extreme"
            else _first_after(b, condition, code, now)
        )
        if made is not None and all(s.id != made.id for s in out):
            out.append(made)
    return out


def _extreme(b: HardBuilder, condition: ConditionFact, code: str, now, which: str) -> Scenario | None:  # type: ignore[no-untyped-def]
    info = LABS[code]
    facts = [f for f in b.chart.values(code) if f.when <= now]
    end = condition.abatement if condition.abatement is not None and condition.abatement <= now else now
    start_day, end_day = day_of(condition.onset), day_of(end)
    inside = _window(facts, start_day, end_day)
    if len(inside) < MIN_ROWS:
        return None
    pick = max(inside, key=lambda f: f.value) if which == "highest" else min(inside, key=lambda f: f.value)
    made = number_answer(pick.value, info, [f.value for f in b.chart.values(code)])
    if made is None:
        return None
    answer, decimals = made
    until = "the day it resolved" if end is not now else "now"
    key = ("window_extreme", condition.id, code, which)
    index, template = b.phrasing(NAME, key, EXTREME_PHRASINGS)
    question = template.format(
        which=which,
        lab=info.label,
        loinc=code,
        condition=condition.code.display,
        snomed=condition.code.code,
        until=until,
    )
    fmt = f"Answer with the value in {info.unit}, {rounding_phrase(decimals)}, or 'none' if there is no such result."
    same = [f for f in inside if f.value == pick.value]
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format=fmt,
        answer=answer,
        phrasing=index,
        provenance=[f"Condition/{condition.id}", *(f"Observation/{f.id}" for f in same)],
        meta={
            "form": "window_extreme",
            "condition": [SNOMED, condition.code.code],
            "loinc": code,
            "which": which,
            "rows": len(inside),
        },
    )


def _first_after(b: HardBuilder, condition: ConditionFact, code: str, now) -> Scenario | None:  # type: ignore[no-untyped-def]
    info = LABS[code]
    facts = [f for f in b.chart.values(code) if f.when <= now]
    onset_day = day_of(condition.onset)
    before = [f for f in facts if day_of(f.when) < onset_day]
    after = [f for f in facts if day_of(f.when) >= onset_day]
    if not before or not after:
        return None  # "the first ever" would answer it
    if len(facts) < MIN_ROWS:
        return None  # one lookup: the hard tier locates the value among at least MIN_ROWS results
    first_day = day_of(after[0].when)
    if len([f for f in after if day_of(f.when) == first_day]) != 1:
        return None  # several results on the first day: "first" would hinge on the clock time
    first = after[0]
    made = number_answer(first.value, info, [f.value for f in b.chart.values(code)])
    if made is None:
        return None
    answer, decimals = made
    key = ("first_after", condition.id, code)
    index, template = b.phrasing(NAME, key, FIRST_PHRASINGS)
    question = template.format(lab=info.label, loinc=code, condition=condition.code.display, snomed=condition.code.code)
    fmt = f"Answer with the value in {info.unit}, {rounding_phrase(decimals)}, or 'none' if there is no such result."
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format=fmt,
        answer=answer,
        phrasing=index,
        provenance=[f"Condition/{condition.id}", f"Observation/{first.id}"],
        meta={"form": "first_after", "condition": [SNOMED, condition.code.code], "loinc": code, "rows": len(facts)},
    )


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The condition's dates (one Condition of the code), then the lab's results inside them."""
    _, snomed = sc.meta["condition"]
    code = sc.meta["loinc"]
    conditions = await conditions_oldest_first(tools, sc.patient, snomed)
    if len(conditions) != 1:
        raise ToolGap(f"expected one {snomed} condition, found {len(conditions)}")
    condition = conditions[0]
    since = utc_day(condition["onset"])
    decimals = stated_decimals(sc.question)
    if sc.meta["form"] == "first_after":
        row = await latest_observation(tools, sc.patient, code, since=since, order="oldest")
        if row is None:
            return OracleAnswer("none", [condition["ref"]])
        return OracleAnswer(quantity_text(numeric(row), row.get("unit"), decimals), [condition["ref"], row["ref"]])
    until = utc_day(condition["abatement"]) if condition.get("abatement") else None
    rows = await observations(tools, sc.patient, code, since=since, until=until)
    if not rows:
        return OracleAnswer("none", [condition["ref"]])
    pick = max if sc.meta["which"] == "highest" else min
    best = pick(rows, key=numeric)
    return OracleAnswer(quantity_text(numeric(best), best.get("unit"), decimals), [condition["ref"], best["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=10,
        until=2,
        generate=generate,
        solve=solve,
        description="A lab value located by the dates of a diagnosis: the extreme inside the condition's span, or the "
        "first result after its onset.",
        phrasings={"window_extreme": EXTREME_PHRASINGS, "first_after": FIRST_PHRASINGS},
    )
)
