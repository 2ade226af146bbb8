"""Disambiguation (v3): two patients share name *and* birth date; a chart fact tells them apart.

Setup adds a namesake (same name, sex and birth date, its own MRN and two earlier body weights) and records that
tell the two apart: a problem-list condition or an encounter on a given day. The task names the patient by name,
birth date and that fact ("the one with <condition> on the problem list", "the one seen on <day>"), so
``find_patients`` shows two rows that only the chart separates. Variants (1:1 per patient): the task is about the
chart's own patient or about the namesake; forms ``condition`` and ``encounter`` alternate. Record a body weight
measured now for that patient and report their MRN and previous weight; a write to the other one fails.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta

from medagent.scenarios.agentic.common import EFFECTIVE_PATHS, around, quantity
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import latest_observation
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.codes import LOINC
from medagent.scenarios.expect import names
from medagent.scenarios.hard.common import FUTURE_NOTE, HardBuilder
from medagent.scenarios.hard.fixtures import decoy_mrn, namesake_patient, weight_observation
from medagent.scenarios.identity import fixture_id
from medagent.scenarios.models import CodingSpec, FieldRule, Scenario, WriteSpec
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, refs
from medagent.scenarios.v3.common import balanced, builder, number, record
from medagent.scenarios.v3.fixtures import condition, encounter

NAME = "disambiguation"
WEIGHT = "29463-7"
# (SNOMED, display) of chronic problems a namesake may carry (all occur in the Synthea data)
NAMESAKE_CONDITIONS = [
    ("38341003", "Hypertension"),
    ("195967001", "Asthma"),
    ("55822004", "Hyperlipidemia"),
    ("44054006", "Diabetes"),
    ("239873007", "Osteoarthritis of knee"),
    ("69896004", "Rheumatoid arthritis"),
    ("40055000", "Chronic sinusitis (disorder)"),
    ("87433001", "Pulmonary emphysema (disorder)"),
    ("271737000", "Anemia (disorder)"),
    ("73430006", "Sleep apnea (disorder)"),
    ("15777000", "Prediabetes"),
    ("230690007", "Stroke"),
]
ENCOUNTER_TYPES = [
    ("EMER", "50849002", "Emergency room admission (procedure)"),
    ("AMB", "185345009", "Encounter for symptom"),
    ("AMB", "390906007", "Follow-up encounter"),
    ("AMB", "162673000", "General examination of patient (procedure)"),
]

PHRASINGS = [
    "I just weighed {name}, born {born}, {fact}: {kg} kg. Record this body weight in the chart.",
    "Please record a body weight of {kg} kg, measured just now, for {name} (date of birth {born}), {fact}.",
    "{name}, born {born}, {fact}, was weighed at this visit: {kg} kg. Enter it as a body weight observation.",
    "Chart a body weight of {kg} kg for {name}, birth date {born}, {fact}; the measurement was taken now.",
    "New weight for {name} (DOB {born}), {fact}: {kg} kg, measured a moment ago. Please add it to the record.",
    "The nurse measured {kg} kg for {name}, whose birth date is {born} ({fact}). File it as today's body weight.",
]
CONDITION_FACT = "the one with {display} (SNOMED {code}) on the problem list"
ENCOUNTER_FACT = "the one who had an encounter on {day}"


def generate(given: ChartInput) -> list[Scenario]:
    b = builder(given)
    if not b.alive_at_end:
        return []
    now = b.clock(b.end - timedelta(hours=1))
    weights = [f for f in b.chart.values(WEIGHT) if f.when <= now - timedelta(days=1)]
    if not weights or whole_years_between(b.chart.birth_date, now.date()) < 18:
        return []
    rng = b.rng(NAME)
    forms = rng.sample(["condition", "encounter"], 2)
    out = []
    for variant, form in zip(("chart", "namesake"), forms, strict=True):
        made = _item(b, rng, now, variant, form, weights[-1].value, weights[-1].id)
        if made is not None:
            out.append(made)
    return out


def select(items: list[Scenario], seed: int) -> list[Scenario]:
    """Per split, as many items about the chart's patient as about the namesake."""
    return balanced(items, seed, NAME, lambda s: str(s.meta["variant"]))


def _fact(
    b: HardBuilder, rng: random.Random, sid: str, decoy: str, now: datetime, variant: str, form: str
) -> tuple[str, list[dict], list[str]] | None:
    """(the fact the task states, the namesake's distinguishing records, provenance of the fact)."""
    own_codes = {c.code.code for c in b.chart.conditions}
    if form == "condition":
        chronic = [
            c
            for c in b.chart.conditions
            if c.onset <= now - timedelta(days=30)
            and c.abatement is None
            and [x.code.code for x in b.chart.conditions].count(c.code.code) == 1
        ]
        other = [c for c in NAMESAKE_CONDITIONS if c[0] not in own_codes]
        if not other or (variant == "chart" and not chronic):
            return None
        decoy_code, decoy_display = rng.choice(other)
        onset = now - timedelta(days=rng.randint(200, 3000))
        records = [condition(sid, 10, decoy, decoy_code, decoy_display, onset)]
        if variant == "chart":
            own = rng.choice(chronic)
            return CONDITION_FACT.format(display=own.code.display, code=own.code.code), records, [f"Condition/{own.id}"]
        return CONDITION_FACT.format(display=decoy_display, code=decoy_code), records, [f"Condition/{records[0]['id']}"]
    own_days = {day_of(t) for t in b.chart.encounter_starts}
    recent = sorted(t for t in b.chart.encounter_starts if now - timedelta(days=900) <= t <= now - timedelta(days=7))
    klass, code, display = rng.choice(ENCOUNTER_TYPES)
    if variant == "chart":
        if not recent:
            return None
        day = day_of(rng.choice(recent))
        decoy_day = day - timedelta(days=rng.randint(20, 200))
        if decoy_day in own_days:
            return None
        start = datetime.combine(decoy_day, datetime.min.time(), tzinfo=now.tzinfo) + timedelta(hours=14)
        return (
            ENCOUNTER_FACT.format(day=day.isoformat()),
            [encounter(sid, 10, decoy, klass, code, display, start, start + timedelta(minutes=40))],
            [],
        )
    for _ in range(20):
        start = now - timedelta(days=rng.randint(30, 700), hours=rng.randint(0, 10))
        if day_of(start) not in own_days and all(abs((day_of(start) - d).days) > 1 for d in own_days):
            record_ = encounter(sid, 10, decoy, klass, code, display, start, start + timedelta(minutes=40))
            return ENCOUNTER_FACT.format(day=day_of(start).isoformat()), [record_], [f"Encounter/{record_['id']}"]
    return None


def _item(
    b: HardBuilder, rng: random.Random, now: datetime, variant: str, form: str, own_last: float, own_last_id: str
) -> Scenario | None:
    key = (variant, form)
    sid = b.id_for("agentic", NAME, *key)
    born = b.chart.birth_date.isoformat()
    decoy = namesake_patient(sid, b.chart, born)
    stated = _fact(b, rng, sid, decoy["id"], now, variant, form)
    if stated is None:
        return None
    fact, records, cited = stated
    decoy_kg = [round(own_last * rng.uniform(0.85, 1.15), 1) for _ in range(2)]
    if any(abs(kg - own_last) < 1.0 for kg in decoy_kg) or abs(decoy_kg[0] - decoy_kg[1]) < 1.0:
        decoy_kg = [round(own_last + 4.3, 1), round(own_last + 6.1, 1)]
    setup = [
        decoy,
        weight_observation(sid, 1, decoy["id"], decoy_kg[0], now - timedelta(days=rng.randint(200, 400))),
        weight_observation(sid, 2, decoy["id"], decoy_kg[1], now - timedelta(days=rng.randint(20, 150))),
        *records,
    ]
    if variant == "chart":
        target, mrn, previous, cited = b.chart.patient_id, b.chart.mrn, own_last, [*cited, f"Observation/{own_last_id}"]
    else:
        target, mrn, previous = decoy["id"], decoy_mrn(sid), decoy_kg[1]
        cited = [*cited, f"Observation/{fixture_id(sid, 2)}"]
    kg = round(previous * (1 + rng.uniform(-0.03, 0.03)), 1)
    if abs(kg - previous) < 0.3:
        kg = round(previous + 0.6, 1)
    spec = WriteSpec(
        name="body weight observation",
        resource_type="Observation",
        target=None,
        subject=f"Patient/{target}",
        code_path="code.coding",
        codes=[CodingSpec(system=LOINC, code=WEIGHT)],
        status=["final"],
        fields=[FieldRule(name="vital-signs category", path="category.coding.code", any_of=["vital-signs"])],
        quantities=[
            quantity(
                "weight",
                "valueQuantity",
                kg,
                "kg",
                {"g": 0.001, "lb": 0.45359237, "[lb_av]": 0.45359237},
                tolerance=0.05,
            )
        ],
        windows=[around(now, "effective now", EFFECTIVE_PATHS)],
    )
    index, template = b.phrasing(NAME, key, PHRASINGS)
    instruction = template.format(name=b.chart.name, born=born, fact=fact, kg=f"{kg:.1f}")
    context = (
        f"Record it as an Observation with status final, category vital-signs, LOINC {WEIGHT} (body weight), "
        f"value in kg, effective now. More than one patient may share a name and a birth date. {FUTURE_NOTE}"
    )
    answer = record(
        mrn=names([mrn], "identifier"),
        previous_weight=number(previous, "kg", 0.1, {"lb": 0.45359237, "lbs": 0.45359237, "g": 0.001}),
    )
    answer_format = (
        'After recording, answer as JSON: {"mrn": <the MRN of the patient you recorded the weight for>, '
        '"previous_weight": <that patient\'s most recent body weight before this one, in kg rounded to 1 '
        "decimal place>}."
    )
    made = b.agentic(
        NAME,
        key,
        now=now,
        instruction=instruction,
        context=context,
        answer_format=answer_format,
        answer=answer,
        phrasing=index,
        writes=[spec],
        variant=variant,
        setup=setup,
        provenance=[f"Patient/{target}", *cited],
        meta={
            "name": b.chart.name,
            "birth_date": born,
            "kg": kg,
            "patient_context": False,
            "fact_kind": form,
            "fact": fact,
        },
    )
    made.meta.pop("mrn")  # the task names the patient by name, birth date and a chart fact, not by MRN
    return made


# ---------- the oracle ----------


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """Both namesakes, then the chart fact the task states decides which one; record the weight for that one."""
    name, born = sc.meta["name"], sc.meta["birth_date"]
    result = await tools.call("find_patients", name=name)
    rows = [row for row in result.rows if row.get("name") == name and row.get("birthDate") == born]
    fact = sc.meta["fact"]
    matching = []
    for row in rows:
        patient = row["ref"].removeprefix("Patient/")
        if sc.meta["fact_kind"] == "condition":
            code = re.search(r"\(SNOMED (\d+)\)", fact)
            if code is None:
                raise ToolGap(f"no SNOMED code in {fact!r}")
            found = await tools.call("search_conditions", patient=patient, code=code.group(1))
        else:
            day = re.search(r"(\d{4}-\d{2}-\d{2})", fact)
            if day is None:
                raise ToolGap(f"no day in {fact!r}")
            found = await tools.call("search_encounters", patient=patient, since=day.group(1), until=day.group(1))
        if found.rows:
            matching.append((row, found.rows))
    if len(matching) != 1:
        raise ToolGap(f"{len(matching)} of the patients named {name!r} born {born} match {fact!r}")
    row, evidence = matching[0]
    patient = row["ref"].removeprefix("Patient/")
    previous = await latest_observation(tools, patient, WEIGHT)
    await tools.call(
        "record_vital_sign",
        patient=patient,
        vital="body_weight",
        value=sc.meta["kg"],
        unit="kg",
        reason="body weight measured at the visit",
    )
    weight = round(numeric(previous), 1) if previous else "not recorded"
    return OracleAnswer(
        json.dumps({"mrn": row["mrn"], "previous_weight": weight}),
        [row["ref"], *refs(evidence), *refs([previous or {}])],
    )


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="hard",
        order=50,
        since=3,
        generate=generate,
        select=select,
        solve=solve,
        phrasings={NAME: PHRASINGS},
        description="Two patients share name and birth date; a problem-list condition or an encounter day tells them "
        "apart: record a weight for the one meant and report their MRN and previous weight.",
    )
)
