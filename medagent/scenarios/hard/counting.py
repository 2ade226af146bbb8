"""Exact counting and aggregation over more rows than one page of a tool (20 by default).

- ``count_results``: how many results of a lab/vital are in the record by now (21-100 of them).
- ``count_encounters``: how many encounters started in a span of calendar years (21-100), with no
  encounter within 7 days of either boundary (so time zones and overnight stays cannot change the count).
- ``mean_results``: the mean of every result of a lab/vital by now (at least 10 of them).

Codes with two results at the same moment are skipped (a recorded-twice result makes "how many" and
"the mean" ambiguous). Counts are exact (tolerance 0).
"""

from __future__ import annotations

from datetime import date, timedelta
from statistics import mean

from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import LABS
from medagent.scenarios.expect import number_answer, rounding_phrase
from medagent.scenarios.hard.common import HardBuilder, exact_integer
from medagent.scenarios.models import Scenario

CATEGORY = "count_aggregate"
PAGE = 20  # the tools' default page
MAX_ROWS = 100  # the tools' largest page
MEAN_MIN_ROWS = 10
BOUNDARY_MARGIN = timedelta(days=7)
COUNT_CODES = ["29463-7", "39156-5", "8480-6", "718-7", "2093-3", "18262-6", "2339-0", "38483-4", "4548-4",
               "33914-3"]
MEAN_CODES = ["29463-7", "39156-5", "8480-6", "8462-4", "718-7", "2093-3", "18262-6", "2339-0", "4548-4", "2571-8"]

COUNT_PHRASINGS = [
    "How many {lab} results (LOINC {loinc}) are recorded in the patient's chart up to now?",
    "Count every {lab} measurement (LOINC {loinc}) in the record so far. How many are there?",
    "What is the total number of {lab} observations (LOINC {loinc}) documented for this patient by now?",
    "How many times has the patient's {lab} (LOINC {loinc}) been measured, counting all results up to now?",
    "Up to now, how many separate {lab} (LOINC {loinc}) results does the chart hold?",
    "Give the exact number of {lab} results (LOINC {loinc}) on file for this patient as of now.",
]
ENCOUNTER_PHRASINGS = [
    "How many encounters (visits of any kind) did the patient have from {start} to {end}?",
    "Count the patient's encounters of every class that started between {start} and {end}. How many are there?",
    "What is the number of visits (all encounter types) in the record dated from {start} through {end}?",
    "Between {start} and {end}, how many encounters of any type does the chart show?",
    "In the calendar years {first_year} to {last_year} ({start} to {end}), how many encounters were recorded?",
    "Tell me exactly how many encounters started from {start} to {end}, counting every class of visit.",
]
MEAN_PHRASINGS = [
    "What is the mean of all {lab} results (LOINC {loinc}) recorded for the patient up to now?",
    "Average every {lab} value (LOINC {loinc}) in the chart so far. What is the mean?",
    "Across all of the patient's {lab} measurements (LOINC {loinc}) up to now, what is the average value?",
    "Taking every {lab} (LOINC {loinc}) result documented by now, what is their arithmetic mean?",
    "What was the patient's average {lab} (LOINC {loinc}) over the whole record to date?",
    "Compute the mean {lab} (LOINC {loinc}) over every result on file as of now.",
]


def generate(b: HardBuilder) -> list[Scenario]:
    now = b.end
    out: list[Scenario] = []
    rng = b.rng(CATEGORY)
    countable = []
    for code in COUNT_CODES:
        facts = [f for f in b.chart.values(code) if f.when <= now]
        if PAGE < len(facts) <= MAX_ROWS and len({f.when for f in facts}) == len(facts):
            countable.append((code, facts))
    for code, facts in rng.sample(countable, min(3, len(countable))):
        key = ("count_results", code)
        index, template = b.phrasing(CATEGORY, key, COUNT_PHRASINGS)
        out.append(b.ehrqa(CATEGORY, key, now=now, question=template.format(lab=LABS[code].label, loinc=code),
                           answer_format="Answer with one whole number.", answer=exact_integer(len(facts)),
                           phrasing=index, provenance=[f"Observation/{f.id}" for f in facts],
                           meta={"form": "count_results", "loinc": code}))
    out.extend(_encounter_spans(b, now, rng))
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
        answer = answer.model_copy(update={"tolerance": answer.tolerance.model_copy(update={"abs": 10.0 ** -decimals})})
        key = ("mean_results", code)
        index, template = b.phrasing(CATEGORY, key, MEAN_PHRASINGS)
        out.append(b.ehrqa(CATEGORY, key, now=now, question=template.format(lab=info.label, loinc=code),
                           answer_format=f"Answer with the mean in {info.unit}, {rounding_phrase(decimals)}.",
                           answer=answer, phrasing=index, provenance=[f"Observation/{f.id}" for f in facts],
                           meta={"form": "mean_results", "loinc": code}))
    return out


def _encounter_spans(b: HardBuilder, now, rng) -> list[Scenario]:  # type: ignore[no-untyped-def]
    starts = sorted(t for t in b.chart.encounter_starts if t <= now)
    if len(starts) <= PAGE:
        return []
    years = sorted({day_of(t).year for t in starts})
    spans = []
    for i, first in enumerate(years):
        for last in years[i + 1:]:
            start, end = date(first, 1, 1), date(last, 12, 31)
            if end >= day_of(now) - BOUNDARY_MARGIN:
                continue
            inside = [t for t in starts if start <= day_of(t) <= end]
            near = [t for t in starts if abs(day_of(t) - start) <= BOUNDARY_MARGIN
                    or abs(day_of(t) - end) <= BOUNDARY_MARGIN]
            if PAGE < len(inside) <= MAX_ROWS and not near:
                spans.append((start, end, len(inside)))
    out = []
    for start, end, count in rng.sample(spans, min(2, len(spans))):
        out.append(_encounter_item(b, now, start, end, count))
    return out


def _encounter_item(b: HardBuilder, now, start: date, end: date, count: int) -> Scenario:  # type: ignore[no-untyped-def]
    key = ("count_encounters", start.isoformat(), end.isoformat())
    index, template = b.phrasing(CATEGORY, key, ENCOUNTER_PHRASINGS)
    question = template.format(start=start.isoformat(), end=end.isoformat(), first_year=start.year,
                               last_year=end.year)
    return b.ehrqa(CATEGORY, key, now=now, question=question,
                   answer_format="Answer with one whole number (both days included).", answer=exact_integer(count),
                   phrasing=index, meta={"form": "count_encounters", "since": start.isoformat(),
                                         "until": end.isoformat()})
