"""Disambiguation: two patients share a name; the task gives the birth date; a write to the wrong one fails.

Setup adds a namesake (same given and family name, same sex, a birth date 3-15 years apart, its own MRN and
two earlier body weights). The task names the patient by name and birth date only: record a body weight
measured now, and report the MRN and the previous weight of the patient it was recorded for. Variants (1:1
per patient): the task is about the chart's own patient ("chart") or about the namesake ("namesake"), so
"the one with the longer record" is no shortcut. Adults only (both at least 18 at now).
"""

from __future__ import annotations

import json
from datetime import timedelta

from medagent.scenarios.agentic.common import EFFECTIVE_PATHS, around, quantity
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import latest_observation
from medagent.scenarios.clock import whole_years_between
from medagent.scenarios.codes import LOINC
from medagent.scenarios.expect import names
from medagent.scenarios.hard.common import FUTURE_NOTE, HardBuilder
from medagent.scenarios.hard.fixtures import decoy_mrn, namesake_patient, weight_observation
from medagent.scenarios.identity import fixture_id, scenario_id
from medagent.scenarios.models import CodingSpec, ExpectedAnswer, FieldRule, Scenario, Tolerance, WriteSpec
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, refs

NAME = "disambiguation"
WEIGHT = "29463-7"

PHRASINGS = [
    "I just weighed {name}, born {born}: {kg} kg. Record this body weight in the chart.",
    "Please record a body weight of {kg} kg, measured just now, for {name} (date of birth {born}).",
    "{name}, born {born}, was weighed at this visit: {kg} kg. Enter it as a body weight observation.",
    "Chart a body weight of {kg} kg for {name}, birth date {born}; the measurement was taken now.",
    "New weight for {name} (DOB {born}): {kg} kg, measured a moment ago. Please add it to the record.",
    "The nurse measured {kg} kg for {name}, whose birth date is {born}. File it as today's body weight.",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    if not b.alive_at_end:
        return []
    now = b.clock(b.end - timedelta(hours=1))
    weights = [f for f in b.chart.values(WEIGHT) if f.when <= now - timedelta(days=1)]
    if not weights or whole_years_between(b.chart.birth_date, now.date()) < 18:
        return []
    rng = b.rng(NAME)
    out = []
    for variant in ("chart", "namesake"):
        sid = scenario_id("agentic", NAME, b.chart.patient_id, variant)
        shift = rng.choice([-1, 1]) * rng.randint(3 * 365, 15 * 365)
        born = b.chart.birth_date + timedelta(days=shift)
        if whole_years_between(born, now.date()) < 18:
            born = b.chart.birth_date - timedelta(days=abs(shift))  # older, so that both are adults
        decoy = namesake_patient(sid, b.chart, born.isoformat())
        own_last = weights[-1]
        decoy_kg = [round(own_last.value * rng.uniform(0.85, 1.15), 1) for _ in range(2)]
        if any(abs(kg - own_last.value) < 1.0 for kg in decoy_kg) or abs(decoy_kg[0] - decoy_kg[1]) < 1.0:
            decoy_kg = [round(own_last.value + 4.3, 1), round(own_last.value + 6.1, 1)]
        setup = [
            decoy,
            weight_observation(sid, 1, decoy["id"], decoy_kg[0], now - timedelta(days=rng.randint(200, 400))),
            weight_observation(sid, 2, decoy["id"], decoy_kg[1], now - timedelta(days=rng.randint(20, 150))),
        ]
        if variant == "chart":
            target, target_born, mrn, previous = (
                b.chart.patient_id,
                b.chart.birth_date.isoformat(),
                b.chart.mrn,
                own_last.value,
            )
            cited = [f"Observation/{own_last.id}"]
        else:
            target, target_born, mrn, previous = decoy["id"], born.isoformat(), decoy_mrn(sid), decoy_kg[1]
            cited = [f"Observation/{fixture_id(sid, 2)}"]
        kg = round(previous * (1 + rng.uniform(-0.03, 0.03)), 1)
        if abs(kg - previous) < 0.3:
            kg = round(previous + 0.6, 1)
        spec = WriteSpec(
            name="body weight observation",
            resource_type="Observation",
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
        index, template = b.phrasing(NAME, (variant,), PHRASINGS)
        instruction = template.format(name=b.chart.name, born=target_born, kg=f"{kg:.1f}")
        context = (
            f"Record it as an Observation with status final, category vital-signs, LOINC {WEIGHT} (body "
            f"weight), value in kg, effective now. More than one patient may share a name. {FUTURE_NOTE}"
        )
        answer = ExpectedAnswer(
            type="record",
            fields={
                "mrn": names([mrn], "identifier"),
                "previous_weight": ExpectedAnswer(
                    type="number",
                    value=previous,
                    unit="kg",
                    tolerance=Tolerance(abs=0.1),
                    unit_factors={"lb": 0.45359237, "lbs": 0.45359237, "g": 0.001},
                ),
            },
        )
        answer_format = (
            'After recording, answer as JSON: {"mrn": the MRN of the patient you recorded the weight for, '
            '"previous_weight": that patient\'s most recent body weight before this one, in kg rounded '
            "to 1 decimal place}."
        )
        made = b.agentic(
            NAME,
            (variant,),
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
            meta={"name": b.chart.name, "birth_date": target_born, "kg": kg, "patient_context": False},
        )
        made.meta.pop("mrn")  # the task names the patient by name and birth date, not by MRN
        out.append(made)
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The one patient with the name *and* the birth date given; record the weight, report the previous one."""
    name, born = sc.meta["name"], sc.meta["birth_date"]
    result = await tools.call("find_patients", name=name)
    rows = [row for row in result.rows if row.get("name") == name and row.get("birthDate") == born]
    if len(rows) != 1:
        raise ToolGap(f"{len(rows)} patients named {name!r} born {born}")
    patient = rows[0]["ref"].removeprefix("Patient/")
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
        json.dumps({"mrn": rows[0]["mrn"], "previous_weight": weight}), [rows[0]["ref"], *refs([previous or {}])]
    )


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="hard",
        order=50,
        until=2,
        generate=generate,
        solve=solve,
        description="Two patients share a name: find the one born on the date given, record a weight, report the "
        "previous one.",
        phrasings={NAME: PHRASINGS},
    )
)
