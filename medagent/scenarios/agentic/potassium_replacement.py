"""Check the latest potassium; replace it orally when low and order a follow-up serum potassium."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial

from medagent.scenarios.agentic.common import (
    EXACT,
    FUTURE_NOTE,
    AgenticBuilder,
    potassium_followup,
    potassium_order,
    unique_at,
)
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.codes import (
    LABS,
    NDC_POTASSIUM_ORAL,
    POTASSIUM,
    POTASSIUM_DISPLAY,
    POTASSIUM_SERUM_ORDER,
    POTASSIUM_THRESHOLD,
)
from medagent.scenarios.expect import number_answer
from medagent.scenarios.fixtures import lab_observation
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, value_answer

NAME = "potassium_replacement"
PHRASINGS = [
    "Check the most recent potassium level of {patient}. If it is low, order replacement potassium according to "
    "the dosing instructions, and pair this order with a serum potassium lab to be collected at 08:00 the next "
    "morning. If it is not low, order nothing.",
    "Look at the latest potassium result of {patient}. When it is low, order oral potassium replacement per the "
    "dosing instructions together with a serum potassium lab for 08:00 the next morning; when it is not low, "
    "order nothing.",
    "Does {patient} need potassium replacement? If the most recent potassium is low, order replacement as "
    "instructed and a serum potassium lab at 08:00 the next morning; otherwise order nothing.",
    "Review the newest potassium level of {patient}: if low, place an oral potassium replacement order "
    "following the dosing instructions plus a serum potassium lab to be drawn at 08:00 the next morning. If it "
    "is not low, place no orders.",
    "For {patient}, replace potassium if the most recent level is low (dose per the instructions) and order a "
    "repeat serum potassium for 08:00 the next morning; order nothing if the level is not low.",
    "Potassium check for {patient}: a low latest potassium means an oral replacement order per the dosing "
    "instructions and a serum potassium lab at 08:00 the following morning; a level that is not low means no "
    "orders.",
]


def generate(given: ChartInput, no_action: Sequence[str] = ("normal", "older-low")) -> list[Scenario]:
    """``no_action``: the variants the no-action branch draws from (v3: only "older-low", a newer real result)."""
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    # adults only: 10 mEq per 0.1 mmol/L is an adult dose (children are dosed by weight)
    facts = [
        f
        for f in unique_at(b.chart.values(POTASSIUM))
        if b.inside(f.when + timedelta(hours=24)) and whole_years_between(b.chart.birth_date, day_of(f.when)) >= 18
    ]
    if not facts:
        return []
    instruction, phrasing = b.say(category)
    context = (
        f"The LOINC code for potassium results is {POTASSIUM}. Low means below 3.5 mmol/L. The NDC for oral "
        f"replacement potassium chloride is {NDC_POTASSIUM_ORAL}. Dosing instructions: for every 0.1 mmol/L "
        "(mEq/L) below 3.5, order 10 mEq of oral potassium (for example 3.1 mmol/L: 40 mEq). Order the "
        "medication as a MedicationRequest (intent order, status active, authored now, route oral, dose as "
        "dosageInstruction.doseAndRate.doseQuantity in mEq) and the lab as a ServiceRequest with LOINC 2823-3 "
        "(serum potassium; intent order, status active, authored now, occurrenceDateTime 08:00 the next day "
        f"in the time zone of now). {FUTURE_NOTE}"
    )
    # one stated rounding for both branches (2 places: fixtures have 1, chart values many)
    answer_format = "Answer with the most recent potassium value in mmol/L, rounded to 2 decimal places."
    two_places = replace(LABS[POTASSIUM], decimals=2)
    every = [f.value for f in b.chart.values(POTASSIUM)]
    out = []
    for branch in ("act", "no-action"):
        base = rng.choice(facts)
        now = b.clock(base.when + timedelta(hours=rng.uniform(3, 20)))
        if not b.inside(now) or now - base.when < timedelta(hours=2):
            continue
        scenario = b.id_for(category, branch)
        variant = "low" if branch == "act" else rng.choice(list(no_action))
        if variant == "older-low":
            value = round(rng.uniform(2.8, 3.4), 1)
            when = base.when - timedelta(days=rng.uniform(2, 10))
            built = number_answer(base.value, two_places, every + [value], extra_decimals=0)
            if built is None:
                continue
            answer = built[0]
            provenance = [f"Observation/{base.id}"]
        else:
            value = round(rng.uniform(2.8, 3.4), 1) if branch == "act" else round(rng.uniform(3.6, 4.8), 1)
            when = now - (now - base.when) * rng.uniform(0.1, 0.9)
            answer = ExpectedAnswer(
                type="number",
                value=value,
                unit="mmol/L",
                tolerance=EXACT,
                unit_factors=dict(LABS[POTASSIUM].unit_factors),
            )
            provenance = []
        fixture = lab_observation(scenario, 0, b.chart.patient_id, POTASSIUM, POTASSIUM_DISPLAY, value, "mmol/L", when)
        if variant != "older-low":
            provenance = [f"Observation/{fixture['id']}"]
        writes = []
        if branch == "act":
            dose = float((35 - round(value * 10)) * 10)
            writes = [potassium_order(b.chart.patient_id, now, dose), potassium_followup(b.chart.patient_id, now)]
        out.append(
            b.make(
                category,
                (branch,),
                now=now,
                branch=branch,
                variant=variant,
                instruction=instruction,
                context=context,
                answer_format=answer_format,
                answer=answer,
                writes=writes,
                setup=[fixture],
                provenance=provenance,
                meta={"fixture_potassium": value, "phrasing": phrasing},
            )
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    row = await tools.reads.latest(patient, POTASSIUM)
    value = numeric(row) if row else None
    if (value is not None and value < POTASSIUM_THRESHOLD) or tools.act_on_every_branch:
        steps = round(POTASSIUM_THRESHOLD * 10) - round((value if value is not None else 3.4) * 10)
        dose = float(max(steps, 1) * 10)  # 10 mEq per 0.1 mmol/L below 3.5
        await tools.call(
            "order_medication",
            patient=patient,
            code=NDC_POTASSIUM_ORAL,
            system="ndc",
            dose_value=dose,
            dose_unit="mEq",
            route="oral",
            reason=f"potassium {value} mmol/L below 3.5",
        )
        await tools.call(
            "order_service",
            patient=patient,
            code=POTASSIUM_SERUM_ORDER,
            system="loinc",
            kind="lab",
            occurrence="tomorrow 08:00",
            reason="follow-up serum potassium after replacement",
        )
    return value_answer(sc.question, row)


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=190,
        until=2,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Check the latest potassium; replace it orally when low and order a follow-up serum potassium.",
        phrasings={NAME: PHRASINGS},
    )
)
V3 = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=190,
        since=3,
        generate=partial(generate, no_action=("older-low",)),
        solve=solve,
        conditional=True,
        description="Check the latest potassium; replace it orally when low and order a follow-up serum potassium. v3: "
        "every item's setup holds a low result; on the no-action branch the chart's own newer result is "
        "normal, so the setup alone never decides.",
        phrasings={NAME: PHRASINGS},
    )
)
