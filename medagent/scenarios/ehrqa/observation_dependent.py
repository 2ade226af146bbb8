"""A lab value at the time of a first diagnosis or a first prescription."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import Chart, ObservationFact
from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import DEPENDENT_CODES, LABS
from medagent.scenarios.ehrqa.common import EhrqaBuilder, conditions_by_code, number_format, values_by_day
from medagent.scenarios.expect import number_answer
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import utc_day, value_answer
from medagent.vocabulary import condition_label

NAME = "observation_dependent"

PHRASINGS: dict[str, list[str]] = {
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
        "Just before or on the day {c} was first diagnosed, what was the patient's most recent {label} (LOINC {code})?",
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


DEPENDENT_WINDOW = timedelta(days=90)  # "at the time of": a value at most 90 days before the event


def _value_at(chart: Chart, code: str, anchor: date) -> list[ObservationFact] | None:
    """Facts of the latest day on or before the anchor day, if one value and within the window."""
    days = [(day, facts) for day, facts in values_by_day(chart, code).items() if day <= anchor]
    if not days:
        return None
    day, facts = days[-1]
    if anchor - day > DEPENDENT_WINDOW or len({f.value for f in facts}) != 1:
        return None
    return facts


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    anchors: list[tuple[str, str, str, date, str]] = []  # (kind, code, label, day, ref)
    for code, conditions in conditions_by_code(b.chart).items():
        anchors.append(
            (
                "condition",
                code,
                condition_label(conditions[0].code.display),
                day_of(conditions[0].onset),
                f"Condition/{conditions[0].id}",
            )
        )
    for code, orders in b.chart.orders_by_code().items():
        anchors.append(
            (
                "medication",
                code,
                orders[0].code.display,
                day_of(orders[0].authored),
                f"MedicationRequest/{orders[0].id}",
            )
        )
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
            words: dict[str, Any] = {
                "label": info.label,
                "code": code,
                ("c" if kind == "condition" else "m"): anchor_label,
            }
            out.append(
                b.make(
                    category,
                    (kind, anchor_code, code),
                    f"obs_at_{kind}",
                    number_format(info, decimals),
                    answer,
                    [anchor_ref, *(f"Observation/{f.id}" for f in facts)],
                    **words,
                )
            )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    kind, event_code, code = sc.meta["key"]
    if kind == "condition":
        event = await tools.reads.first_condition(sc.patient, event_code)
        when = event["onset"] if event else None
    else:
        event = await tools.reads.first_order(sc.patient, event_code)
        when = event["authored"] if event else None
    if event is None or when is None:
        return OracleAnswer("none", [])
    text, cited = value_answer(sc.question, await tools.reads.latest(sc.patient, code, until=utc_day(when)))
    return OracleAnswer(text, [event["ref"], *cited])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=100,
        generate=generate,
        solve=solve,
        description="A lab value at the time of a first diagnosis or a first prescription.",
        phrasings=PHRASINGS,
    )
)
