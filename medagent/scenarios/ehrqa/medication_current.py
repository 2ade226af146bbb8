"""Is a drug on the active medication list (yes/no), or the whole active list."""

from __future__ import annotations

from functools import partial

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.ehrqa.common import FORMAT_BOOLEAN, FORMAT_MEDICATIONS, EhrqaBuilder
from medagent.scenarios.expect import boolean, names
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import names_by_code, names_text, refs, yes_no

NAME = "medication_current"

PHRASINGS: dict[str, list[str]] = {
    "med_current": [
        "Is the patient currently taking {m}, that is, is there an active order for it?",
        "Does the patient have an active prescription for {m}?",
        "Is {m} on the patient's current medication list (an order with status active)?",
        "Right now, is there an active medication order for {m} in this chart?",
        "Is {m} an active prescription for this patient at present?",
        "As of now, does the medication list show {m} as active?",
    ],
    "med_current_list": [
        "List all medications with an active order for this patient.",
        "Which medications is the patient currently prescribed (orders with status active)?",
        "What is on the patient's active medication list?",
        "Name every medication this patient has an active order for right now.",
        "Give the patient's current medications, that is, all orders with status active.",
        "Which drugs does the chart show as actively prescribed for this patient today?",
    ],
}


def generate(given: ChartInput, min_listed: int = 0) -> list[Scenario]:
    """``min_listed``: the fewest active medications a chart must have to be asked for its active list (v2: 0, an
    empty list included; v3: 2, see ``V3``)."""
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    if b.chart.deceased is not None:
        return []  # "currently" has no meaning after death
    orders = b.chart.orders_by_code()
    active = {code: items for code, items in orders.items() if any(m.status == "active" for m in items)}
    out = []
    for code, items in active.items():
        refs = [f"MedicationRequest/{m.id}" for m in items if m.status == "active"]
        out.append(
            b.make(
                category, ("yes", code), "med_current", FORMAT_BOOLEAN, boolean(True), refs, m=items[-1].code.display
            )
        )
    # every drug without an active order: stopped ones are "hard" (the sampler prefers them), then the rest
    for code, display in b.population.medications.items():
        if code in active or not b.plausible(code):
            continue
        stopped = code in orders
        refs = [f"MedicationRequest/{m.id}" for m in orders.get(code, [])]
        out.append(
            b.make(
                category,
                ("no", code),
                "med_current",
                FORMAT_BOOLEAN,
                boolean(False),
                refs,
                hard=stopped,
                m=orders[code][-1].code.display if stopped else display,
            )
        )
    listed = [items[-1].code.display for items in active.values()]
    refs = [f"MedicationRequest/{m.id}" for items in active.values() for m in items if m.status == "active"]
    if orders and len(listed) >= min_listed:
        out.append(
            b.make(category, ("list",), "med_current_list", FORMAT_MEDICATIONS, names(listed, "medication"), refs)
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    form = sc.meta["form"]
    if form == "med_current":
        rows = await tools.reads.medications(sc.patient, code=sc.meta["key"][1], status="current")
        return OracleAnswer(yes_no(bool(rows)), refs(rows))
    if form == "med_current_list":
        rows = await tools.reads.medications(sc.patient, status="current")
        return OracleAnswer(names_text(list(names_by_code(rows).values())), refs(rows))
    raise ToolGap(f"{NAME} has no form {form!r}")


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=40,
        until=2,
        generate=generate,
        solve=solve,
        description="Is a drug on the active medication list (yes/no), or the whole active list.",
        phrasings=PHRASINGS,
    )
)
V3 = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=40,
        since=3,
        generate=partial(generate, min_listed=2),
        solve=solve,
        description="Is a drug on the active medication list (yes/no), or the whole active list. v3: the list is "
        "asked only of charts with two or more active orders, so that a prior guesses no list: in v2 a third of the "
        'test lists were empty ("none"), and among one-drug lists hydrochlorothiazide alone was a seventh.',
        phrasings=PHRASINGS,
    )
)
