"""Order a specialist referral with the free text the task gives."""

from __future__ import annotations

from datetime import timedelta

from medagent.scenarios.agentic.common import AgenticBuilder, service_order
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import (
    CARDIOLOGY_REASONS,
    CARDIOLOGY_REFERRAL,
    ORTHOPEDIC_REASONS,
    ORTHOPEDIC_REFERRAL,
    ORTHOPEDIC_REFERRAL_ALT,
    SNOMED,
)
from medagent.scenarios.models import CodingSpec, ExpectedAnswer, FieldRule, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import stated
from medagent.vocabulary import condition_label

NAME = "referral"
PHRASINGS = [
    'Order a {service} referral for {patient}. Write within the free text of the referral: "{note}"',
    'Please refer {patient} to the {service} service. Put this text in the referral\'s free text: "{note}"',
    'Place a referral to {service} for {patient}, with this free text in the referral: "{note}"',
    'Send {patient} to {service} with a referral order; its free text must read: "{note}"',
    'Create a {service} referral for {patient} and include in its free text: "{note}"',
    'A {service} consult is needed for {patient}: order the referral and write in its free text: "{note}"',
]


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    category = NAME
    rng = b.rng(category)
    reasons = [
        c
        for c in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id))
        if c.code.code in ORTHOPEDIC_REASONS | CARDIOLOGY_REASONS
    ]
    for condition in rng.sample(reasons, len(reasons)):
        now = b.clock(condition.onset + timedelta(days=rng.uniform(1, 30)))
        if not b.inside(now):
            continue
        orthopedic = condition.code.code in ORTHOPEDIC_REASONS
        code, display = ORTHOPEDIC_REFERRAL if orthopedic else CARDIOLOGY_REFERRAL
        service = "Orthopedic" if orthopedic else "Cardiology"
        label = condition_label(condition.code.display)
        note = (
            f"Situation: {label}, diagnosed on {day_of(condition.onset).isoformat()}. Background: see the problem "
            f"list. Assessment: {label} needing specialist review. Recommendation: request for {service} service "
            "to evaluate and provide management recommendations."
        )
        codes = [CodingSpec(system=SNOMED, code=code)]
        if orthopedic:
            codes.append(CodingSpec(system=SNOMED, code=ORTHOPEDIC_REFERRAL_ALT[0]))
        spec = service_order(
            f"{service.lower()} referral",
            b.chart.patient_id,
            now,
            codes,
            fields=[FieldRule(name="note", path="note.text", any_of=[note], mode="contains")],
        )
        instruction, phrasing = b.say(category, service=service.lower(), note=note)
        context = (
            f"The SNOMED CT code for the referral is {code} ({display}). Order it as a ServiceRequest "
            "(intent order, status active, authored now) with the free text in note.text."
        )
        return [
            b.make(
                category,
                (),
                now=now,
                instruction=instruction,
                context=context,
                answer_format="After ordering, reply 'done'.",
                answer=ExpectedAnswer(type="none"),
                writes=[spec],
                provenance=[f"Condition/{condition.id}"],
                meta={"service": service, "phrasing": phrasing, "note": note, "referral_code": code},
            )
        ]
    return []


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    note = stated(sc, "note", r'free text of the referral: "(.+?)"')
    code = stated(sc, "referral_code", r"SNOMED CT code for the referral is (\d+)")
    await tools.call(
        "order_service",
        patient=patient,
        code=code,
        system="snomed",
        kind="referral",
        note=note,
        reason=f"{sc.meta.get('service', 'specialist')} referral requested",
    )
    return OracleAnswer("done", [])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=180,
        generate=generate,
        solve=solve,
        description="Order a specialist referral with the free text the task gives.",
        phrasings={NAME: PHRASINGS},
    )
)
