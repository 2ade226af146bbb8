"""Report the last HbA1c and its date; order a new one when it is more than a year old or missing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from medagent.scenarios.agentic.common import (
    FUTURE_NOTE,
    TRIES,
    AgenticBuilder,
    latest_before,
    pick_time,
    service_order,
    unique_at,
)
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.codes import HBA1C, LABS, LOINC
from medagent.scenarios.expect import none_number, number_answer, rounding_phrase
from medagent.scenarios.models import CodingSpec, ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, parse_time, stated_decimals, utc_day
from medagent.vocabulary import condition_label

NAME = "hba1c_reorder"
PHRASINGS = [
    "What is the last hemoglobin A1c (HbA1c) value in the chart of {patient}, and when was it recorded? If the "
    "last result is more than 1 year old, or there is none, order a new HbA1c lab test.",
    "Find the most recent HbA1c of {patient} and its date. Order a new HbA1c test if that result is more than "
    "1 year old or if there is no HbA1c on record.",
    "Report the latest hemoglobin A1c (HbA1c) of {patient} with the date it was recorded; if it is more than 1 "
    "year old or missing, order a repeat HbA1c.",
    "When was HbA1c last measured for {patient}, and what was it? If more than 1 year ago (or never), order a "
    "new HbA1c lab.",
    "Look up the newest HbA1c result of {patient}, giving value and date, and order an HbA1c lab test when the "
    "last one is more than 1 year old or absent.",
    "HbA1c monitoring for {patient}: state the last HbA1c value and its date, and if it is more than 1 year old "
    "or there is none, put in an order for a new HbA1c.",
]

HBA1C_INDICATIONS = {"44054006", "15777000", "368581000119106", "422034002", "127013003"}  # diabetes, prediabetes


def stale_or_fresh_now(
    b: AgenticBuilder,
    times: list[datetime],
    branch: str,
    rng_key: str,
    fresh_days: tuple[int, int] = (30, 340),
    stale_after: int = 380,
) -> tuple[datetime, str] | None:
    """A clock where the last event before it is recent (no-action), or is older than ``stale_after`` days
    or absent (act). Returns (now, variant) with variant recent | stale | none."""
    rng = b.rng(rng_key, branch)
    start, end = b.span

    def age_at(now: datetime) -> float | None:
        before = [t for t in times if t <= now]
        return (now - before[-1]).total_seconds() / 86400 if before else None

    if branch == "no-action":
        for _ in range(TRIES):
            if not times:
                return None
            now = b.clock(rng.choice(times) + timedelta(days=rng.uniform(*fresh_days)))
            age_days = age_at(now)
            if b.inside(now) and age_days is not None and fresh_days[0] - 1 <= age_days <= fresh_days[1] + 1:
                return now, "recent"
        return None
    bounds = [*times, end]
    gaps = [(t, nxt) for t, nxt in zip(times, bounds[1:], strict=True) if (nxt - t).days > stale_after + 20]
    first = times[0] if times else end
    can_be_none = first - start > timedelta(days=30)
    order = ["stale", "none"] if gaps and (not can_be_none or rng.random() < 0.7) else ["none", "stale"]
    for variant in order:
        for _ in range(TRIES):
            if variant == "stale" and gaps:
                t, nxt = rng.choice(gaps)
                now = b.clock(t + timedelta(days=rng.uniform(stale_after + 5, (nxt - t).days - 5)))
            elif variant == "none" and can_be_none:
                now = b.clock(pick_time(rng, start, first - timedelta(days=1)))
            else:
                break
            age_days = age_at(now)
            if b.inside(now) and (age_days is None if variant == "none" else (age_days or 0) > stale_after):
                return now, variant
    return None


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    facts = unique_at(b.chart.values(HBA1C))
    times = [f.when for f in b.chart.values(HBA1C)]
    if not times:
        return []  # only patients followed with HbA1c at some point (adults with glycemia checks)
    indications = sorted(
        (c for c in b.chart.conditions if c.code.code in HBA1C_INDICATIONS), key=lambda c: (c.onset, c.id)
    )
    if not indications:
        return []  # re-ordering HbA1c is only indicated with diabetes or prediabetes
    instruction, phrasing = b.say(category)
    answer_format = (
        'Answer as JSON: {{"value": <the HbA1c in %, {rounding}>, "date": "YYYY-MM-DD"}}, '
        "or 'none' if there is no HbA1c result."
    )
    out = []
    for branch in ("act", "no-action"):
        picked = stale_or_fresh_now(b, times, branch, category)
        if picked is None:
            continue
        now, variant = picked
        if whole_years_between(b.chart.birth_date, day_of(now)) < 18:
            continue
        indication = next((c for c in indications if c.onset <= now - timedelta(days=1)), None)
        if indication is None:
            continue  # not yet diagnosed at now: no indication to monitor HbA1c
        context = (
            f"The patient's problem list includes {condition_label(indication.code.display).lower()} (since "
            f"{day_of(indication.onset).isoformat()}), so HbA1c is monitored at least yearly. The LOINC code "
            f"for HbA1c is {HBA1C}. Order a new test as a ServiceRequest with LOINC {HBA1C} (intent order, "
            f"status active, authored now). {FUTURE_NOTE}"
        )
        last = latest_before(b.chart.values(HBA1C), now)
        if last is not None and last not in facts:
            continue
        if last is None:
            answer = ExpectedAnswer(
                type="record",
                fields={"value": none_number(LABS[HBA1C]), "date": ExpectedAnswer(type="date", value=None)},
            )
            provenance, decimals = [], LABS[HBA1C].decimals
        else:
            built = number_answer(last.value, LABS[HBA1C], [f.value for f in b.chart.values(HBA1C)])
            if built is None:
                continue
            answer = ExpectedAnswer(
                type="record",
                fields={"value": built[0], "date": ExpectedAnswer(type="date", value=day_of(last.when).isoformat())},
            )
            provenance, decimals = [f"Observation/{last.id}"], built[1]
        writes = (
            [service_order("HbA1c order", b.chart.patient_id, now, [CodingSpec(system=LOINC, code=HBA1C)])]
            if branch == "act"
            else []
        )
        out.append(
            b.make(
                category,
                (branch,),
                now=now,
                branch=branch,
                variant=variant,
                instruction=instruction,
                context=context,
                answer_format=answer_format.format(rounding=rounding_phrase(decimals)),
                answer=answer,
                writes=writes,
                provenance=[*provenance, f"Condition/{indication.id}"],
                meta={"phrasing": phrasing, "indication": indication.code.code},
            )
        )
    return out


HBA1C_STALE = timedelta(days=365)  # "more than 1 year old"


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    row = await tools.reads.latest(patient, HBA1C)
    when = parse_time(row["date"]) if row else None
    if when is None or tools.now - when > HBA1C_STALE or tools.act_on_every_branch:
        await tools.call(
            "order_service",
            patient=patient,
            code=HBA1C,
            system="loinc",
            kind="lab",
            reason="last HbA1c more than a year old" if when else "no HbA1c on record",
        )
    if row is None:
        return OracleAnswer("none", [])
    decimals = stated_decimals(sc.question)
    value = round(numeric(row), decimals) if decimals is not None else numeric(row)
    return OracleAnswer(json.dumps({"value": value, "date": utc_day(row["date"])}), [row["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=200,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Report the last HbA1c and its date; order a new one when it is more than a year old or missing.",
        phrasings={NAME: PHRASINGS},
    )
)
