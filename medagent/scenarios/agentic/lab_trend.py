"""The direction of a lab over its last three results by a stated 5% rule, with a summary."""

from __future__ import annotations

import json
from datetime import timedelta

from medagent.scenarios.agentic.common import FUTURE_NOTE, TRIES, AgenticBuilder
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import LABS, TREND_CODES
from medagent.scenarios.expect import names, number_answer, rounding_phrase
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, refs, rows_of, stated_decimals, utc_day

NAME = "lab_trend"
PHRASINGS = [
    "Summarise the trend of the {label} (LOINC {code}) of {patient} over its last three results before now, for "
    "the clinician.",
    "How has the {label} (LOINC {code}) of {patient} changed over its last three results before now? Summarise "
    "the trend for the clinician.",
    "Describe the trend in the last three {label} results (LOINC {code}) of {patient} before now.",
    "Look at the three most recent {label} values (LOINC {code}) of {patient} before now and summarise the "
    "direction for the care team.",
    "Give the clinician a trend summary of the last three {label} (LOINC {code}) results of {patient} before now.",
    "Over the latest three {label} measurements (LOINC {code}) of {patient} before now, is it going up, down or "
    "staying stable? Summarise.",
]
TREND_THRESHOLD = 0.05
TREND_MARGIN = 0.01  # no question when the change lies within 1 point of the 5% threshold


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    by_trend: dict[str, Scenario] = {}
    codes = [c for c in TREND_CODES if len(b.chart.values(c)) >= 3]
    for _ in range(TRIES * 2):
        if not codes:
            break
        code = rng.choice(codes)
        info = LABS[code]
        facts = b.chart.values(code)
        if len({f.when for f in facts}) != len(facts):
            codes.remove(code)  # same-time duplicates make "the last three" ambiguous
            continue
        k = rng.randrange(2, len(facts))
        upper = facts[k + 1].when if k + 1 < len(facts) else b.span[1]
        if upper - facts[k].when < timedelta(days=3):
            continue
        now = b.clock(facts[k].when + (upper - facts[k].when) * rng.uniform(0.1, 0.9))
        if not b.inside(now) or not facts[k].when + timedelta(hours=1) < now < upper:
            continue
        first, last = facts[k - 2], facts[k]
        change = (last.value - first.value) / first.value
        if abs(abs(change) - TREND_THRESHOLD) <= TREND_MARGIN:
            continue
        trend = "increasing" if change >= TREND_THRESHOLD else "decreasing" if change <= -TREND_THRESHOLD else "stable"
        if trend in by_trend:
            continue
        every = [f.value for f in facts]
        first_answer = number_answer(first.value, info, every)
        last_answer = number_answer(last.value, info, every)
        if first_answer is None or last_answer is None:
            continue
        decimals = max(first_answer[1], last_answer[1])
        tolerance = Tolerance(abs=10.0**-decimals)  # both values at the one stated rounding
        fields = {
            "trend": names([trend]),
            "first": first_answer[0].model_copy(update={"tolerance": tolerance}),
            "last": last_answer[0].model_copy(update={"tolerance": tolerance}),
        }
        instruction, phrasing = b.say(category, (trend,), label=info.label, code=code)
        context = (
            "Compare the newest of the three results with the oldest: the trend is 'increasing' if the newest "
            "is at least 5% higher, 'decreasing' if it is at least 5% lower, and 'stable' otherwise. " + FUTURE_NOTE
        )
        answer_format = (
            'Answer as JSON: {"trend": "increasing" | "decreasing" | "stable", "first": <oldest of the '
            f'three, in {info.unit}>, "last": <newest, in {info.unit}>, "summary": "<one or two '
            f'sentences>"}}, values {rounding_phrase(decimals)}.'
        )
        by_trend[trend] = b.make(
            category,
            (trend,),
            now=now,
            variant=trend,
            instruction=instruction,
            context=context,
            answer_format=answer_format,
            answer=ExpectedAnswer(type="record", fields=fields),
            provenance=[f"Observation/{f.id}" for f in facts[k - 2 : k + 1]],
            meta={"loinc": code, "change": round(change, 4), "phrasing": phrasing},
        )
    return [by_trend[t] for t in sorted(by_trend)]


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    code = sc.meta["loinc"]
    result = await tools.call("search_observations", patient=patient, code=code, limit=3)
    rows = rows_of(result.rows, code)[:3]
    if len(rows) < 3:
        raise ToolGap(f"fewer than three {code} results before now ({len(rows)})")
    newest, oldest = numeric(rows[0]), numeric(rows[2])
    change = (newest - oldest) / oldest
    trend = "increasing" if change >= TREND_THRESHOLD else "decreasing" if change <= -TREND_THRESHOLD else "stable"
    decimals = stated_decimals(sc.question)
    unit = rows[0].get("unit") or ""
    first = round(oldest, decimals) if decimals is not None else oldest
    last = round(newest, decimals) if decimals is not None else newest
    summary = (
        f"The last three results went from {first} {unit} ({utc_day(rows[2]['date'])}) to {last} {unit} "
        f"({utc_day(rows[0]['date'])}), a change of {change:+.1%}: {trend}."
    )
    return OracleAnswer(json.dumps({"trend": trend, "first": first, "last": last, "summary": summary}), refs(rows))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=230,
        generate=generate,
        solve=solve,
        description="The direction of a lab over its last three results by a stated 5% rule, with a summary.",
        phrasings={NAME: PHRASINGS},
    )
)
