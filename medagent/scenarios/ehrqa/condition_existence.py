"""Has the patient ever been diagnosed with a condition (yes/no)?"""

from __future__ import annotations

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import implied_codes
from medagent.scenarios.ehrqa.common import FORMAT_BOOLEAN, EhrqaBuilder, conditions_by_code
from medagent.scenarios.expect import boolean
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import refs, yes_no
from medagent.vocabulary import condition_label

NAME = "condition_existence"

PHRASINGS: dict[str, list[str]] = {
    "condition": [
        "Has the patient ever been diagnosed with {c}?",
        "Does the patient's record contain a diagnosis of {c}?",
        "Is {c} documented as a condition anywhere in this patient's history?",
        "Has {c} ever been recorded on the patient's problem list?",
        "Looking through the whole chart, was {c} ever diagnosed in this patient?",
        "Is there a diagnosis of {c}, current or resolved, in this patient's chart?",
    ],
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    mine = conditions_by_code(b.chart)
    out = [
        b.make(
            category,
            ("yes", code),
            "condition",
            FORMAT_BOOLEAN,
            boolean(True),
            [f"Condition/{c.id}" for c in items],
            c=condition_label(items[0].code.display),
        )
        for code, items in mine.items()
    ]
    exclude = implied_codes(set(mine))
    # every code of the population the patient does not have (nor implies): the sampler matches them to the
    # positives code by code, so the code asked about says nothing about the answer
    for code, display in b.population.conditions.items():
        if code not in exclude and b.plausible(code):
            out.append(
                b.make(
                    category, ("no", code), "condition", FORMAT_BOOLEAN, boolean(False), [], c=condition_label(display)
                )
            )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    rows = await tools.reads.conditions(sc.patient, sc.meta["key"][1])
    return OracleAnswer(yes_no(bool(rows)), refs(rows))


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=10,
        generate=generate,
        solve=solve,
        description="Has the patient ever been diagnosed with a condition (yes/no)?",
        phrasings=PHRASINGS,
    )
)
