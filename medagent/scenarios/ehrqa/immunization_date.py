"""The date of the first or the most recent dose of a vaccine."""

from __future__ import annotations

from collections import defaultdict

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import day_of
from medagent.scenarios.ehrqa.common import FORMAT_DATE, EhrqaBuilder
from medagent.scenarios.expect import on_date
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import oldest_first, utc_day

NAME = "immunization_date"

PHRASINGS: dict[str, list[str]] = {
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
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    grouped: dict[str, list] = defaultdict(list)
    for shot in b.chart.immunizations:
        grouped[shot.code.code].append(shot)
    out = []
    for code, shots in sorted(grouped.items()):
        shots.sort(key=lambda s: (s.when, s.id))
        words = {"v": shots[0].code.display, "code": code}
        last = shots[-1]
        out.append(
            b.make(
                category,
                ("last", code),
                "vaccine_last",
                FORMAT_DATE,
                on_date(day_of(last.when).isoformat()),
                [f"Immunization/{last.id}"],
                **words,
            )
        )
        if day_of(shots[0].when) != day_of(last.when):
            out.append(
                b.make(
                    category,
                    ("first", code),
                    "vaccine_first",
                    FORMAT_DATE,
                    on_date(day_of(shots[0].when).isoformat()),
                    [f"Immunization/{shots[0].id}"],
                    **words,
                )
            )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    which, cvx = sc.meta["key"][0], sc.meta["key"][1]
    rows = oldest_first(await tools.reads.immunizations(sc.patient, cvx), "date")
    if not rows:
        return OracleAnswer("none", [])
    row = rows[0] if which == "first" else rows[-1]
    return OracleAnswer(utc_day(row["date"]), [row["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=30,
        generate=generate,
        solve=solve,
        description="The date of the first or the most recent dose of a vaccine.",
        phrasings=PHRASINGS,
    )
)
