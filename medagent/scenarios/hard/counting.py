"""Exact counting and aggregation over more rows than one page of a tool (20 by default).

- ``count_results``: how many results of a lab/vital are dated in a span of calendar years (5-100).
- ``count_immunizations``: how many vaccine doses of any kind are recorded by now (21-100).
- ``count_encounters``: how many encounters started in a span of calendar years (21-100).

Spans hold nothing within 7 days of either boundary (so time zones and overnight stays cannot change a
count), and each count is drawn uniformly among the counts a chart allows, so the smallest allowed count is
not the likeliest answer.
- ``mean_results``: the mean of every result of a lab/vital by now (at least 10 of them).

Codes with two results at the same moment are skipped (a recorded-twice result makes "how many" and
"the mean" ambiguous). Counts are exact (tolerance 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from statistics import mean

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import MAX_ROWS, observations
from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import LABS
from medagent.scenarios.expect import number_answer, rounding_phrase
from medagent.scenarios.hard.common import HardBuilder, exact_integer
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, quantity_text, refs, stated_decimals

NAME = "count_aggregate"
PAGE = 20  # the tools' default page
MEAN_MIN_ROWS = 10
COUNT_MIN_ROWS = 5
BOUNDARY_MARGIN = timedelta(days=7)
COUNT_CODES = ["29463-7", "39156-5", "8480-6", "718-7", "2093-3", "18262-6", "2339-0", "38483-4", "4548-4", "33914-3"]
MEAN_CODES = ["29463-7", "39156-5", "8480-6", "8462-4", "718-7", "2093-3", "18262-6", "2339-0", "4548-4", "2571-8"]

COUNT_PHRASINGS = [
    "How many {lab} results (LOINC {loinc}) are recorded in the patient's chart from {start} to {end}?",
    "Count every {lab} measurement (LOINC {loinc}) dated between {start} and {end}. How many are there?",
    "What is the total number of {lab} observations (LOINC {loinc}) documented from {start} through {end}?",
    "How many times was the patient's {lab} (LOINC {loinc}) measured between {start} and {end}?",
    "In the calendar years {first_year} to {last_year}, how many separate {lab} (LOINC {loinc}) results does the "
    "chart hold?",
    "Give the exact number of {lab} results (LOINC {loinc}) on file dated from {start} to {end}.",
]
ENCOUNTER_PHRASINGS = [
    "How many encounters (visits of any kind) did the patient have from {start} to {end}?",
    "Count the patient's encounters of every class that started between {start} and {end}. How many are there?",
    "What is the number of visits (all encounter types) in the record dated from {start} through {end}?",
    "Between {start} and {end}, how many encounters of any type does the chart show?",
    "In the calendar years {first_year} to {last_year} ({start} to {end}), how many encounters were recorded?",
    "Tell me exactly how many encounters started from {start} to {end}, counting every class of visit.",
]
IMMUNIZATION_PHRASINGS = [
    "How many vaccine doses (immunizations of any kind) has the patient received up to now?",
    "Count every immunization given to the patient, all vaccines together, by now. How many are there?",
    "What is the total number of vaccinations (all vaccine types) recorded for this patient so far?",
    "For the immunization history: how many doses of any vaccine are documented up to now?",
    "How many immunization records, of every vaccine, does the chart hold as of now?",
    "Give the exact number of vaccine administrations of any type in the record to date.",
]
MEAN_PHRASINGS = [
    "What is the mean of all {lab} results (LOINC {loinc}) recorded for the patient up to now?",
    "Average every {lab} value (LOINC {loinc}) in the chart so far. What is the mean?",
    "Across all of the patient's {lab} measurements (LOINC {loinc}) up to now, what is the average value?",
    "Taking every {lab} (LOINC {loinc}) result documented by now, what is their arithmetic mean?",
    "What was the patient's average {lab} (LOINC {loinc}) over the whole record to date?",
    "Compute the mean {lab} (LOINC {loinc}) over every result on file as of now.",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    now = b.end
    out: list[Scenario] = []
    rng = b.rng(NAME)
    codes = [c for c in COUNT_CODES if len({f.when for f in b.chart.values(c)}) == len(b.chart.values(c))]
    for code in rng.sample(codes, len(codes)):
        if len([s for s in out if s.meta["form"] == "count_results"]) >= 2:
            break
        picked = _span(rng, [f.when for f in b.chart.values(code)], now, COUNT_MIN_ROWS)
        if picked is None:
            continue
        start, end, count = picked
        key: tuple[str, ...] = ("count_results", code, start.isoformat(), end.isoformat())
        index, template = b.phrasing(NAME, key, COUNT_PHRASINGS)
        question = template.format(
            lab=LABS[code].label,
            loinc=code,
            start=start.isoformat(),
            end=end.isoformat(),
            first_year=start.year,
            last_year=end.year,
        )
        inside = [f for f in b.chart.values(code) if start <= day_of(f.when) <= end]
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=question,
                answer_format="Answer with one whole number (both days included).",
                answer=exact_integer(count),
                phrasing=index,
                provenance=[f"Observation/{f.id}" for f in inside],
                meta={"form": "count_results", "loinc": code, "since": start.isoformat(), "until": end.isoformat()},
            )
        )
    out.extend(_encounter_spans(b, now, rng))
    shots = [s for s in b.chart.immunizations if s.when <= now]
    if PAGE < len(shots) <= MAX_ROWS:
        key = ("count_immunizations",)
        index, template = b.phrasing(NAME, key, IMMUNIZATION_PHRASINGS)
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=template,
                answer_format="Answer with one whole number.",
                answer=exact_integer(len(shots)),
                phrasing=index,
                provenance=[f"Immunization/{s.id}" for s in shots],
                meta={"form": "count_immunizations"},
            )
        )
    averaged = []
    for code in MEAN_CODES:
        facts = [f for f in b.chart.values(code) if f.when <= now]
        if MEAN_MIN_ROWS <= len(facts) <= MAX_ROWS and len({f.when for f in facts}) == len(facts):
            averaged.append((code, facts))
    for code, facts in rng.sample(averaged, min(2, len(averaged))):
        info = LABS[code]
        value = mean(f.value for f in facts)
        made = number_answer(value, info, [mean(f.value for f in facts[:-1])], extra_decimals=2)
        if made is None:
            continue
        answer, decimals = made
        decimals = max(decimals, 1)
        answer = answer.model_copy(update={"tolerance": answer.tolerance.model_copy(update={"abs": 10.0**-decimals})})
        key = ("mean_results", code)
        index, template = b.phrasing(NAME, key, MEAN_PHRASINGS)
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=template.format(lab=info.label, loinc=code),
                answer_format=f"Answer with the mean in {info.unit}, {rounding_phrase(decimals)}.",
                answer=answer,
                phrasing=index,
                provenance=[f"Observation/{f.id}" for f in facts],
                meta={"form": "mean_results", "loinc": code},
            )
        )
    return out


def spans(
    times: Sequence[datetime], now: datetime, low: int, high: int = MAX_ROWS
) -> dict[int, list[tuple[date, date]]]:
    """count -> the spans of whole calendar years holding that many (low..high) of the times, none of them within 7
    days of a boundary, each ending before now."""
    times = sorted(t for t in times if t <= now)
    by_count: dict[int, list[tuple[date, date]]] = {}
    years = sorted({day_of(t).year for t in times})
    for i, first in enumerate(years):
        for last in years[i:]:
            start, end = date(first, 1, 1), date(last, 12, 31)
            if end >= day_of(now) - BOUNDARY_MARGIN:
                continue
            days = [day_of(t) for t in times]
            if any(abs(d - start) <= BOUNDARY_MARGIN or abs(d - end) <= BOUNDARY_MARGIN for d in days):
                continue
            count = sum(1 for d in days if start <= d <= end)
            if low <= count <= high:
                by_count.setdefault(count, []).append((start, end))
    return by_count


def _span(rng, times: list, now, low: int, high: int = MAX_ROWS):  # type: ignore[no-untyped-def]
    """(first day, last day, count) of one of the ``spans``; the count is drawn uniformly among the possible counts
    (so the smallest count allowed is not the most likely answer)."""
    by_count = spans(times, now, low, high)
    if not by_count:
        return None
    count = rng.choice(sorted(by_count))
    start, end = rng.choice(by_count[count])
    return start, end, count


def _encounter_spans(b: HardBuilder, now, rng) -> list[Scenario]:  # type: ignore[no-untyped-def]
    picked = _span(rng, list(b.chart.encounter_starts), now, PAGE + 1)
    return [] if picked is None else [_encounter_item(b, now, *picked)]


def _encounter_item(b: HardBuilder, now, start: date, end: date, count: int) -> Scenario:  # type: ignore[no-untyped-def]
    key = ("count_encounters", start.isoformat(), end.isoformat())
    index, template = b.phrasing(NAME, key, ENCOUNTER_PHRASINGS)
    question = template.format(start=start.isoformat(), end=end.isoformat(), first_year=start.year, last_year=end.year)
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format="Answer with one whole number (both days included).",
        answer=exact_integer(count),
        phrasing=index,
        meta={"form": "count_encounters", "since": start.isoformat(), "until": end.isoformat()},
    )


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """Every row of the window counted (or averaged): the search must not leave rows out."""
    form = sc.meta["form"]
    if form == "count_encounters":
        result = await tools.call(
            "search_encounters",
            complete=True,
            patient=sc.patient,
            since=sc.meta["since"],
            until=sc.meta["until"],
            limit=MAX_ROWS,
        )
        return OracleAnswer(str(len(result.rows)), refs(result.rows))
    if form == "count_immunizations":
        result = await tools.call("search_immunizations", complete=True, patient=sc.patient, limit=MAX_ROWS)
        shots = [r for r in result.rows if r.get("status") in (None, "completed")]
        return OracleAnswer(str(len(shots)), refs(shots))
    if form == "count_results":
        rows = await observations(tools, sc.patient, sc.meta["loinc"], since=sc.meta["since"], until=sc.meta["until"])
        return OracleAnswer(str(len(rows)), refs(rows))
    rows = await observations(tools, sc.patient, sc.meta["loinc"])
    if not rows:
        return OracleAnswer("none", [])
    average = mean(numeric(r) for r in rows)
    return OracleAnswer(quantity_text(average, rows[0].get("unit"), stated_decimals(sc.question)), refs(rows))


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=20,
        until=2,
        generate=generate,
        solve=solve,
        description="Counts and means over many rows: encounters or results in a window, vaccine doses, a lab's mean.",
        phrasings={
            "count_results": COUNT_PHRASINGS,
            "count_encounters": ENCOUNTER_PHRASINGS,
            "count_immunizations": IMMUNIZATION_PHRASINGS,
            "mean_results": MEAN_PHRASINGS,
        },
    )
)
