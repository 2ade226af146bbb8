"""Was a drug ever prescribed (yes/no)?"""

from __future__ import annotations

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.ehrqa.common import FORMAT_BOOLEAN, EhrqaBuilder
from medagent.scenarios.expect import boolean
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import refs, yes_no

NAME = "medication_existence"

PHRASINGS: dict[str, list[str]] = {
    "med_ever": [
        "Has the patient ever been prescribed {m}?",
        "Is there any prescription of {m} in the patient's record, past or present?",
        "Was {m} ever ordered for this patient?",
        "Does the chart show any order for {m}, at any time?",
        "Has this patient had {m} prescribed at some point?",
        "At any time in this record, was a prescription for {m} written?",
    ],
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    orders = b.chart.orders_by_code()
    out = [
        b.make(
            category,
            ("yes", code),
            "med_ever",
            FORMAT_BOOLEAN,
            boolean(True),
            [f"MedicationRequest/{m.id}" for m in items],
            m=items[-1].code.display,
        )
        for code, items in orders.items()
    ]
    for code, display in b.population.medications.items():
        if code not in orders and b.plausible(code):
            out.append(b.make(category, ("no", code), "med_ever", FORMAT_BOOLEAN, boolean(False), [], m=display))
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    rows = await tools.reads.ever_ordered(sc.patient, sc.meta["key"][1])
    return OracleAnswer(yes_no(bool(rows)), refs(rows))


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=50,
        generate=generate,
        solve=solve,
        description="Was a drug ever prescribed (yes/no)?",
        phrasings=PHRASINGS,
    )
)
