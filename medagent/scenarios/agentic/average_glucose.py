"""The mean blood glucose over the last 730 days (a result recorded twice counts once)."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import mean

from medagent.scenarios.agentic.common import FUTURE_NOTE, TRIES, AgenticBuilder, pick_time
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import ObservationFact
from medagent.scenarios.chart_reads import every_row
from medagent.scenarios.codes import GLUCOSE, LABS
from medagent.scenarios.expect import none_number
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, quantity_text, refs, stated_decimals, utc_moment

NAME = "average_glucose"
PHRASINGS = [
    "What is the average blood glucose (LOINC {code}) of {patient} over the last 730 days (2 years)? Include "
    "every glucose result from the 730 days before now.",
    "Compute the mean blood glucose (LOINC {code}) of {patient} over the 730 days (2 years) before now, using "
    "every glucose result in that period.",
    "Average all blood glucose results (LOINC {code}) of {patient} from the last 730 days (2 years): what is the mean?",
    "Over the past 2 years (730 days), what was the mean of the glucose results (LOINC {code}) of {patient}? "
    "Count every result in that window.",
    "Give the 730-day (2-year) average glucose (LOINC {code}) of {patient}, over every glucose result dated in "
    "the 730 days before now.",
    "Taking every blood glucose (LOINC {code}) of {patient} recorded in the 730 days (2 years) up to now, what "
    "is their average?",
]
AVERAGE_WINDOW = timedelta(days=730)
DEDUP_NOTE = "A result recorded more than once at the same moment with the same value counts once."


def distinct_results(facts: list[ObservationFact]) -> list[ObservationFact]:
    """One fact per (moment, value): a result recorded twice at the same moment counts once."""
    seen: set[tuple[datetime, float]] = set()
    out = []
    for fact in facts:
        if (fact.when, fact.value) not in seen:
            seen.add((fact.when, fact.value))
            out.append(fact)
    return out


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    info = LABS[GLUCOSE]
    raw = b.chart.values(GLUCOSE)
    if len({f.when for f in raw}) != len({(f.when, f.value) for f in raw}):
        return []  # two different values at one moment: no single mean to ask for
    facts = distinct_results(raw)
    start, end = b.span
    instruction, phrasing = b.say(category, code=GLUCOSE)
    answer_format = (
        "Answer with one number in mg/dL, rounded to 1 decimal place, or 'none' if there is no glucose "
        "result in that period."
    )
    out: list[Scenario] = []
    for variant in ("present", "absent"):
        for _ in range(TRIES):
            if variant == "present":
                if not facts:
                    break
                now = b.clock(rng.choice(facts).when + timedelta(days=rng.uniform(1, 200)))
            else:
                # absent: glucose results exist before the window but none in it where the chart allows, so
                # the era of the clock does not give the answer away
                gaps = [
                    f.when
                    for f, nxt in zip(facts, [*facts[1:], None], strict=False)
                    if (nxt.when if nxt else end) - f.when > AVERAGE_WINDOW + timedelta(days=20)
                ]
                now = (
                    b.clock(rng.choice(gaps) + AVERAGE_WINDOW + timedelta(days=rng.uniform(5, 15)))
                    if gaps and rng.random() < 0.8
                    else b.clock(pick_time(rng, start, end))
                )
            if not b.inside(now):
                continue
            lo = now - AVERAGE_WINDOW
            inside = [f for f in facts if lo <= f.when <= now]
            if any(
                abs((f.when - lo).total_seconds()) < 3 * 86400 or abs((f.when - now).total_seconds()) < 3600
                for f in facts
            ):
                continue  # nothing near the window's edges
            if variant == "present":
                if len(inside) < 2:
                    continue
                mean = sum(f.value for f in inside) / len(inside)
                before = [f.value for f in facts if f.when <= now]
                near_misses = (
                    [inside[-1].value, sum(before) / len(before)] if len(before) > len(inside) else [inside[-1].value]
                )
                if any(abs(n - mean) <= 0.25 for n in near_misses):
                    continue  # the latest value or an all-time mean must not pass for the 730-day mean
                answer = ExpectedAnswer(
                    type="number",
                    value=round(mean, 6),
                    unit="mg/dL",
                    tolerance=Tolerance(abs=0.1),
                    unit_factors=dict(info.unit_factors),
                )
                provenance = [f"Observation/{f.id}" for f in inside]
            else:
                if inside:
                    continue
                answer, provenance = none_number(info), []
            out.append(
                b.make(
                    category,
                    (variant,),
                    now=now,
                    variant=variant,
                    instruction=instruction,
                    context=f"{DEDUP_NOTE} {FUTURE_NOTE}",
                    answer_format=answer_format,
                    answer=answer,
                    provenance=provenance,
                    meta={
                        "results_in_window": len(inside),
                        "phrasing": phrasing,
                        "duplicates_removed": len(raw) - len(facts),
                    },
                )
            )
            break
    return out


AVERAGE_SINCE = "-730d"  # "the 730 days before now"
DEDUP_RULE = "recorded more than once at the same moment with the same value counts once"  # v2


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    rows = [
        row
        for row in await every_row(tools, "search_observations", patient=patient, code=GLUCOSE, since=AVERAGE_SINCE)
        if row.get("code") == GLUCOSE
    ]
    if not rows:
        return OracleAnswer("none", [])
    values = [numeric(row) for row in rows]
    if DEDUP_RULE in sc.question:  # v2: a result recorded twice at the same moment counts once
        values = list({(utc_moment(row.get("date")), numeric(row)): numeric(row) for row in rows}.values())
    average = mean(values)
    return OracleAnswer(quantity_text(average, rows[0].get("unit"), stated_decimals(sc.question)), refs(rows))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=160,
        generate=generate,
        solve=solve,
        description="The mean blood glucose over the last 730 days (a result recorded twice counts once).",
        phrasings={NAME: PHRASINGS},
        variant_shares={"present": 3, "absent": 1},
    )
)
