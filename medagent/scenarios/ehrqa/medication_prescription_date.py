"""The date a drug was first or most recently prescribed."""

from __future__ import annotations

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import day_of
from medagent.scenarios.ehrqa.common import FORMAT_DATE, EhrqaBuilder
from medagent.scenarios.expect import on_date
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import utc_day

NAME = "medication_prescription_date"

PHRASINGS: dict[str, list[str]] = {
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
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    out = []
    for code, items in b.chart.orders_by_code().items():
        first, last = items[0], items[-1]
        out.append(
            b.make(
                category,
                ("last", code),
                "med_date_last",
                FORMAT_DATE,
                on_date(day_of(last.authored).isoformat()),
                [f"MedicationRequest/{last.id}"],
                m=last.code.display,
            )
        )
        if day_of(first.authored) != day_of(last.authored):
            out.append(
                b.make(
                    category,
                    ("first", code),
                    "med_date_first",
                    FORMAT_DATE,
                    on_date(day_of(first.authored).isoformat()),
                    [f"MedicationRequest/{first.id}"],
                    m=last.code.display,
                )
            )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    row = await tools.reads.first_order(sc.patient, sc.meta["key"][1], sc.meta["key"][0])
    if row is None:
        return OracleAnswer("none", [])
    return OracleAnswer(utc_day(row["authored"]), [row["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=70,
        generate=generate,
        solve=solve,
        description="The date a drug was first or most recently prescribed.",
        phrasings=PHRASINGS,
    )
)
