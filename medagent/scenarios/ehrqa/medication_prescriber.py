"""Who prescribed the most recent order of a drug."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import MedicationFact
from medagent.scenarios.ehrqa.common import FORMAT_PERSON, EhrqaBuilder
from medagent.scenarios.expect import names
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap

NAME = "medication_prescriber"

PHRASINGS: dict[str, list[str]] = {
    "prescriber": [
        "Who prescribed the patient's most recent order of {m}?",
        "Which practitioner wrote the latest prescription of {m} for this patient?",
        "Name the prescriber of the most recent {m} order.",
        "Who is the requester on the patient's latest order for {m}?",
        "Which clinician signed the newest prescription of {m} in this chart?",
        "The last time {m} was ordered for this patient, who ordered it?",
    ],
}


def usual_prescribers(orders: Iterable[MedicationFact]) -> set[str | None]:
    """The patient's most frequent prescriber(s) over all orders (ties: all of them)."""
    counts: dict[str | None, int] = defaultdict(int)
    for order in orders:
        counts[order.requester] += 1
    top = max(counts.values(), default=0)
    return {who for who, n in counts.items() if n == top}


def generate(given: ChartInput) -> list[Scenario]:
    b = EhrqaBuilder.of(given, PHRASINGS)
    category = NAME
    out = []
    usual = usual_prescribers(b.chart.medications)
    for code, items in b.chart.orders_by_code().items():
        last = items[-1]
        same_time = {m.requester for m in items if m.authored == last.authored}
        name = b.chart.practitioners.get(last.requester or "")
        if len(same_time) != 1 or not name:
            continue
        if len({m.requester for m in items}) < 2 and last.requester in usual:
            continue  # the patient's usual prescriber would answer it without looking at this drug
        out.append(
            b.make(
                category,
                ("last", code),
                "prescriber",
                FORMAT_PERSON,
                names([name], "person"),
                [f"MedicationRequest/{last.id}", f"Practitioner/{last.requester}"],
                m=last.code.display,
            )
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    last = await tools.reads.first_order(sc.patient, sc.meta["key"][1], "last")
    if last is None:
        return OracleAnswer("none", [])
    if not last.get("prescriber"):
        raise ToolGap(f"{last['ref']}: the row names no prescriber")
    return OracleAnswer(last["prescriber"], [last["ref"], *([last["requester"]] if last.get("requester") else [])])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="core",
        order=60,
        generate=generate,
        solve=solve,
        description="Who prescribed the most recent order of a drug.",
        phrasings=PHRASINGS,
    )
)
