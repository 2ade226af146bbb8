"""Compare the medications the patient reports taking with the active orders."""

from __future__ import annotations

import json

from medagent.scenarios.agentic.common import AgenticBuilder
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.expect import names
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import names_by_code, refs, task_text

NAME = "medication_reconciliation"
PHRASINGS = [
    "The patient with MRN {mrn} is at a visit for medication reconciliation and reports currently taking: "
    "{listed}. Compare this list with the patient's active medication orders (MedicationRequest with status "
    "active).",
    "Medication reconciliation for the patient with MRN {mrn}: the patient says they currently take: {listed}. "
    "Compare what they report with their active medication orders (MedicationRequest with status active).",
    "At today's visit the patient with MRN {mrn} lists these current medications: {listed}. Reconcile this list "
    "against the active medication orders (MedicationRequest with status active).",
    "Reconcile the medications of the patient with MRN {mrn}. Reported by the patient as currently taken: "
    "{listed}. Compare with the active orders (MedicationRequest with status active).",
    "The patient with MRN {mrn} reports taking: {listed}. Check this against the chart's active medication "
    "orders (MedicationRequest with status active).",
    "Here is what the patient with MRN {mrn} told me they take now: {listed}. How does that compare with their "
    "active medication orders (MedicationRequest with status active)?",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    if b.chart.deceased is not None:
        return []
    rng = b.rng(category)
    orders = b.chart.orders_by_code()
    active = {
        code: items[-1].code.display for code, items in orders.items() if any(m.status == "active" for m in items)
    }
    if not active:
        return []
    now = b.clock(b.span[1])
    reported = dict(active)
    omitted: list[str] = []
    if len(active) >= 2 and rng.random() < 0.7:
        code = rng.choice(sorted(active))
        omitted.append(active[code])
        del reported[code]
    extra: list[str] = []
    if rng.random() < 0.7:
        stopped = [items[-1].code.display for code, items in orders.items() if code not in active]
        pool = stopped or [d for c, d in b.population.medications.items() if c not in orders]
        extra.append(rng.choice(sorted(pool)))
    listed = sorted([*reported.values(), *extra], key=lambda s: rng.random())
    instruction, phrasing = b.say(category, listed="; ".join(listed))
    answer_format = (
        'Answer as JSON: {"not_on_chart": [reported medications without an active order], '
        '"not_reported": [medications with an active order that the patient did not report]}, with '
        "names exactly as written above or in the chart; use [] for an empty list."
    )
    answer = ExpectedAnswer(
        type="record", fields={"not_on_chart": names(extra, "medication"), "not_reported": names(omitted, "medication")}
    )
    refs = [f"MedicationRequest/{m.id}" for code in active for m in orders[code] if m.status == "active"]
    kind = "discrepancy" if (extra or omitted) else "match"  # not balanced: most visits have a discrepancy
    return [
        b.make(
            category,
            (),
            now=now,
            instruction=instruction,
            context="",
            answer_format=answer_format,
            answer=answer,
            provenance=refs,
            meta={"kind": kind, "phrasing": phrasing, "reported": listed},
        )
    ]


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    reported = (
        sc.meta["reported"]
        if "reported" in sc.meta
        else [
            name.strip()
            for name in task_text(r"reports currently taking: (.+?)\. Compare this list", sc.question, sc.id).split(";")
        ]
    )
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    rows = await tools.reads.medications(patient, status="current")
    active = list(names_by_code(rows).values())

    def key(name: str) -> str:
        return " ".join(name.lower().split())

    on_chart = {key(name) for name in active}
    said = {key(name) for name in reported}
    answer = {
        "not_on_chart": [name for name in reported if key(name) not in on_chart],
        "not_reported": sorted({name for name in active if key(name) not in said}),
    }
    return OracleAnswer(json.dumps(answer), refs(rows))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=210,
        generate=generate,
        solve=solve,
        description="Compare the medications the patient reports taking with the active orders.",
        phrasings={NAME: PHRASINGS},
    )
)
