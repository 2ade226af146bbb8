"""A multi-write workflow: record today's blood pressure, then order per a rule over the last three readings.

Task: record the reading given (a blood pressure panel), then compute the mean systolic of the last three
readings including the new one; at 140 mmHg or more (stage 2 range), order a basic metabolic panel (LOINC
51990-0) for the hypertension work-up. Branch act: two writes; branch no-action: only the reading (1:1 per
patient). The answer is the mean systolic, so the agent must find the two earlier readings. The new reading
is chosen so the mean lies at least 4 mmHg from 140 on either side.
"""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import EFFECTIVE_PATHS, around, quantity, service_order
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import BP_PANEL_CODES, DIASTOLIC, LOINC, OBSERVATION_CATEGORY, SYSTOLIC
from medagent.scenarios.hard.common import FUTURE_NOTE, HardBuilder
from medagent.scenarios.models import CodingSpec, ExpectedAnswer, FieldRule, Scenario, Tolerance, WriteSpec
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, refs, rows_of

NAME = "bp_workup_workflow"
BMP = ("51990-0", "Basic metabolic panel - Blood")
THRESHOLD = 140
MARGIN = 4

PHRASINGS = [
    "Blood pressure of the patient with MRN {mrn}, just measured: {sys}/{dia} mmHg. Record it, then apply the "
    "work-up rule below.",
    "I measured {sys}/{dia} mmHg for the patient with MRN {mrn} a moment ago. Please chart it and follow the "
    "hypertension work-up protocol.",
    "Record today's blood pressure for the patient with MRN {mrn}, {sys}/{dia} mmHg, and then decide on the "
    "metabolic panel as the protocol says.",
    "New reading for the patient with MRN {mrn}: {sys}/{dia} mmHg. Enter it in the chart and run the blood "
    "pressure work-up rule.",
    "The patient with MRN {mrn} has a blood pressure of {sys}/{dia} mmHg at this visit. File the reading, then "
    "check whether the work-up panel is needed.",
    "Please document {sys}/{dia} mmHg (measured now) for the patient with MRN {mrn} and act on the three-reading "
    "rule below.",
]
CONTEXT = (
    f"Record the reading as an Observation with status final, category vital-signs ({OBSERVATION_CATEGORY}), "
    f"LOINC 85354-9 (blood pressure panel), effective now, with components systolic (LOINC {SYSTOLIC}) and "
    f"diastolic (LOINC {DIASTOLIC}) in mm[Hg]. Rule: take the mean systolic of the last three readings, the new "
    f"one and the two before it; if it is {THRESHOLD} mmHg or more, order a basic metabolic panel (ServiceRequest, "
    f"LOINC {BMP[0]}, intent order, status active, authored now); otherwise order nothing else. {FUTURE_NOTE}"
)
ANSWER_FORMAT = (
    "After the writes, answer with the mean systolic of the three readings in mmHg, rounded to the "
    "nearest whole number."
)


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    if not b.alive_at_end:
        return []
    now = b.clock(b.end - timedelta(hours=1))
    systolic = [f for f in b.chart.values(SYSTOLIC) if f.when <= now - timedelta(hours=1)]
    if len(systolic) < 2 or len({f.when for f in systolic}) != len(systolic):
        return []  # two readings at one moment make "the two before it" ambiguous
    earlier = systolic[-2:]
    total = earlier[0].value + earlier[1].value
    choices = {
        "act": list(range(max(int(3 * (THRESHOLD + MARGIN) - total) + 1, 120), 196)),
        "no-action": list(range(96, min(int(3 * (THRESHOLD - MARGIN) - total), 150))),
    }
    if not all(choices.values()):
        return []  # both branches or neither: 1:1
    rng = b.rng(NAME)
    out = []
    for branch in ("act", "no-action"):
        candidates = choices[branch]
        new = rng.choice(candidates)
        low = max(55, min(100, new - 70))
        dia = rng.randint(low, max(low, min(110, new - 30)))
        average = (total + new) / 3
        key = (branch,)
        index, template = b.phrasing(NAME, key, PHRASINGS)
        record = WriteSpec(
            name="blood pressure observation",
            resource_type="Observation",
            subject=b.chart.reference,
            code_path="code.coding",
            codes=[CodingSpec(system=LOINC, code=c) for c in BP_PANEL_CODES],
            status=["final"],
            fields=[FieldRule(name="vital-signs category", path="category.coding.code", any_of=["vital-signs"])],
            quantities=[
                quantity(
                    name,
                    f"component[code.coding.code={code}].valueQuantity",
                    value,
                    "mm[Hg]",
                    {"mmHg": 1.0, "mm Hg": 1.0},
                )
                for name, code, value in (("systolic", SYSTOLIC, new), ("diastolic", DIASTOLIC, dia))
            ],
            windows=[around(now, "effective now", EFFECTIVE_PATHS)],
        )
        writes = [record]
        if branch == "act":
            writes.append(
                service_order("basic metabolic panel", b.chart.patient_id, now, [CodingSpec(system=LOINC, code=BMP[0])])
            )
        out.append(
            b.agentic(
                NAME,
                key,
                now=now,
                instruction=template.format(mrn=b.chart.mrn, sys=new, dia=dia),
                context=CONTEXT,
                answer_format=ANSWER_FORMAT,
                answer=ExpectedAnswer(
                    type="number",
                    value=round(average, 4),
                    unit="mm[Hg]",
                    tolerance=Tolerance(abs=0.5),
                    unit_factors={"mmHg": 1.0},
                ),
                phrasing=index,
                writes=writes,
                branch=branch,
                provenance=[f"Observation/{f.id}" for f in earlier],
                meta={"systolic": new, "diastolic": dia},
            )
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The two earlier systolic readings, the new reading recorded, then the panel when the mean calls for it."""
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    result = await tools.call("search_observations", patient=patient, code=SYSTOLIC, latest=2)
    earlier = rows_of(result.rows, SYSTOLIC)
    if len(earlier) != 2:
        raise ToolGap(f"found {len(earlier)} earlier systolic readings, need 2")
    systolic, diastolic = sc.meta["systolic"], sc.meta["diastolic"]
    await tools.call(
        "record_vital_sign",
        patient=patient,
        vital="blood_pressure",
        systolic=systolic,
        diastolic=diastolic,
        reason="blood pressure measured at the visit",
    )
    average = (systolic + sum(numeric(r) for r in earlier)) / 3
    if average >= THRESHOLD or tools.act_on_every_branch:
        await tools.call(
            "order_service",
            patient=patient,
            code=BMP[0],
            system="loinc",
            kind="lab",
            reason=f"mean systolic of the last three readings {average:.0f} mmHg",
        )
    return OracleAnswer(f"{round(average)} mmHg", refs(earlier))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="hard",
        order=70,
        until=2,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Record a blood pressure, then order a metabolic panel when the mean of the last three systolic "
        "readings is 140 mmHg or more.",
        phrasings={NAME: PHRASINGS},
    )
)
