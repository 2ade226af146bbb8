"""Any form of a condition group, or a condition treated by a medication order (yes/no)."""

from __future__ import annotations

from collections import defaultdict

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import CONDITION_GROUPS, implied_codes
from medagent.scenarios.ehrqa.common import FORMAT_BOOLEAN, EhrqaBuilder, conditions_by_code
from medagent.scenarios.expect import boolean
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import refs, yes_no
from medagent.vocabulary import condition_label

NAME = "condition_existence_transitive"

PHRASINGS: dict[str, list[str]] = {
    "group": [
        "Has the patient ever been diagnosed with any form of {g}?",
        "Does the patient's history include any condition that is a kind of {g}?",
        "Has the patient ever had {g} of any type? Count any diagnosis that is a form of it.",
        "Is any kind of {g} documented among the patient's diagnoses, past or present?",
        "Counting every subtype, does this patient's problem list show {g} at any time?",
        "Would a search of this chart for {g}, including its more specific diagnoses, find anything?",
    ],
    "treated": [
        "Has the patient ever been prescribed a medication whose documented reason is {c}?",
        "Is there any medication order in the patient's record with {c} as its documented reason?",
        "Was the patient's {c} ever treated with a prescribed medication (an order whose documented reason is {c})?",
        "The patient has a diagnosis of {c}. Does any medication order document {c} as its reason?",
        "Has a drug ever been ordered for this patient's {c}, judging by the orders' documented reasons?",
        "Among the patient's prescriptions, is {c} named as the reason for any of them?",
    ],
}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    mine = conditions_by_code(b.chart)
    codes = implied_codes(set(mine))
    out: list[Scenario] = []
    present_groups = {code for group in CONDITION_GROUPS for code in group.members if code in b.population.conditions}
    yes_groups, no_groups = [], []
    for group in CONDITION_GROUPS:
        members = group.members & set(mine)
        if members:
            yes_groups.append((group, members))
        elif (
            not (group.ambiguous & codes)
            and not (group.members & codes)
            and group.members & present_groups
            and b.plausible(group.members)
        ):
            no_groups.append(group)
    for group, members in yes_groups:
        refs = [f"Condition/{c.id}" for code in members for c in mine[code]]
        out.append(
            b.make(category, ("group-yes", group.key), "group", FORMAT_BOOLEAN, boolean(True), refs, g=group.label)
        )
    for group in no_groups:
        out.append(
            b.make(category, ("group-no", group.key), "group", FORMAT_BOOLEAN, boolean(False), [], g=group.label)
        )
    # via a medication's reason: the condition exists *and* was treated
    by_id = {c.id: c for c in b.chart.conditions}
    treated: dict[str, list[str]] = defaultdict(list)
    for med in b.chart.medications:
        for reason in med.reasons:
            if reason in by_id:
                treated[by_id[reason].code.code].append(f"MedicationRequest/{med.id}")
                treated[by_id[reason].code.code].append(f"Condition/{reason}")
    for code, refs in sorted(treated.items()):
        out.append(
            b.make(
                category,
                ("treated-yes", code),
                "treated",
                FORMAT_BOOLEAN,
                boolean(True),
                refs,
                c=condition_label(b.population.treated_conditions[code]),
            )
        )
    # "no" only about a condition the patient has (so "does X exist" does not answer it) that some patient's
    # order documents as its reason, and that no order of this patient documents (nor one it implies)
    exclude = implied_codes(set(treated))
    for code, items in mine.items():
        if code in exclude or code not in b.population.treated_conditions:
            continue
        out.append(
            b.make(
                category,
                ("treated-no", code),
                "treated",
                FORMAT_BOOLEAN,
                boolean(False),
                [f"Condition/{c.id}" for c in items],
                c=condition_label(items[0].code.display),
            )
        )
    return out


GROUPS = {group.key: group for group in CONDITION_GROUPS}


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    form = sc.meta["form"]
    if form == "group":  # the question's parent concept and its member codes
        group = GROUPS[sc.meta["key"][1]]
        rows = await tools.reads.conditions(sc.patient, ",".join(sorted(group.members)))
        return OracleAnswer(yes_no(bool(rows)), refs(rows))
    if form == "treated":
        orders = await tools.reads.orders_for_condition(sc.patient, sc.meta["key"][1])
        return OracleAnswer(yes_no(bool(orders)), refs(orders))
    raise ToolGap(f"{NAME} has no form {form!r}")


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=20,
        generate=generate,
        solve=solve,
        description="Any form of a condition group, or a condition treated by a medication order (yes/no).",
        phrasings=PHRASINGS,
    )
)
