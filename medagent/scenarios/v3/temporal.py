"""Temporal windows (v3): values located by the dates of a diagnosis, which the summary line does not give.

- ``window_extreme``: the highest / lowest value of a lab from a condition's onset to its resolution (or now), where
  the setup adds a result marked entered in error beyond the real extreme (the summary's min/max includes it).
- ``paired_value``: the value of a second measurement taken at the same moment as the highest / lowest of the first
  in the window (the diastolic of the reading with the highest systolic since hypertension; the LDL drawn with the
  highest total cholesterol since hyperlipidemia ...).
- ``first_after``: the first result on or after the day of the first diagnosis when earlier results exist (v2's form).

Clinically paired condition -> lab only (``hard.temporal.FOLLOWED_BY``), conditions recorded once, at least 5 results
in the window, and every other value of the answered measurement more than twice the tolerance away.
"""

from __future__ import annotations

import random
from datetime import datetime

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import ConditionFact, ObservationFact
from medagent.scenarios.chart_reads import conditions_oldest_first, every_row, latest_observation
from medagent.scenarios.clock import at_clock, day_of
from medagent.scenarios.codes import LABS, SNOMED
from medagent.scenarios.expect import number_answer, rounding_phrase
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.hard.temporal import EXTREME_PHRASINGS, FIRST_PHRASINGS, FOLLOWED_BY
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, quantity_text, rows_of, stated_decimals, utc_day
from medagent.scenarios.v3.common import builder, lab_number
from medagent.scenarios.v3.fixtures import blood_pressure, lab_result

NAME = "temporal_window"
MIN_ROWS = 5
MAX_ROWS = 40
PER_PATIENT = 5
# the measurement asked about -> the one taken with it (same moment)
PAIRED = {
    "8480-6": "8462-4",
    "8462-4": "8480-6",
    "2093-3": "18262-6",
    "18262-6": "2093-3",
    "2571-8": "2085-9",
    "4548-4": "2339-0",
}
EIE_RULE = "Results marked entered in error do not count."
PAIRED_PHRASINGS = [
    "From the day {condition} (SNOMED {snomed}) was diagnosed until {until}, take the {which} {lab} (LOINC {loinc}). "
    "What was the {other} (LOINC {other_loinc}) measured at the same time?",
    "Find the {which} {lab} result (LOINC {loinc}) between the onset of {condition} (SNOMED {snomed}) and {until}; "
    "what {other} (LOINC {other_loinc}) was recorded with it?",
    "Since {condition} (SNOMED {snomed}) was first documented, and until {until}, which {other} value (LOINC "
    "{other_loinc}) accompanied the {which} {lab} (LOINC {loinc})?",
    "Look at the {lab} results (LOINC {loinc}) from the diagnosis of {condition} (SNOMED {snomed}) to {until}. On the "
    "{which} of them, what was the {other} (LOINC {other_loinc})?",
    "Report the {other} (LOINC {other_loinc}) taken together with the {which} {lab} (LOINC {loinc}) recorded while the "
    "patient had {condition} (SNOMED {snomed}), up to {until}.",
    "Between the first documentation of {condition} (SNOMED {snomed}) and {until}, the {lab} (LOINC {loinc}) peaked or "
    "bottomed out once: for its {which} value, what {other} (LOINC {other_loinc}) was measured at that moment?",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = builder(given)
    now = b.end
    counts: dict[str, int] = {}
    for condition in b.chart.conditions:
        counts[condition.code.code] = counts.get(condition.code.code, 0) + 1
    candidates: list[tuple[str, ConditionFact, str]] = []
    for condition in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id)):
        if counts[condition.code.code] != 1 or condition.code.code not in FOLLOWED_BY or condition.onset > now:
            continue
        for code in FOLLOWED_BY[condition.code.code]:
            for form in ("window_extreme", "paired_value", "first_after"):
                candidates.append((form, condition, code))
    rng = b.rng(NAME)
    rng.shuffle(candidates)
    out: list[Scenario] = []
    for form, condition, code in candidates:
        if len(out) >= PER_PATIENT:
            break
        which = rng.choice(["highest", "lowest"])
        if form == "window_extreme":
            made = _extreme(b, condition, code, now, which, rng)
        elif form == "paired_value":
            made = _paired(b, condition, code, now, which)
        else:
            made = _first_after(b, condition, code, now)
        if made is not None and all(s.id != made.id for s in out):
            out.append(made)
    return out


def _window(b: HardBuilder, condition: ConditionFact, code: str, now: datetime) -> tuple[list[ObservationFact], str]:
    facts = [f for f in b.chart.values(code) if f.when <= now]
    end = condition.abatement if condition.abatement is not None and condition.abatement <= now else now
    inside = [f for f in facts if day_of(condition.onset) <= day_of(f.when) <= day_of(end)]
    return inside, ("the day it resolved" if end is not now else "now")


def _extreme(
    b: HardBuilder, condition: ConditionFact, code: str, now: datetime, which: str, rng: random.Random
) -> Scenario | None:
    info = LABS[code]
    inside, until = _window(b, condition, code, now)
    if not MIN_ROWS <= len(inside) <= MAX_ROWS:
        return None
    pick = max(inside, key=lambda f: f.value) if which == "highest" else min(inside, key=lambda f: f.value)
    if len([f for f in inside if f.value == pick.value]) != 1:
        return None
    made = number_answer(pick.value, info, [f.value for f in b.chart.values(code)])
    if made is None:
        return None
    _, decimals = made
    key = ("window_extreme", condition.id, code, which)
    sid = b.id_for("ehrqa", NAME, *key)
    wrong = round(pick.value * (1.25 if which == "highest" else 0.75), max(decimals, 1))
    taken = {f.when for f in b.chart.values(code)}
    first, last = day_of(condition.onset), day_of(inside[-1].when)
    when = at_clock(first + (last - first) * rng.uniform(0.2, 0.8), rng.randint(8, 16))
    if when in taken or abs(wrong - pick.value) <= 2 * 10.0**-decimals:
        return None
    if info.component_of:  # a blood pressure: the panel, entered in error
        panel = blood_pressure(
            sid, 0, b.chart.patient_id, *((wrong, 80.0) if code == "8480-6" else (150.0, wrong)), when
        )
        panel["status"] = "entered-in-error"
        setup = [panel]
    else:
        setup = [
            lab_result(
                sid,
                0,
                b.chart.patient_id,
                code,
                inside[0].display,
                wrong,
                inside[0].unit,
                when,
                status="entered-in-error",
            )
        ]
    index, template = b.phrasing(NAME, key, EXTREME_PHRASINGS)
    question = (
        template.format(
            which=which,
            lab=info.label,
            loinc=code,
            condition=condition.code.display,
            snomed=condition.code.code,
            until=until,
        )
        + " "
        + EIE_RULE
    )
    fmt = f"Answer with the value in {info.unit}, {rounding_phrase(decimals)}, or 'none' if there is no such result."
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format=fmt,
        answer=lab_number(pick.value, info, decimals),
        phrasing=index,
        setup=setup,
        provenance=[f"Condition/{condition.id}", f"Observation/{pick.id}"],
        meta={
            "form": "window_extreme",
            "condition": [SNOMED, condition.code.code],
            "loinc": code,
            "which": which,
            "rows": len(inside),
        },
    )


def _paired(b: HardBuilder, condition: ConditionFact, code: str, now: datetime, which: str) -> Scenario | None:
    other = PAIRED.get(code)
    if other is None:
        return None
    inside, until = _window(b, condition, code, now)
    if not MIN_ROWS <= len(inside) <= MAX_ROWS:
        return None
    pick = max(inside, key=lambda f: f.value) if which == "highest" else min(inside, key=lambda f: f.value)
    if len([f for f in inside if f.value == pick.value]) != 1:
        return None
    partners = [f for f in b.chart.values(other) if f.when == pick.when]
    if len(partners) != 1:
        return None
    info = LABS[other]
    made = number_answer(partners[0].value, info, [f.value for f in b.chart.values(other)])
    if made is None:
        return None
    _, decimals = made
    key = ("paired_value", condition.id, code, which)
    index, template = b.phrasing(NAME, key, PAIRED_PHRASINGS)
    question = template.format(
        which=which,
        lab=LABS[code].label,
        loinc=code,
        other=info.label,
        other_loinc=other,
        condition=condition.code.display,
        snomed=condition.code.code,
        until=until,
    )
    fmt = f"Answer with the {info.label} in {info.unit}, {rounding_phrase(decimals)}."
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format=fmt,
        answer=lab_number(partners[0].value, info, decimals),
        phrasing=index,
        provenance=[f"Condition/{condition.id}", f"Observation/{pick.id}", f"Observation/{partners[0].id}"],
        meta={
            "form": "paired_value",
            "condition": [SNOMED, condition.code.code],
            "loinc": code,
            "other": other,
            "which": which,
            "rows": len(inside),
        },
    )


def _first_after(b: HardBuilder, condition: ConditionFact, code: str, now: datetime) -> Scenario | None:
    info = LABS[code]
    facts = [f for f in b.chart.values(code) if f.when <= now]
    onset_day = day_of(condition.onset)
    before = [f for f in facts if day_of(f.when) < onset_day]
    after = [f for f in facts if day_of(f.when) >= onset_day]
    if not before or not after or len(facts) < MIN_ROWS:
        return None
    first_day = day_of(after[0].when)
    if len([f for f in after if day_of(f.when) == first_day]) != 1:
        return None  # several results on the first day: "first" would hinge on the clock time
    if first_day == onset_day and any((onset_day - day_of(f.when)).days <= 1 for f in before):
        return None  # a result the day before the diagnosis: time zones could move it across
    first = after[0]
    made = number_answer(first.value, info, [f.value for f in b.chart.values(code)])
    if made is None:
        return None
    _, decimals = made
    key = ("first_after", condition.id, code)
    index, template = b.phrasing(NAME, key, FIRST_PHRASINGS)
    question = template.format(lab=info.label, loinc=code, condition=condition.code.display, snomed=condition.code.code)
    fmt = f"Answer with the value in {info.unit}, {rounding_phrase(decimals)}, or 'none' if there is no such result."
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=question,
        answer_format=fmt,
        answer=lab_number(first.value, info, decimals),
        phrasing=index,
        provenance=[f"Condition/{condition.id}", f"Observation/{first.id}"],
        meta={"form": "first_after", "condition": [SNOMED, condition.code.code], "loinc": code, "rows": len(facts)},
    )


# ---------- the oracle ----------


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The condition's dates, then the window's results (entered-in-error ones left out)."""
    _, snomed = sc.meta["condition"]
    code = sc.meta["loinc"]
    found = await conditions_oldest_first(tools, sc.patient, snomed)
    if len(found) != 1:
        raise ToolGap(f"expected one {snomed} condition, found {len(found)}")
    condition = found[0]
    since = utc_day(condition["onset"])
    decimals = stated_decimals(sc.question)
    if sc.meta["form"] == "first_after":
        row = await latest_observation(tools, sc.patient, code, since=since, order="oldest")
        if row is None:
            return OracleAnswer("none", [condition["ref"]])
        return OracleAnswer(quantity_text(numeric(row), row.get("unit"), decimals), [condition["ref"], row["ref"]])
    until = utc_day(condition["abatement"]) if condition.get("abatement") else None
    rows = [
        r
        for r in rows_of(
            await every_row(tools, "search_observations", patient=sc.patient, code=code, since=since, until=until), code
        )
        if r.get("status") != "entered-in-error"
    ]
    if not rows:
        return OracleAnswer("none", [condition["ref"]])
    best = (max if sc.meta["which"] == "highest" else min)(rows, key=numeric)
    if sc.meta["form"] == "window_extreme":
        return OracleAnswer(quantity_text(numeric(best), best.get("unit"), decimals), [condition["ref"], best["ref"]])
    other = sc.meta["other"]
    partner = await latest_observation(tools, sc.patient, other, since=best["ref"], until=best["ref"])
    if partner is None:
        raise ToolGap(f"no {other} at the moment of {best['ref']}")
    return OracleAnswer(
        quantity_text(numeric(partner), partner.get("unit"), decimals), [condition["ref"], best["ref"], partner["ref"]]
    )


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=10,
        since=3,
        generate=generate,
        solve=solve,
        phrasings={
            "window_extreme": EXTREME_PHRASINGS,
            "paired_value": PAIRED_PHRASINGS,
            "first_after": FIRST_PHRASINGS,
        },
        description="Values located by a diagnosis' dates that the summary line does not give: the extreme without the "
        "result entered in error, the value measured with the extreme, the first result after the onset.",
    )
)
