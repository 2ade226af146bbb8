"""Stop every active order of a named drug, or change nothing when none is active."""

from __future__ import annotations

from medagent.scenarios.agentic.common import AgenticBuilder
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import every_row
from medagent.scenarios.clock import day_of
from medagent.scenarios.models import ExpectedAnswer, Scenario, WriteSpec
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import oldest_first, refs, stated, utc_day

NAME = "discontinue_medication"
PHRASINGS = [
    "The care team has decided to stop {drug} for {patient}. If the patient has an active order for {drug}, "
    "discontinue it by setting its status to stopped; if there is no active order, change nothing.",
    "Please discontinue {drug} for {patient}: set every active order for it to status stopped. If there is no "
    "active order for {drug}, change nothing.",
    "Stop {drug} for {patient}: any active order for it should get status stopped; with no active order, change "
    "nothing.",
    "The clinician wants {patient} off {drug}. Set its active order(s) to stopped; if none is active, leave the "
    "chart unchanged.",
    "Discontinue the active order(s) for {drug} of {patient} by setting the status to stopped; if no order for "
    "{drug} is active, change nothing.",
    "We are taking {patient} off {drug}. If an order for {drug} is still active, mark it stopped; if not, do not "
    "change anything.",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    if b.chart.deceased is not None:
        return []
    rng = b.rng(category)
    orders = b.chart.orders_by_code()
    active = sorted(code for code, items in orders.items() if any(m.status == "active" for m in items))
    stopped = sorted(code for code in orders if code not in active)
    now = b.clock(b.span[1])
    out = []
    for branch, pool in (("act", active), ("no-action", stopped)):
        if not pool:
            continue
        code = rng.choice(pool)
        items = orders[code]
        display = items[-1].code.display
        instruction, phrasing = b.say(category, (branch,), drug=display)
        context = "Update the existing MedicationRequest; do not create a new one or delete it."
        writes = (
            [
                WriteSpec(
                    name=f"stop MedicationRequest/{m.id}",
                    resource_type="MedicationRequest",
                    action="update",
                    target=f"MedicationRequest/{m.id}",
                    status=["stopped", "cancelled"],
                    unchanged=["medicationCodeableConcept", "subject"],
                )
                for m in items
                if m.status == "active"
            ]
            if branch == "act"
            else []
        )
        out.append(
            b.make(
                category,
                (branch,),
                now=now,
                branch=branch,
                instruction=instruction,
                context=context,
                answer_format=f"Answer with the date (YYYY-MM-DD) on which the most recent order for "
                f"{display} was written.",
                answer=ExpectedAnswer(type="date", value=day_of(items[-1].authored).isoformat()),
                writes=writes,
                provenance=[f"MedicationRequest/{m.id}" for m in items],
                meta={"phrasing": phrasing, "drug": display},
            )
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    drug = stated(sc, "drug", r"decided to stop (.+?) for the patient with MRN")
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    words = drug if len(drug) <= 100 else drug[:100].rsplit(" ", 1)[0]  # the tools take at most 100 characters
    named = await every_row(tools, "search_medications", patient=patient, text=words)
    codes = sorted({row["code"] for row in named if row.get("display") == drug and row.get("code")})
    if not codes:
        raise ToolGap(f"no order of {drug!r} found for Patient/{patient}")
    orders = oldest_first(await tools.reads.medications(patient, code=",".join(codes)), "authored")
    for row in orders:
        if row.get("status") == "active" or tools.act_on_every_branch:
            await tools.call(
                "discontinue_medication", medication_request=row["ref"], reason="care team decided to stop it"
            )
    return OracleAnswer(utc_day(orders[-1]["authored"]), refs(orders))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=240,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Stop every active order of a named drug, or change nothing when none is active.",
        phrasings={NAME: PHRASINGS},
    )
)
