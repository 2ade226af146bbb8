"""Counting and aggregation (v3): questions that ``count=true`` and a search's summary line do not answer.

- ``count_distinct``: results of a lab in a span of calendar years (6-40 of them, the count drawn uniformly among
  those the chart allows), where the setup adds copies of some results
  from a second feed (same time, same value: count once) and results marked entered in error (do not count).
- ``count_after_event``: results of a lab in the N days after a condition was first diagnosed (the window comes
  from another resource), with an entered-in-error result in the window.
- ``mean_converted``: the mean of a lab over a span where some results came from an outside laboratory in another
  unit (glucose in mmol/L, creatinine in umol/L, cholesterol in mmol/L, hemoglobin in g/L): convert, then average.
- ``encounter_days``: on how many different days the patient had an encounter in a span (some days hold two).

Counts are exact; ``count=true`` over the same search gives another number in every item (tested).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from statistics import mean
from typing import Any

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import every_row
from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import LABS
from medagent.scenarios.expect import rounding_phrase
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.hard.counting import COUNT_CODES, _span, spans
from medagent.scenarios.hard.temporal import FOLLOWED_BY
from medagent.scenarios.identity import fixture_id, rng_for
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import (
    numeric,
    quantity_text,
    refs,
    rows_of,
    stated_decimals,
    utc_date,
    utc_day,
    utc_moment,
)
from medagent.scenarios.v3.common import builder, number
from medagent.scenarios.v3.fixtures import lab_result

NAME = "count_aggregate"
FEED_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.2"  # the second interface feed's result identifiers
WINDOWS = [365, 730, 1095, 1825, 2555, 3650]
EDGE = timedelta(days=2)
DISTINCT_COUNTS = (4, 40)  # results in a count_distinct span
SPANS_PER_LAB = 6  # candidate spans (each with its own count) per lab, and per chart for encounter days
WINDOWS_PER_CHART = 24  # candidate (condition, lab, window) items per chart
PER_PATIENT = {"count_distinct": 2, "count_after_event": 2, "encounter_days": 1}
MAX_SHARE = 0.10  # no count answers more than a tenth of a form's items in a split
# code -> (other unit, factor into the chart's unit, decimals written in the other unit)
CONVERTED = {
    "2339-0": ("mmol/L", 18.0182, 1),
    "38483-4": ("umol/L", 1 / 88.42, 0),
    "2093-3": ("mmol/L", 38.67, 2),
    "18262-6": ("mmol/L", 38.67, 2),
    "718-7": ("g/L", 0.1, 0),
}
COUNT_RULE = (
    "Count each result once: a result received twice (same time and same value) counts once, and a result "
    "marked entered in error does not count."
)

DISTINCT_PHRASINGS = [
    "How many {lab} results (LOINC {loinc}) does the chart hold from {start} to {end}?",
    "Count the patient's {lab} measurements (LOINC {loinc}) dated between {start} and {end}.",
    "What is the number of distinct {lab} results (LOINC {loinc}) from {start} through {end}?",
    "How many times was {lab} (LOINC {loinc}) actually measured between {start} and {end}?",
    "Give the exact number of {lab} results (LOINC {loinc}) on file for {start} to {end}.",
    "In the calendar years {first_year} to {last_year}, how many {lab} (LOINC {loinc}) results were recorded?",
]
AFTER_PHRASINGS = [
    "How many {lab} results (LOINC {loinc}) were recorded in the {days} days after {condition} (SNOMED {snomed}) was "
    "first diagnosed?",
    "After the first diagnosis of {condition} (SNOMED {snomed}), how many {lab} results (LOINC {loinc}) followed "
    "within {days} days?",
    "Count the {lab} measurements (LOINC {loinc}) in the {days}-day window that starts on the day {condition} "
    "(SNOMED {snomed}) was first diagnosed.",
    "Within {days} days of the first {condition} diagnosis (SNOMED {snomed}), how many {lab} (LOINC {loinc}) results "
    "are on file?",
    "Starting on the onset day of {condition} (SNOMED {snomed}), how many {lab} results (LOINC {loinc}) are dated in "
    "the next {days} days?",
    "How many {lab} (LOINC {loinc}) values did the chart collect in the first {days} days after {condition} "
    "(SNOMED {snomed}) began?",
]
MEAN_PHRASINGS = [
    "What is the mean of all {lab} results (LOINC {loinc}) from {start} to {end}?",
    "Average every {lab} value (LOINC {loinc}) dated between {start} and {end}. What is the mean?",
    "Across the patient's {lab} results (LOINC {loinc}) from {start} through {end}, what is the average?",
    "Taking every {lab} (LOINC {loinc}) result of {start} to {end}, what is their arithmetic mean?",
    "What was the patient's average {lab} (LOINC {loinc}) over {start} to {end}?",
    "Compute the mean {lab} (LOINC {loinc}) over the results dated {start} to {end}.",
]
DAYS_PHRASINGS = [
    "On how many different days did the patient have at least one encounter from {start} to {end}?",
    "Count the distinct calendar days with an encounter of any kind between {start} and {end}.",
    "How many separate visit days (days with one or more encounters) does the chart show from {start} through {end}?",
    "Between {start} and {end}, on how many days was the patient seen (any encounter class)?",
    "In the calendar years {first_year} to {last_year}, how many different days had an encounter?",
    "Give the number of distinct days with at least one encounter, {start} to {end}.",
]


def count_answer(value: int):  # type: ignore[no-untyped-def]
    return number(float(value), None, 0.0)


def generate(given: ChartInput) -> list[Scenario]:
    """Every candidate of this chart: several spans, windows and labs per form, each with its own count; ``select``
    keeps a few per patient so that no count is frequent."""
    b = builder(given)
    now = b.end
    out = _distinct_candidates(b, now) + _after_event_candidates(b, now) + _encounter_candidates(b, now)
    made = _mean_converted(b, now, b.rng(NAME, "mean_converted"), set())
    return out + ([made] if made is not None else [])


def select(items: list[Scenario], seed: int) -> list[Scenario]:
    """Per split and counting form: at most ``PER_PATIENT`` items of a patient (another lab each), no count held by
    more than about ``MAX_SHARE`` of the form's items (counts least used so far first), and in test no count that
    is among dev's most frequent for the same question shape (form and lab): a count guessed from dev is never
    right (the most specific shape dev holds decides, as a prior would). Every ``mean_converted`` item is kept."""
    out: list[Scenario] = []
    frequent: dict[tuple[str, str], set[object]] = {}
    for split in ("dev", "test"):
        mine = sorted((s for s in items if s.split == split), key=lambda s: s.id)
        for form in sorted({str(s.meta["form"]) for s in mine}):
            pool = [s for s in mine if s.meta["form"] == form]
            if form not in PER_PATIENT:
                out += pool
                continue
            if split == "test":
                pool = [s for s in pool if s.answer.value not in _guessed(s, frequent)]
            chosen = _spread(pool, PER_PATIENT[form], seed, split, form)
            out += chosen
            if split == "dev":
                frequent |= _most_frequent(chosen)
    return out


def _shapes(item: Scenario) -> list[tuple[str, str]]:
    """The question's shapes a prior may learn counts by: its form alone, with its lab, with its whole key (lab
    and dates: identical spans of yearly results have the same count)."""
    form = str(item.meta["form"])
    key = "/".join(str(k) for k in item.meta.get("key", [])[1:])
    return [(form, ""), (form, str(item.meta.get("loinc") or "")), (form, "key:" + key)]


def _guessed(item: Scenario, frequent: dict[tuple[str, str], set[object]]) -> set[object]:
    """What dev would guess for this item: the most frequent counts of its most specific shape seen in dev."""
    return next((frequent[shape] for shape in reversed(_shapes(item)) if shape in frequent), set())


def _most_frequent(chosen: list[Scenario]) -> dict[tuple[str, str], set[object]]:
    """Each shape (``_shapes``) -> the counts most frequent among these items of it (all of them on a tie)."""
    tallies: dict[tuple[str, str], Counter[object]] = defaultdict(Counter)
    for item in chosen:
        for shape in set(_shapes(item)):
            tallies[shape][item.answer.value] += 1
    return {key: {v for v, n in tally.items() if n == max(tally.values())} for key, tally in tallies.items()}


def _spread(pool: list[Scenario], per_patient: int, seed: int, split: str, form: str) -> list[Scenario]:
    slots = sum(min(per_patient, len(v)) for v in _by_patient(pool).values())
    chosen: list[Scenario] = []
    for cap in range(max(1, round(MAX_SHARE * slots)), 0, -1):
        chosen = _fill(pool, per_patient, cap, rng_for(seed, "v3-select", NAME, split, form, cap))
        most = max(Counter(s.answer.value for s in chosen).values(), default=0)
        if most <= max(1, round(MAX_SHARE * len(chosen))):
            break
    return chosen


def _by_patient(pool: list[Scenario]) -> dict[str, list[Scenario]]:
    grouped: dict[str, list[Scenario]] = defaultdict(list)
    for item in pool:
        grouped[item.patient].append(item)
    return grouped


def _fill(pool: list[Scenario], per_patient: int, cap: int, rng: random.Random) -> list[Scenario]:
    """Round by round, each patient (in a seeded order) takes one item whose count is least used so far (under
    ``cap``), of a lab it was not yet asked about."""
    grouped = _by_patient(pool)
    order = sorted(grouped)
    rng.shuffle(order)
    used: Counter[object] = Counter()
    taken: dict[str, list[Scenario]] = defaultdict(list)
    for _ in range(per_patient):
        for patient in order:
            asked = {t.meta.get("loinc") for t in taken[patient]}
            options = [
                s
                for s in grouped[patient]
                if used[s.answer.value] < cap
                and (s.meta.get("loinc") is None or s.meta.get("loinc") not in asked)
                and s not in taken[patient]
            ]
            if options:
                fewest = min(used[s.answer.value] for s in options)
                pick = rng.choice([s for s in options if used[s.answer.value] == fewest])
                used[pick.answer.value] += 1
                taken[patient].append(pick)
    return [s for patient in sorted(taken) for s in taken[patient]]


def _unique_times(b: HardBuilder, code: str) -> bool:
    facts = b.chart.values(code)
    return len({f.when for f in facts}) == len(facts)


def _noise_time(rng: random.Random, start: date, end: date, taken: set[datetime], hour: int = 10) -> datetime | None:
    from medagent.scenarios.clock import at_clock

    for _ in range(20):
        day = start + timedelta(days=rng.randint(8, max(8, (end - start).days - 8)))
        when = at_clock(day, rng.randint(7, 17)) + timedelta(minutes=rng.randint(0, 59))
        if when not in taken and start <= day <= end:
            return when
    return None


def _copy_of(sid: str, index: int, fact, patient: str) -> dict:  # type: ignore[no-untyped-def]
    """The same result again from a second feed: same code, time and value; its own id and feed identifier."""
    resource = lab_result(sid, index, patient, fact.code, fact.display, fact.value, fact.unit, fact.when)
    resource["identifier"] = [{"system": FEED_SYSTEM, "value": fixture_id(sid, 1000 + index)}]
    return resource


def _entered_in_error(
    sid: str, index: int, patient: str, code: str, display: str, value: float, unit: str, when: datetime
) -> dict:
    return lab_result(sid, index, patient, code, display, value, unit, when, status="entered-in-error")


def _distinct_candidates(b: HardBuilder, now: datetime) -> list[Scenario]:
    out = []
    for code in (c for c in COUNT_CODES if _unique_times(b, c) and c != "8480-6"):
        facts = b.chart.values(code)
        by_count = spans([f.when for f in facts], now, *DISTINCT_COUNTS)
        rng = b.rng(NAME, "count_distinct", code)
        for count in rng.sample(sorted(by_count), min(SPANS_PER_LAB, len(by_count))):
            start, end = rng.choice(by_count[count])
            made = _distinct(b, now, code, start, end, count)
            if made is not None:
                out.append(made)
    return out


def _distinct(b: HardBuilder, now: datetime, code: str, start: date, end: date, count: int) -> Scenario | None:
    facts = b.chart.values(code)
    inside = [f for f in facts if start <= day_of(f.when) <= end]
    key = ("count_distinct", code, start.isoformat(), end.isoformat())
    rng = b.rng(NAME, *key)
    sid = b.id_for("ehrqa", NAME, *key)
    copies = rng.sample(inside, rng.choice([1, 2, 3]))
    setup = [_copy_of(sid, i, f, b.chart.patient_id) for i, f in enumerate(copies)]
    taken = {f.when for f in facts}
    for i in range(rng.choice([1, 2])):
        when = _noise_time(rng, start, end, taken)
        if when is None:
            return None
        taken.add(when)
        base = rng.choice(inside)
        setup.append(
            _entered_in_error(
                sid,
                10 + i,
                b.chart.patient_id,
                code,
                base.display,
                round(base.value * rng.uniform(1.3, 1.8), 1),
                base.unit,
                when,
            )
        )
    index, template = b.phrasing(NAME, key, DISTINCT_PHRASINGS)
    info = LABS[code]
    question = (
        template.format(
            lab=info.label,
            loinc=code,
            start=start.isoformat(),
            end=end.isoformat(),
            first_year=start.year,
            last_year=end.year,
        )
        + " "
        + COUNT_RULE
    )
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format="Answer with one whole number (both days included).",
        answer=count_answer(count),
        phrasing=index,
        provenance=[f"Observation/{f.id}" for f in inside],
        setup=setup,
        meta={
            "form": "count_distinct",
            "loinc": code,
            "since": start.isoformat(),
            "until": end.isoformat(),
            "listed": count + len(setup),
        },
    )


def _after_event_candidates(b: HardBuilder, now: datetime) -> list[Scenario]:
    """Up to ``WINDOWS_PER_CHART`` (condition, lab, window) items, each window holding 3-25 results."""
    rng = b.rng(NAME, "count_after_event")
    out: list[Scenario] = []
    firsts: dict[str, object] = {}
    for c in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id)):
        firsts.setdefault(c.code.code, c)
    options = [
        (c, lab, days)
        for code, c in sorted(firsts.items())
        if code in FOLLOWED_BY
        for lab in FOLLOWED_BY[code]
        if lab in LABS and _unique_times(b, lab)
        for days in WINDOWS
    ]
    for condition, code, days in rng.sample(options, len(options)):
        if len(out) >= WINDOWS_PER_CHART:
            break
        onset = day_of(condition.onset)  # type: ignore[attr-defined]
        last = onset + timedelta(days=days)
        if last >= day_of(now) - EDGE:
            continue
        facts = b.chart.values(code)
        if any(abs((day_of(f.when) - last).days) <= 2 or (day_of(f.when) - onset).days == -1 for f in facts):
            continue  # nothing on the window's last days, nor the day before the diagnosis (time zones)
        inside = [f for f in facts if onset <= day_of(f.when) <= last]
        if not 3 <= len(inside) <= 25:
            continue
        key = ("count_after_event", condition.id, code, days)  # type: ignore[attr-defined]
        noise = b.rng(NAME, *key)
        sid = b.id_for("ehrqa", NAME, *key)
        when = _noise_time(noise, onset, last, {f.when for f in facts})
        if when is None:
            continue
        base = noise.choice(inside)
        setup = [
            _entered_in_error(
                sid,
                0,
                b.chart.patient_id,
                code,
                base.display,
                round(base.value * noise.uniform(0.6, 0.8), 1),
                base.unit,
                when,
            )
        ]
        if noise.random() < 0.5:
            setup.append(_copy_of(sid, 1, noise.choice(inside), b.chart.patient_id))
        info = LABS[code]
        index, template = b.phrasing(NAME, key, AFTER_PHRASINGS)
        question = template.format(
            lab=info.label,
            loinc=code,
            days=days,
            condition=condition.code.display,  # type: ignore[attr-defined]
            snomed=condition.code.code,  # type: ignore[attr-defined]
        ) + (f" The window runs from the diagnosis day through the {days}th day after it. " + COUNT_RULE)
        out.append(
            b.ehrqa(
                NAME,
                key,
                now=now,
                question=question,
                answer_format="Answer with one whole number.",
                answer=count_answer(len(inside)),
                phrasing=index,
                setup=setup,
                provenance=[f"Condition/{condition.id}", *(f"Observation/{f.id}" for f in inside)],  # type: ignore[attr-defined]
                meta={
                    "form": "count_after_event",
                    "loinc": code,
                    "snomed": condition.code.code,  # type: ignore[attr-defined]
                    "days": days,
                    "listed": len(inside) + len(setup),
                },
            )
        )
    return out


def _mean_converted(b: HardBuilder, now: datetime, rng: random.Random, asked: set[str]) -> Scenario | None:
    for code in rng.sample(sorted(CONVERTED), len(CONVERTED)):
        if not _unique_times(b, code):
            continue
        facts = b.chart.values(code)
        picked = _span(rng, [f.when for f in facts], now, 4, 16)
        if picked is None:
            continue
        start, end, _ = picked
        inside = [f for f in facts if start <= day_of(f.when) <= end]
        unit, factor, written = CONVERTED[code]
        info = LABS[code]
        key = ("mean_converted", code, start.isoformat(), end.isoformat())
        sid = b.id_for("ehrqa", NAME, *key)
        taken = {f.when for f in facts}
        setup, converted = [], []
        for i in range(rng.choice([1, 2, 3])):
            when = _noise_time(rng, start, end, taken)
            if when is None:
                break
            taken.add(when)
            other = round(rng.choice(inside).value * rng.uniform(0.85, 1.15) / factor, written)
            converted.append(other * factor)
            setup.append(lab_result(sid, i, b.chart.patient_id, code, inside[0].display, other, unit, when))
        if not setup:
            continue
        values = [f.value for f in inside] + converted
        truth = mean(values)
        wrong = [mean(f.value for f in inside), mean([f.value for f in inside] + [c / factor for c in converted])]
        decimals = info.decimals + 1
        if any(abs(w - truth) <= 2 * 10.0**-decimals for w in wrong):
            continue
        index, template = b.phrasing(NAME, key, MEAN_PHRASINGS)
        question = template.format(lab=info.label, loinc=code, start=start.isoformat(), end=end.isoformat()) + (
            f" Some results came from an outside laboratory in {unit}: convert them to {info.unit} first."
        )
        return b.ehrqa(
            NAME,
            key,
            now=now,
            question=question,
            answer_format=f"Answer with the mean in {info.unit}, {rounding_phrase(decimals)}.",
            answer=number(truth, info.unit, 10.0**-decimals),
            phrasing=index,
            setup=setup,
            provenance=[f"Observation/{f.id}" for f in inside] + [f"Observation/{r['id']}" for r in setup],
            meta={
                "form": "mean_converted",
                "loinc": code,
                "since": start.isoformat(),
                "until": end.isoformat(),
                "other_unit": unit,
                "factor": factor,
            },
        )
    return None


def _encounter_candidates(b: HardBuilder, now: datetime) -> list[Scenario]:
    """Up to ``SPANS_PER_LAB`` spans of 8-30 encounters, each with some day holding two (the number of encounters
    is not the answer)."""
    starts = sorted(b.chart.encounter_starts)
    rng = b.rng(NAME, "encounter_days")
    out = []
    options: dict[int, list[tuple[date, date, int]]] = defaultdict(list)
    for count, found in spans(starts, now, 8, 30).items():
        for start, end in found:
            days = len({day_of(t) for t in starts if start <= day_of(t) <= end})
            if days < count:
                options[days].append((start, end, count))
    for days in rng.sample(sorted(options), min(SPANS_PER_LAB, len(options))):
        start, end, count = rng.choice(options[days])
        out.append(_encounter_days(b, now, start, end, days, count))
    return out


def _encounter_days(b: HardBuilder, now: datetime, start: date, end: date, days: int, count: int) -> Scenario:
    key = ("encounter_days", start.isoformat(), end.isoformat())
    index, template = b.phrasing(NAME, key, DAYS_PHRASINGS)
    question = (
        template.format(start=start.isoformat(), end=end.isoformat(), first_year=start.year, last_year=end.year)
        + " Days are calendar days in UTC."
    )
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format="Answer with one whole number (both days included).",
        answer=count_answer(days),
        phrasing=index,
        meta={"form": "encounter_days", "since": start.isoformat(), "until": end.isoformat(), "listed": count},
    )


# ---------- the oracle ----------


def _unit_key(unit: str) -> str:
    return unit.replace(" ", "").replace("µ", "u").lower()


def distinct_results(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results that count: not entered in error, and one per (moment, value) (a second feed's copy counts once)."""
    seen: dict[tuple[datetime, float], dict[str, Any]] = {}
    for row in rows:
        if row.get("status") != "entered-in-error":
            seen.setdefault((utc_moment(row.get("date")), numeric(row)), row)
    return list(seen.values())


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    form, patient = sc.meta["form"], sc.patient
    if form == "encounter_days":
        rows = await every_row(
            tools, "search_encounters", patient=patient, since=sc.meta["since"], until=sc.meta["until"]
        )
        return OracleAnswer(str(len({utc_day(r.get("start")) for r in rows})), refs(rows))
    code = sc.meta["loinc"]
    if form == "count_after_event":
        first = await tools.reads.first_condition(patient, sc.meta["snomed"])
        if first is None:
            raise ToolGap(f"no {sc.meta['snomed']} condition")
        onset = utc_date(first["onset"])
        since, until = onset.isoformat(), (onset + timedelta(days=int(sc.meta["days"]))).isoformat()
    else:
        since, until = sc.meta["since"], sc.meta["until"]
    rows = rows_of(
        await every_row(tools, "search_observations", patient=patient, code=code, since=since, until=until), code
    )
    counted = distinct_results(rows)
    if form != "mean_converted":
        return OracleAnswer(str(len(counted)), refs(counted))
    info = LABS[code]
    values = []
    factors = {_unit_key(u): f for u, f in info.unit_factors.items()} | {_unit_key(info.unit): 1.0}
    for row in counted:
        unit = row.get("unit") or ""
        factor = factors.get(_unit_key(unit))
        if factor is None:
            raise ToolGap(f"{row['ref']}: no conversion from {unit!r} to {info.unit}")
        values.append(numeric(row) * factor)
    return OracleAnswer(quantity_text(mean(values), info.unit, stated_decimals(sc.question)), refs(counted))


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=20,
        since=3,
        generate=generate,
        select=select,
        solve=solve,
        phrasings={
            "count_distinct": DISTINCT_PHRASINGS,
            "count_after_event": AFTER_PHRASINGS,
            "mean_converted": MEAN_PHRASINGS,
            "encounter_days": DAYS_PHRASINGS,
        },
        description="Counts and means that count=true and the summary line do not give: duplicate feeds and results "
        "entered in error, windows after a diagnosis, results in other units, distinct visit days.",
    )
)
