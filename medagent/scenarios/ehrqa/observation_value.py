"""A lab or vital value: the most recent, or the one measured on a given day."""

from __future__ import annotations

from typing import Any

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import LABS
from medagent.scenarios.ehrqa.common import EhrqaBuilder, number_format, values_by_day
from medagent.scenarios.expect import number_answer
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import value_answer

NAME = "observation_value"

PHRASINGS: dict[str, list[str]] = {
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
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    out = []
    for code, info in LABS.items():
        days = values_by_day(b.chart, code)
        if not days:
            continue
        every = [f.value for facts in days.values() for f in facts]
        words: dict[str, Any] = {"label": info.label, "code": code}
        for day, facts in days.items():
            if len({f.value for f in facts}) != 1:
                continue
            built = number_answer(facts[0].value, info, every)
            if built is None:
                continue
            answer, decimals = built
            out.append(
                b.make(
                    category,
                    ("day", code, day.isoformat()),
                    "obs_on_day",
                    number_format(info, decimals),
                    answer,
                    [f"Observation/{f.id}" for f in facts],
                    day=day.isoformat(),
                    **words,
                )
            )
        last_facts = [f for f in b.chart.values(code) if f.when == b.chart.values(code)[-1].when]
        if len({f.value for f in last_facts}) == 1:
            built = number_answer(last_facts[0].value, info, every)
            if built is not None:
                answer, decimals = built
                out.append(
                    b.make(
                        category,
                        ("last", code),
                        "obs_last",
                        number_format(info, decimals),
                        answer,
                        [f"Observation/{f.id}" for f in last_facts],
                        **words,
                    )
                )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    form = sc.meta["form"]
    if form == "obs_last":
        return value_answer(sc.question, await tools.reads.latest(sc.patient, sc.meta["key"][1]))
    if form == "obs_on_day":
        _, code, day = sc.meta["key"]
        return value_answer(sc.question, await tools.reads.latest(sc.patient, code, since=day, until=day))
    raise ToolGap(f"{NAME} has no form {form!r}")


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=90,
        generate=generate,
        solve=solve,
        description="A lab or vital value: the most recent, or the one measured on a given day.",
        phrasings=PHRASINGS,
    )
)
