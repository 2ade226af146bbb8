"""The drugs ordered for a condition (by the orders' documented reason) and the first such order's date."""

from __future__ import annotations

import json
from collections import defaultdict

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import MedicationFact
from medagent.scenarios.clock import day_of
from medagent.scenarios.ehrqa.common import FORMAT_MEDS_SINCE, EhrqaBuilder
from medagent.scenarios.expect import names, on_date
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import names_by_code, names_text, oldest_first, refs, utc_day, yes_no
from medagent.vocabulary import condition_label

NAME = "medication_for_condition"

PHRASINGS: dict[str, list[str]] = {
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
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    by_id = {c.id: c for c in b.chart.conditions}
    treated: dict[str, dict[str, MedicationFact]] = defaultdict(dict)  # condition code -> med code -> order
    for med in sorted(b.chart.medications, key=lambda m: (m.authored, m.id)):
        for reason in med.reasons:
            if reason in by_id:
                treated[by_id[reason].code.code][med.code.code] = med
    out = []
    for code, meds in sorted(treated.items()):
        label = condition_label(b.population.conditions[code])
        refs = [
            f"MedicationRequest/{m.id}"
            for m in b.chart.medications
            if any(r in by_id and by_id[r].code.code == code for r in m.reasons)
        ]
        first = min(
            (m for m in b.chart.medications if f"MedicationRequest/{m.id}" in refs), key=lambda m: (m.authored, m.id)
        )
        # with the date of the first such order: the condition alone predicts the drugs (Synthea prescribes the
        # same drugs for the same condition), the date needs the chart
        answer = ExpectedAnswer(
            type="record",
            fields={
                "medications": names([m.code.display for m in meds.values()], "medication"),
                "first_ordered": on_date(day_of(first.authored).isoformat()),
            },
        )
        out.append(b.make(category, ("list", code), "meds_for_condition", FORMAT_MEDS_SINCE, answer, refs, c=label))
    # v2 asks no yes/no "was M prescribed for C": Synthea prescribes the same drug for the same condition, so no
    # drug/condition pair occurs with both answers and the pair itself would give the answer away (a chart-blind
    # prior scored it perfectly); the list form above needs the chart
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    form = sc.meta["form"]
    if form == "meds_for_condition":
        orders = await tools.reads.orders_for_condition(sc.patient, sc.meta["key"][1])
        listed = sorted(set(names_by_code(orders).values()))
        if '"first_ordered"' in sc.question:  # v2: the drugs and the date of the first of those orders
            first = utc_day(oldest_first(orders, "authored")[0]["authored"]) if orders else None
            return OracleAnswer(json.dumps({"medications": listed, "first_ordered": first}), refs(orders))
        return OracleAnswer(names_text(listed), refs(orders))
    if form == "med_for_condition":  # v1: was this drug ordered for this condition (yes/no)
        _, condition_code, medication_code = sc.meta["key"]
        orders = await tools.reads.orders_for_condition(sc.patient, condition_code, medication_code)
        return OracleAnswer(yes_no(bool(orders)), refs(orders))
    raise ToolGap(f"{NAME} has no form {form!r}")


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=80,
        generate=generate,
        solve=solve,
        description="The drugs ordered for a condition (by the orders' documented reason) and the first such order's date.",
        phrasings=PHRASINGS,
    )
)
