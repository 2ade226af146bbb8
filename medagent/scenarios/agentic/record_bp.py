"""Record a blood pressure measured at the visit."""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import EFFECTIVE_PATHS, AgenticBuilder, around, quantity
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.codes import BP_PANEL_CODES, DIASTOLIC, LOINC, OBSERVATION_CATEGORY, SYSTOLIC
from medagent.scenarios.models import CodingSpec, ExpectedAnswer, FieldRule, Scenario, WriteSpec
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller

NAME = "record_bp"
PHRASINGS = [
    "I just measured the blood pressure of {patient}: {sys}/{dia} mmHg. Record it in the chart.",
    "Please chart a blood pressure of {sys}/{dia} mmHg for {patient}, measured just now.",
    "The blood pressure of {patient}, taken now, is {sys}/{dia} mmHg. Document it.",
    "Record this vital sign for {patient}: blood pressure {sys}/{dia} mmHg, measured a moment ago.",
    "Enter the blood pressure I just took on {patient}, {sys} over {dia} mmHg, into the record.",
    "The blood pressure of {patient} is {sys}/{dia} mmHg right now; please file it as a vital sign.",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    start, end = b.span
    visits = [t for t in b.chart.encounter_starts if start <= t <= end - timedelta(hours=1)]
    if not visits:
        return []
    now = b.clock(rng.choice(sorted(visits)) + timedelta(minutes=rng.randint(20, 45)))  # >= 5 min after arrival
    systolic = rng.randint(100, 165)
    diastolic = rng.randint(60, min(100, systolic - 25))
    factors = {"mmHg": 1.0, "mm Hg": 1.0}
    spec = WriteSpec(
        name="blood pressure observation",
        resource_type="Observation",
        subject=b.chart.reference,
        code_path="code.coding",
        codes=[CodingSpec(system=LOINC, code=c) for c in BP_PANEL_CODES],
        status=["final"],
        fields=[FieldRule(name="vital-signs category", path="category.coding.code", any_of=["vital-signs"])],
        quantities=[
            quantity(name, f"component[code.coding.code={code}].valueQuantity", value, "mm[Hg]", factors)
            for name, code, value in (("systolic", SYSTOLIC, systolic), ("diastolic", DIASTOLIC, diastolic))
        ],
        windows=[around(now, "effective now", EFFECTIVE_PATHS)],
    )
    instruction, phrasing = b.say(category, sys=systolic, dia=diastolic)
    context = (
        f"Record it as an Observation with status final, category vital-signs "
        f"({OBSERVATION_CATEGORY}), LOINC code 85354-9 (blood pressure panel), effective now, with two "
        f"components: systolic blood pressure (LOINC {SYSTOLIC}) and diastolic blood pressure (LOINC "
        f"{DIASTOLIC}), each a valueQuantity in mm[Hg]."
    )
    return [
        b.make(
            category,
            (),
            now=now,
            instruction=instruction,
            context=context,
            answer_format="After recording, reply 'done'.",
            answer=ExpectedAnswer(type="none"),
            writes=[spec],
            meta={"systolic": systolic, "diastolic": diastolic, "phrasing": phrasing},
        )
    ]


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    await tools.call(
        "record_vital_sign",
        patient=patient,
        vital="blood_pressure",
        systolic=sc.meta["systolic"],
        diastolic=sc.meta["diastolic"],
        reason="blood pressure measured at the visit",
    )
    return OracleAnswer("done", [])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=130,
        generate=generate,
        solve=solve,
        description="Record a blood pressure measured at the visit.",
        phrasings={NAME: PHRASINGS},
    )
)
