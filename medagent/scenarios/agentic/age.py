"""A patient's age in completed years at now."""

from __future__ import annotations

from datetime import date

from medagent.scenarios.agentic.common import TRIES, AgenticBuilder, pick_time
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap

NAME = "age"
PHRASINGS = [
    "What is the age of {patient}?",
    "How old is {patient}?",
    "Tell me the current age of {patient}.",
    "What age is {patient} today?",
    "Give the age in years of {patient}.",
    "For a form I need the age of {patient}: how old is the patient now?",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    start, end = b.span
    born = b.chart.birth_date
    for _ in range(TRIES):
        now = b.clock(pick_time(rng, start, end))
        if not b.inside(now):
            continue
        today = day_of(now)
        birthday = date(today.year, born.month, 28 if (born.month, born.day) == (2, 29) else born.day)
        if abs((today - birthday).days) <= 2 or today < born:
            continue  # a clock within two days of a birthday invites off-by-one time-zone disputes
        years = whole_years_between(born, today)
        answer = ExpectedAnswer(
            type="number", value=float(years), unit="years", unit_factors={"year": 1.0, "yrs": 1.0, "yr": 1.0, "y": 1.0}
        )
        text, phrasing = b.say(category)
        return [
            b.make(
                category,
                (),
                now=now,
                instruction=text,
                context="Age is in completed years on today's date.",
                answer_format="Answer with the age in whole years (rounded down) as a single integer.",
                answer=answer,
                provenance=[b.chart.reference],
                meta={"phrasing": phrasing},
            )
        ]
    return []


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, row = await tools.reads.demographics(sc.meta["mrn"])
    if row.get("age") is None:
        raise ToolGap(f"no age for Patient/{patient} at now in {row.get('ref')}")
    return OracleAnswer(str(row["age"]), [row["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=120,
        generate=generate,
        solve=solve,
        description="A patient's age in completed years at now.",
        phrasings={NAME: PHRASINGS},
    )
)
