"""Abstention (v3): the latest values of three labs at now, some never measured by then; the lab does not predict which.

Each item asks for three labs from three different groups (metabolic panel, lipids, blood count / HbA1c / eGFR /
protein), at the end of the record or at an earlier moment, and mixes recorded and never-recorded labs. The items
of each split are chosen so that every lab is asked about as often recorded as not recorded (``select``): the
lab's name carries no information about whether it was measured. A field holds the value where one exists and
"not recorded" where none does (a number there fails, and so does "not recorded" where a value exists).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import LABS
from medagent.scenarios.expect import number_answer, rounding_phrase
from medagent.scenarios.hard.abstention import solve  # the same question form: each lab's latest, or "not recorded"
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.identity import rng_for
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.v3.common import builder, lab_number, none_field

NAME = "abstention"
CANDIDATES_PER_MOMENT = 10
PER_PATIENT = 6
SLACK = 1  # how far a lab's recorded and not-recorded counts may drift apart while selecting
# lab code -> JSON key; three groups, one lab of each per item (labs of one panel are measured together)
GROUPS = [
    {
        "2339-0": "glucose",
        "6298-4": "potassium",
        "2947-0": "sodium",
        "49765-1": "calcium",
        "38483-4": "creatinine",
        "6299-2": "bun",
    },
    {"2093-3": "total_cholesterol", "2571-8": "triglycerides", "18262-6": "ldl", "2085-9": "hdl"},
    {
        "718-7": "hemoglobin",
        "6690-2": "leukocytes",
        "777-3": "platelets",
        "4548-4": "hba1c",
        "33914-3": "egfr",
        "2885-2": "total_protein",
    },
]
KEYS = {code: key for group in GROUPS for code, key in group.items()}

PHRASINGS = [
    "What are the patient's most recent results, up to now, for {labs}?",
    "Report the latest value on record of each of these tests: {labs}.",
    "For each of {labs}, give the most recent result in the chart, or say it was never recorded.",
    "I need the last known value of {labs}. What does the record show for each?",
    "Look up the newest result of every one of these: {labs}. Some may never have been measured.",
    "Before the visit, list the patient's latest {labs}; mark any test the patient never had.",
]


def _moments(b: HardBuilder) -> list[datetime]:
    end = b.end
    start = b.chart.record_start
    return sorted({b.clock(start + (end - start) * share) for share in (0.3, 0.45, 0.6, 0.75, 0.9)} | {end})


def generate(given: ChartInput) -> list[Scenario]:
    """Candidate items (several per moment); ``select`` keeps a per-lab balanced subset."""
    b = builder(given)
    out: list[Scenario] = []
    for moment in _moments(b):
        rng = b.rng(NAME, moment.isoformat())
        status = {}
        for code in KEYS:
            facts = [f for f in b.chart.values(code) if f.when <= moment]
            if not facts:
                status[code] = False
            elif len([f for f in facts if f.when == facts[-1].when]) == 1:
                status[code] = True
        seen: set[tuple[str, ...]] = set()
        for _ in range(30):
            if len(seen) >= CANDIDATES_PER_MOMENT:
                break
            chosen = [
                rng.choice(sorted(c for c in group if c in status))
                for group in GROUPS
                if any(c in status for c in group)
            ]
            if len(chosen) < 3 or all(status[c] for c in chosen) or not any(status[c] for c in chosen):
                continue
            key = ("abstention", moment.isoformat(), *sorted(chosen))
            if key in seen:
                continue
            seen.add(key)
            rng.shuffle(chosen)
            made = _item(b, chosen, key, moment)
            if made is not None:
                out.append(made)
    return out


def select(items: list[Scenario], seed: int) -> list[Scenario]:
    """Per split, a subset in which every lab is asked as often recorded as not recorded (at most ``SLACK`` apart),
    at most ``PER_PATIENT`` items per patient: repeatedly the item that best evens the counts out (ties: a seeded
    order), while one keeps every lab within the slack."""
    chosen: list[Scenario] = []
    for split in ("dev", "test"):
        pool = sorted((s for s in items if s.split == split), key=lambda s: s.id)
        rng_for(seed, "v3-select", NAME, split).shuffle(pool)
        balance: dict[str, int] = defaultdict(int)  # lab -> recorded minus not recorded
        per_patient: dict[str, int] = defaultdict(int)
        while True:
            best, best_score = None, None
            for item in pool:
                if per_patient[item.patient] >= PER_PATIENT:
                    continue
                signs = {code: 1 if recorded else -1 for code, recorded in item.meta["recorded"].items()}
                after = {code: balance[code] + sign for code, sign in signs.items()}
                if any(abs(v) > SLACK for v in after.values()):
                    continue
                score = sum(abs(v) - abs(balance[code]) for code, v in after.items())
                if best_score is None or score < best_score:
                    best, best_score = item, score
            if best is None:
                break
            pool.remove(best)
            chosen.append(best)
            per_patient[best.patient] += 1
            for code, recorded in best.meta["recorded"].items():
                balance[code] += 1 if recorded else -1
    return chosen


def _item(b: HardBuilder, codes: list[str], key: tuple[str, ...], now: datetime) -> Scenario | None:
    fields: dict[str, ExpectedAnswer] = {}
    formats, provenance, recorded = [], [], {}
    for code in codes:
        info = LABS[code]
        facts = [f for f in b.chart.values(code) if f.when <= now]
        recorded[code] = bool(facts)
        if not facts:
            fields[KEYS[code]] = none_field(info.unit)
            formats.append(f'"{KEYS[code]}" in {info.unit} ({rounding_phrase(info.decimals)})')
            continue
        made = number_answer(facts[-1].value, info, [f.value for f in b.chart.values(code)])
        if made is None:
            return None
        _, decimals = made
        fields[KEYS[code]] = lab_number(facts[-1].value, info, decimals)
        formats.append(f'"{KEYS[code]}" in {info.unit} ({rounding_phrase(decimals)})')
        provenance.append(f"Observation/{facts[-1].id}")
    labs = ", ".join(f"{LABS[c].label} (LOINC {c})" for c in codes)
    index, template = b.phrasing(NAME, key, PHRASINGS)
    fmt = (
        "Answer as a JSON object with the keys " + ", ".join(formats) + "; for a test never recorded "
        'up to now, give the string "not recorded" instead of a number.'
    )
    return b.ehrqa(
        NAME,
        key,
        now=now,
        question=template.format(labs=labs),
        answer_format=fmt,
        answer=ExpectedAnswer(type="record", fields=fields),
        phrasing=index,
        provenance=provenance,
        meta={"form": "abstention", "labs": {KEYS[c]: c for c in codes}, "recorded": recorded},
    )


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=40,
        since=3,
        generate=generate,
        select=select,
        solve=solve,
        phrasings={NAME: PHRASINGS},
        description="The latest values of three labs at now, some never measured by then; every lab is asked about as "
        "often recorded as not recorded.",
    )
)
