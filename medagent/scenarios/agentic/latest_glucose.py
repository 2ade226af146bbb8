"""The latest blood glucose value, however old, or 'none'."""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import FUTURE_NOTE, TRIES, AgenticBuilder, latest_before, pick_time
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import GLUCOSE, LABS
from medagent.scenarios.expect import none_number, number_answer, rounding_phrase
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import value_answer

NAME = "latest_glucose"
PHRASINGS = [
    "What is the most recent blood glucose value (LOINC {code}) of {patient}?",
    "Give the latest glucose result (LOINC {code}) of {patient}.",
    "What was the last blood glucose (LOINC {code}) measured for {patient}?",
    "Report the newest blood glucose value (LOINC {code}) on record for {patient}.",
    "Look up the chart of {patient} and tell me the latest recorded glucose (LOINC {code}).",
    "As of now, what is the most recently recorded blood glucose (LOINC {code}) of {patient}?",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    info = LABS[GLUCOSE]
    facts = b.chart.values(GLUCOSE)
    start, end = b.span
    instruction, phrasing = b.say(category, code=GLUCOSE)
    for _ in range(TRIES):
        # mostly after some result (the chart usually also holds later ones, after now), else before any
        if facts and rng.random() < 0.8:
            now = b.clock(rng.choice(facts).when + timedelta(days=rng.uniform(0.1, 400)))
        else:
            now = b.clock(pick_time(rng, start, facts[0].when if facts else end))
        if not b.inside(now):
            continue
        latest = latest_before(facts, now)
        if latest is None:
            answer, decimals, provenance, variant = none_number(info), info.decimals, [], "absent"
        else:
            if now - latest.when < timedelta(hours=1) or len({f.value for f in facts if f.when == latest.when}) > 1:
                continue
            built = number_answer(latest.value, info, [f.value for f in facts])
            if built is None:
                continue
            (answer, decimals), provenance, variant = built, [f"Observation/{latest.id}"], "present"
        return [
            b.make(
                category,
                (),
                now=now,
                variant=variant,
                instruction=instruction,
                context=FUTURE_NOTE,
                answer_format=f"Answer with one number in mg/dL, {rounding_phrase(decimals)}, or 'none' if "
                "the patient has no glucose result.",
                answer=answer,
                provenance=provenance,
                meta={"phrasing": phrasing},
            )
        ]
    return []


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    return value_answer(sc.question, await tools.reads.latest(patient, GLUCOSE))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=170,
        generate=generate,
        solve=solve,
        description="The latest blood glucose value, however old, or 'none'.",
        phrasings={NAME: PHRASINGS},
        variant_shares={"present": 3, "absent": 1},
    )
)
