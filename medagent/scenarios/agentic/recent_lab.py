"""A lab's latest value within the last 24 hours, or 'none'."""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import FUTURE_NOTE, TRIES, AgenticBuilder, unique_at
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import RECENT_WINDOW
from medagent.scenarios.codes import LABS, RECENT_LAB_CODES
from medagent.scenarios.expect import none_number, number_answer, rounding_phrase
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import value_answer

NAME = "recent_lab"
PHRASINGS = [
    "What is the most recent {label} value (LOINC {code}) of {patient} within the last 24 hours?",
    "Has {patient} had a {label} (LOINC {code}) in the last 24 hours? If so, what was the latest value?",
    "Give the latest {label} result (LOINC {code}) of {patient} from the past 24 hours.",
    "What {label} (LOINC {code}) was most recently measured for {patient} in the last 24 hours?",
    "Look up the {label} (LOINC {code}) of {patient} from the last 24 hours and report the most recent value.",
    "Within the past 24 hours, what is the last {label} (LOINC {code}) recorded for {patient}?",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    codes = [c for c in RECENT_LAB_CODES if b.chart.values(c)]
    if not codes:
        return []
    code = rng.choice(codes)
    info = LABS[code]
    facts = unique_at(b.chart.values(code))
    every = [f.value for f in b.chart.values(code)]
    instruction, phrasing = b.say(category, label=info.label, code=code)
    out: list[Scenario] = []
    for variant in ("present", "absent"):
        for _ in range(TRIES):
            fact = rng.choice(facts) if facts else None
            if fact is None:
                break
            hours = rng.uniform(1.5, 22.0) if variant == "present" else rng.uniform(3 * 24, 60 * 24)
            now = b.clock(fact.when + timedelta(hours=hours))
            if not b.inside(now):
                continue
            window = [f for f in b.chart.values(code) if now - timedelta(hours=25) <= f.when <= now]
            if variant == "present":
                if window != [f for f in b.chart.values(code) if f.when == fact.when] or not now - timedelta(
                    hours=23
                ) <= fact.when <= now - timedelta(hours=1):
                    continue
                built = number_answer(fact.value, info, every)
                if built is None:
                    continue
                answer, decimals = built
                provenance = [f"Observation/{fact.id}"]
            else:
                if window:
                    continue
                answer, decimals, provenance = none_number(info), info.decimals, []
            out.append(
                b.make(
                    category,
                    (variant,),
                    now=now,
                    variant=variant,
                    instruction=instruction,
                    context=FUTURE_NOTE,
                    answer_format=f"Answer with one number in {info.unit}, {rounding_phrase(decimals)}, or "
                    f"'none' if no {info.label} was measured in the last 24 hours.",
                    answer=answer,
                    provenance=provenance,
                    meta={"loinc": code, "phrasing": phrasing},
                )
            )
            break
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    return value_answer(sc.question, await tools.reads.latest(patient, sc.meta["loinc"], since=RECENT_WINDOW))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=140,
        generate=generate,
        solve=solve,
        description="A lab's latest value within the last 24 hours, or 'none'.",
        phrasings={NAME: PHRASINGS},
        variant_shares={"present": 3, "absent": 1},
    )
)
