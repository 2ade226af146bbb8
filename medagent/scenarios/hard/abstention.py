"""Abstention: the latest values of three labs, at least one of which was never measured.

The answer is a record with one field per lab: the value where one exists, "not recorded" where none does
(a number there fails, and so does "not recorded" where a value exists). Every item mixes present and absent
labs, so neither "none" nor a number for everything passes. The labs come from a pool each of which exists
for 18-73% of the patients, so the lab asked about says little about whether it was measured.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import latest_observation
from medagent.scenarios.codes import LABS
from medagent.scenarios.expect import none_number, number_answer, rounding_phrase
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, stated_decimals, task_text

NAME = "abstention"
PER_PATIENT = 4
# lab code -> the JSON key of its field
POOL = {
    "4548-4": "hba1c",
    "18262-6": "ldl",
    "2093-3": "total_cholesterol",
    "33914-3": "egfr",
    "38483-4": "creatinine",
    "2339-0": "glucose",
    "1742-6": "alt",
    "1920-8": "ast",
    "1751-7": "albumin",
    "6298-4": "potassium",
}

PHRASINGS = [
    "What are the patient's most recent results, up to now, for {labs}?",
    "Report the latest value on record of each of these tests: {labs}.",
    "For each of {labs}, give the most recent result in the chart, or say it was never recorded.",
    "I need the last known value of {labs}. What does the record show for each?",
    "Look up the newest result of every one of these: {labs}. Some may never have been measured.",
    "Before the visit, list the patient's latest {labs}; mark any test the patient never had.",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    now = b.end
    rng = b.rng(NAME)
    present, absent = [], []
    for code in POOL:
        facts = [f for f in b.chart.values(code) if f.when <= now]
        if not facts:
            absent.append(code)
        elif (
            len({f.when for f in facts if f.when == facts[-1].when}) == 1
            and len([f for f in facts if f.when == facts[-1].when]) == 1
        ):
            present.append(code)
    if not present or not absent:
        return []
    out: list[Scenario] = []
    seen: set[tuple[str, ...]] = set()
    for _ in range(20):
        if len(out) >= PER_PATIENT:
            break
        n_absent = rng.choice([1, 2]) if len(present) >= 2 else 1
        n_absent = min(n_absent, len(absent))
        chosen = rng.sample(absent, n_absent) + rng.sample(present, min(3 - n_absent, len(present)))
        if len(chosen) < 3:
            continue
        chosen = sorted(chosen, key=lambda c: rng.random())
        key = ("abstention", *sorted(chosen))
        if key in seen:
            continue
        seen.add(key)
        made = _item(b, chosen, key, now)
        if made is not None:
            out.append(made)
    return out


def _item(b: HardBuilder, codes: list[str], key: tuple[str, ...], now) -> Scenario | None:  # type: ignore[no-untyped-def]
    fields: dict[str, ExpectedAnswer] = {}
    formats, provenance = [], []
    for code in codes:
        info = LABS[code]
        facts = [f for f in b.chart.values(code) if f.when <= now]
        if not facts:
            fields[POOL[code]] = none_number(info)
            formats.append(f'"{POOL[code]}" in {info.unit} ({rounding_phrase(info.decimals)})')
            continue
        made = number_answer(facts[-1].value, info, [f.value for f in b.chart.values(code)])
        if made is None:
            return None
        answer, decimals = made
        fields[POOL[code]] = answer
        formats.append(f'"{POOL[code]}" in {info.unit} ({rounding_phrase(decimals)})')
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
        meta={"form": "abstention", "labs": {POOL[c]: c for c in codes}},
    )


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """Each lab's latest value, rounded as its part of the answer format says, or "not recorded"."""
    answer: dict[str, Any] = {}
    cited = []
    for key, code in sc.meta["labs"].items():
        row = await latest_observation(tools, sc.patient, code)
        if row is None:
            answer[key] = "not recorded"
            continue
        rounding = task_text(rf'"{re.escape(key)}" in [^(]+\((rounded to [^)]+)\)', sc.question, sc.id)
        decimals = stated_decimals(rounding)
        value = numeric(row)
        answer[key] = round(value, decimals) if decimals is not None else value
        cited.append(row["ref"])
    return OracleAnswer(json.dumps(answer), cited)


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=40,
        until=2,
        generate=generate,
        solve=solve,
        description="The latest values of three labs, at least one never measured: answer 'not recorded' for it.",
        phrasings={NAME: PHRASINGS},
    )
)
