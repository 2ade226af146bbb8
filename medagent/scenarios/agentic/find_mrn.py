"""Find a patient's MRN by name and birth date, or say the patient is not found."""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import TRIES, AgenticBuilder
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.expect import names
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import stated

NAME = "find_mrn"
PHRASINGS = [
    "What is the MRN of the patient named {name}, born {born}?",
    "Find the medical record number of {name} (date of birth {born}).",
    "Look up {name}, born on {born}, and tell me the patient's MRN.",
    "I need the MRN for {name}, DOB {born}.",
    "Which MRN belongs to the patient {name} with birth date {born}?",
    "Can you pull up the chart of {name} (born {born}) and give me the MRN?",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    chart = b.chart
    now = b.clock(b.span[1])
    rng = b.rng(category)
    answer_format = (
        "Answer with the MRN only, or 'Patient not found' if no patient matches both the name and the birth date."
    )
    context = "The MRN is the patient identifier of type MR (Medical Record Number)."
    born = chart.birth_date.isoformat()
    text, phrasing = b.say(category, ("found",), name=chart.name, born=born)
    out = [
        b.make(
            category,
            ("found",),
            now=now,
            variant="found",
            instruction=text,
            context=context,
            answer_format=answer_format,
            answer=names([chart.mrn], "identifier"),
            provenance=[chart.reference],
            meta={"phrasing": phrasing, "name": chart.name, "born": born},
        )
    ]
    for _ in range(TRIES):
        shift = rng.choice([1, 2, 3, 7, 30, 365, 366 * 2]) * rng.choice([-1, 1])
        wrong = chart.birth_date + timedelta(days=shift)
        if (chart.given, chart.family, wrong.isoformat()) not in b.population.names_and_births:
            text, phrasing = b.say(category, ("not-found",), name=chart.name, born=wrong.isoformat())
            out.append(
                b.make(
                    category,
                    ("not-found",),
                    now=now,
                    variant="not-found",
                    instruction=text,
                    context=context,
                    answer_format=answer_format,
                    answer=names([], "identifier"),
                    meta={
                        "true_birth_date": chart.birth_date.isoformat(),
                        "phrasing": phrasing,
                        "name": chart.name,
                        "born": wrong.isoformat(),
                    },
                )
            )
            break
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    name = stated(sc, "name", r"patient named (.+?), born \d{4}-\d{2}-\d{2}\?")
    born = stated(sc, "born", r", born (\d{4}-\d{2}-\d{2})\?")
    known = await tools.reads.patient_in_context(name, born)
    if known is not None:
        return OracleAnswer(known["mrn"], [known["ref"]])
    result = await tools.call("find_patients", name=name, birth_date=born)
    rows = [row for row in result.rows if row.get("name") == name and row.get("birthDate") == born and row.get("mrn")]
    if len(rows) != 1:
        return OracleAnswer("Patient not found", [])
    return OracleAnswer(rows[0]["mrn"], [rows[0]["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=110,
        generate=generate,
        solve=solve,
        description="Find a patient's MRN by name and birth date, or say the patient is not found.",
        phrasings={NAME: PHRASINGS},
        variant_shares={"found": 3, "not-found": 1},
    )
)
