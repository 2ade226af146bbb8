"""Check the latest magnesium; replace it intravenously when low, by the dosing instructions."""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import EXACT, FUTURE_NOTE, AgenticBuilder, magnesium_order
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import RECENT_WINDOW
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.codes import (
    MAGNESIUM,
    MAGNESIUM_DISPLAY,
    MAGNESIUM_INFO,
    MAGNESIUM_THRESHOLD,
    NDC_MAGNESIUM_IV,
    magnesium_dose,
    magnesium_order_arguments,
)
from medagent.scenarios.fixtures import lab_observation
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, value_answer

NAME = "magnesium_replacement"
PHRASINGS = [
    "Check the last serum magnesium level of {patient} within the last 24 hours. If it is low, order "
    "replacement IV magnesium according to the dosing instructions. If no magnesium level was recorded in the "
    "last 24 hours, do not order anything.",
    "Review the serum magnesium of {patient} from the last 24 hours and, if it is low, order IV magnesium "
    "replacement per the dosing instructions; with no magnesium result in the last 24 hours, order nothing.",
    "Does {patient} need magnesium replacement? Look at the latest serum magnesium within the last 24 hours: if "
    "it is low, order IV magnesium as instructed below; if there is none in that time, do not order.",
    "For {patient}: if the most recent serum magnesium from the last 24 hours is low, place an IV magnesium "
    "replacement order following the dosing instructions. Without a result in the last 24 hours, place no order.",
    "Look up the last 24 hours of serum magnesium results of {patient}. Replace IV magnesium per the dosing "
    "instructions if the latest is low; order nothing if it is normal or if none was measured in that period.",
    "Magnesium check for {patient}: take the newest serum magnesium of the last 24 hours; when it is low, order "
    "IV magnesium by the dosing instructions, otherwise (normal, or nothing in 24 hours) order nothing.",
]
_MG_LEVELS = {"severe": (0.6, 0.9, 4.0), "moderate": (1.1, 1.4, 2.0), "mild": (1.5, 1.8, 1.0)}


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    start, end = b.span
    # adults only: the dosing instructions are adult doses (a 2 g dose is about 60 mg/kg for a 2-year-old)
    visits = [
        t
        for t in b.chart.encounter_starts
        if start + timedelta(days=3) <= t <= end - timedelta(hours=8)
        and whole_years_between(b.chart.birth_date, day_of(t)) >= 18
    ]
    if not visits:
        return []
    instruction, phrasing = b.say(category)
    context = (
        f"The LOINC code for serum magnesium is {MAGNESIUM}. Low means 1.9 mg/dL or less. The NDC for "
        f"replacement IV magnesium sulfate is {NDC_MAGNESIUM_IV}. Dosing instructions: mild deficiency "
        "(1.5 to 1.9 mg/dL): 1 g IV over 1 hour; moderate deficiency (1.0 to less than 1.5 mg/dL): 2 g IV over "
        "2 hours; severe deficiency (less than 1.0 mg/dL): 4 g IV over 4 hours. Order it as a "
        "MedicationRequest (intent order, status active, authored now) with route IV, the dose as "
        "dosageInstruction.doseAndRate.doseQuantity in g and the infusion duration (for example as "
        f"dosageInstruction.timing.repeat.duration in h). {FUTURE_NOTE}"
    )
    answer_format = (
        "Answer with the most recent serum magnesium value in the chart, in mg/dL as recorded, even if "
        "it is older than 24 hours, or 'none' if the patient has no magnesium result."
    )
    out = []
    for branch in ("act", "no-action"):
        anchor = rng.choice(sorted(visits))
        now = b.clock(anchor + timedelta(hours=rng.uniform(1, 6)))
        scenario = b.id_for(category, branch)
        if branch == "act":
            level = rng.choice(sorted(_MG_LEVELS))
            low, high, grams = _MG_LEVELS[level]
            value = round(rng.uniform(low, high), 1)
            when, variant = now - timedelta(hours=rng.uniform(2, 20)), level
            writes = [magnesium_order(b.chart.patient_id, now, grams, grams)]
            answer = ExpectedAnswer(
                type="number",
                value=value,
                unit="mg/dL",
                tolerance=EXACT,
                unit_factors=dict(MAGNESIUM_INFO.unit_factors),
            )
        else:
            variant = rng.choice(["normal", "stale-low"])
            if variant == "normal":
                value = round(rng.uniform(2.0, 2.6), 1)
                when = now - timedelta(hours=rng.uniform(2, 20))
                answer = ExpectedAnswer(
                    type="number",
                    value=value,
                    unit="mg/dL",
                    tolerance=EXACT,
                    unit_factors=dict(MAGNESIUM_INFO.unit_factors),
                )
            else:
                value = round(rng.uniform(1.0, 1.7), 1)
                when = now - timedelta(hours=rng.uniform(30, 70))
                # the no-action branch still needs the value the agent found (not "none")
                answer = ExpectedAnswer(
                    type="number",
                    value=value,
                    unit="mg/dL",
                    tolerance=EXACT,
                    unit_factors=dict(MAGNESIUM_INFO.unit_factors),
                )
            writes = []
        fixture = lab_observation(scenario, 0, b.chart.patient_id, MAGNESIUM, MAGNESIUM_DISPLAY, value, "mg/dL", when)
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
                provenance=[f"Observation/{fixture['id']}"],
                meta={"magnesium": value, "phrasing": phrasing},
            )
        )
    return out


MAGNESIUM_ANY_AGE = "even if it is older than 24 hours"  # v2 answer format: the latest value, however old


async def _replace(tools: ToolCaller, patient: str, value: float | None) -> None:
    if (value is not None and value <= MAGNESIUM_THRESHOLD) or tools.act_on_every_branch:
        grams = magnesium_dose(value if value is not None and value <= MAGNESIUM_THRESHOLD else 1.9)
        await tools.call(
            "order_medication",
            **magnesium_order_arguments(
                patient, grams, f"serum magnesium {value} mg/dL" if value is not None else "magnesium replacement"
            ),
        )


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    row = await tools.reads.latest(patient, MAGNESIUM, since=RECENT_WINDOW)
    value = numeric(row) if row else None
    if MAGNESIUM_ANY_AGE in sc.question:  # v2: the answer is the latest value, however old; the order needs 24 h
        latest = await tools.reads.latest(patient, MAGNESIUM)
        await _replace(tools, patient, value)
        return value_answer(sc.question, latest)
    await _replace(tools, patient, value)
    return value_answer(sc.question, row)


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=150,
        until=2,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Check the latest magnesium; replace it intravenously when low, by the dosing instructions.",
        phrasings={NAME: PHRASINGS},
    )
)
