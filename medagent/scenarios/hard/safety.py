"""Safety-gated orders: order amoxicillin only if no penicillin allergy, no active amoxicillin order, and eGFR >= 30.

The clinician asks for amoxicillin 500 mg by mouth every 8 hours (two 250 mg capsules, RxNorm 308182, the
product in the data) for an adult with suspected streptococcal pharyngitis, with three stated checks. Branch
act: all checks pass, the order is the only write; branch no-action (one reason each, in turn): an active
penicillin allergy (SNOMED 91936005), an active amoxicillin order written days ago, or the most recent eGFR
below 30 mL/min/1.73m2 (the standard dose needs renal adjustment). The answer names the decision and the
eGFR the agent found, so a silent "no order" fails.

Every item carries the same three setup resources, so their presence says nothing about the branch: an
allergy (penicillin, or an environmental allergy), an amoxicillin order (active and recent, or completed
months ago) and an eGFR result two days before now (below 30, or 45-110).
"""

from __future__ import annotations

import json
from datetime import timedelta

from medagent.scenarios.agentic.common import medication_order, quantity
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import MAX_ROWS, latest_observation
from medagent.scenarios.clock import whole_years_between
from medagent.scenarios.codes import ORAL_ROUTE, RXNORM
from medagent.scenarios.expect import names
from medagent.scenarios.fixtures import lab_observation
from medagent.scenarios.hard.common import FUTURE_NOTE, HardBuilder
from medagent.scenarios.hard.fixtures import allergy, medication_request
from medagent.scenarios.identity import scenario_id
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, refs

NAME = "safety_gated_order"
AMOXICILLIN = ("308182", "Amoxicillin 250 MG Oral Capsule")
PENICILLIN_ALLERGY = ("91936005", "Allergy to penicillin")
OTHER_ALLERGIES = [
    ("418689008", "Allergy to grass pollen"),
    ("232350006", "House dust mite allergy"),
    ("419474003", "Allergy to mould"),
    ("232347008", "Dander (animal) allergy"),
]
EGFR = "33914-3"
EGFR_DISPLAY = "Glomerular filtration rate/1.73 sq M.predicted"
EGFR_UNIT = "mL/min/{1.73_m2}"
EGFR_LIMIT = 30
REASONS = ["allergy", "duplicate", "kidney"]
PER_BRANCH = 3
PENICILLINS = ("amoxicillin", "penicillin", "ampicillin")

PHRASINGS = [
    "The patient with MRN {mrn} has suspected streptococcal pharyngitis. Please order amoxicillin 500 mg by mouth "
    "every 8 hours for 10 days, after checking that it is safe.",
    "Start amoxicillin 500 mg orally three times a day (every 8 hours) for 10 days for the patient with MRN {mrn}, "
    "who has a sore throat with a positive rapid strep test, if it is safe to do so.",
    "For the patient with MRN {mrn} (strep throat): order amoxicillin 500 mg PO q8h x 10 days unless a safety "
    "check stops you.",
    "I'd like the patient with MRN {mrn} on amoxicillin 500 mg by mouth every 8 hours for 10 days for streptococcal "
    "pharyngitis. Check the chart first and order it only if safe.",
    "Streptococcal pharyngitis is likely for the patient with MRN {mrn}. Prescribe amoxicillin 500 mg orally every "
    "8 hours for 10 days, provided the safety checks below pass.",
    "Can you put in amoxicillin 500 mg PO every 8 hours (10-day course) for the patient with MRN {mrn}? Suspected "
    "strep pharyngitis; run the safety checks before ordering.",
]
CONTEXT = (
    "Safety checks (all must pass before ordering): (1) no active documented allergy to penicillins "
    "(AllergyIntolerance); (2) no active order of amoxicillin already (MedicationRequest with status active); "
    f"(3) the most recent eGFR (LOINC {EGFR}) is at least {EGFR_LIMIT} mL/min/1.73m2 (below that, the standard dose "
    "needs renal adjustment). If all pass, order it as a MedicationRequest (intent order, status active, authored "
    f"now) with RxNorm {AMOXICILLIN[0]} ({AMOXICILLIN[1]}; 500 mg = 2 capsules), dose 500 mg, route oral. If any "
    f"check fails, order nothing. {FUTURE_NOTE}"
)
ANSWER_FORMAT = (
    'Answer as JSON: {"decision": "ordered", or the failed check: "allergy", "duplicate" or "kidney", '
    '"egfr": the most recent eGFR value in mL/min/1.73m2, rounded to the nearest whole number}.'
)


def _eligible_now(b: HardBuilder):  # type: ignore[no-untyped-def]
    """The moment of the task: late in the record, an adult, alive, no real active penicillin-class order."""
    now = b.clock(b.end - timedelta(hours=2))
    if not b.alive_at_end or whole_years_between(b.chart.birth_date, now.date()) < 18:
        return None
    for med in b.chart.medications:
        if med.status == "active" and med.authored <= now and any(p in med.code.display.lower() for p in PENICILLINS):
            return None
    if any(f.when > now - timedelta(days=3) for f in b.chart.values(EGFR) if f.when <= now):
        return None  # a real eGFR newer than the setup's would change the check
    return now


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    now = _eligible_now(b)
    if now is None:
        return []
    rng = b.rng(NAME)
    out = []
    plan = [("act", None)] * PER_BRANCH + [
        ("no-action", REASONS[(i + rng.randrange(3)) % 3]) for i in range(PER_BRANCH)
    ]
    for number, (branch, reason) in enumerate(plan):
        key = (branch, number)
        sid = scenario_id("agentic", NAME, b.chart.patient_id, *key)
        egfr = rng.randint(12, 27) if reason == "kidney" else rng.randint(45, 110)
        allergen = PENICILLIN_ALLERGY if reason == "allergy" else rng.choice(OTHER_ALLERGIES)
        allergy_kind = "medication" if reason == "allergy" else "environment"
        prior_active = reason == "duplicate"
        setup = [
            allergy(
                sid,
                0,
                b.chart.patient_id,
                allergen[0],
                allergen[1],
                allergy_kind,
                now - timedelta(days=rng.randint(60, 900)),
            ),
            medication_request(
                sid,
                1,
                b.chart.patient_id,
                AMOXICILLIN[0],
                AMOXICILLIN[1],
                "active" if prior_active else "completed",
                now - timedelta(days=rng.randint(1, 4) if prior_active else rng.randint(120, 700)),
                "500 mg (2 capsules) by mouth every 8 hours for 10 days",
            ),
            lab_observation(
                sid,
                2,
                b.chart.patient_id,
                EGFR,
                EGFR_DISPLAY,
                float(egfr),
                EGFR_UNIT,
                now - timedelta(days=2, hours=rng.randint(0, 12)),
            ),
        ]
        writes = []
        if branch == "act":
            writes = [
                medication_order(
                    "amoxicillin order",
                    b.chart.patient_id,
                    now,
                    RXNORM,
                    AMOXICILLIN[0],
                    route=ORAL_ROUTE,
                    quantities=[
                        quantity(
                            "dose",
                            "dosageInstruction.doseAndRate.doseQuantity",
                            500.0,
                            "mg",
                            {"g": 1000.0},
                            tolerance=0.5,
                        )
                    ],
                )
            ]
        decision = "ordered" if branch == "act" else str(reason)
        answer = ExpectedAnswer(
            type="record",
            fields={
                "decision": names([decision]),
                "egfr": ExpectedAnswer(
                    type="number",
                    value=float(egfr),
                    unit="mL/min/{1.73_m2}",
                    tolerance=Tolerance(abs=0.5),
                    unit_factors={"mL/min/1.73m2": 1.0, "mL/min/1.73 m2": 1.0, "mL/min": 1.0},
                ),
            },
        )
        index, template = b.phrasing(NAME, key, PHRASINGS)
        out.append(
            b.agentic(
                NAME,
                key,
                now=now,
                instruction=template.format(mrn=b.chart.mrn),
                context=CONTEXT,
                answer_format=ANSWER_FORMAT,
                answer=answer,
                phrasing=index,
                writes=writes,
                branch=branch,
                variant=decision,
                setup=setup,
                provenance=[f"{r['resourceType']}/{r['id']}" for r in setup],
                meta={"loinc": EGFR, "rxnorm": AMOXICILLIN[0]},
            )
        )
    return out


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The three safety checks in the order the task states them; order only when all pass."""
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    allergies = await tools.call("search_allergies", patient=patient, status="active", limit=MAX_ROWS)
    penicillin = [row for row in allergies.rows if "penicillin" in (row.get("display") or "").lower()]
    active = await tools.call(
        "search_medications", complete=True, patient=patient, status="current", text="amoxicillin", limit=MAX_ROWS
    )
    egfr = await latest_observation(tools, patient, sc.meta["loinc"])
    value = numeric(egfr) if egfr else None
    decision = (
        "allergy"
        if penicillin
        else "duplicate"
        if active.rows
        else "kidney"
        if value is None or value < EGFR_LIMIT
        else "ordered"
    )
    if decision == "ordered" or tools.act_on_every_branch:
        await tools.call(
            "order_medication",
            patient=patient,
            code=sc.meta["rxnorm"],
            system="rxnorm",
            dose_value=500,
            dose_unit="mg",
            route="oral",
            instructions="500 mg (2 capsules) every 8 hours for 10 days",
            reason="suspected streptococcal pharyngitis; safety checks passed",
        )
    answer = {"decision": decision, "egfr": round(value) if value is not None else "not recorded"}
    return OracleAnswer(json.dumps(answer), [*refs(penicillin), *refs(active.rows), *refs([egfr or {}])])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="hard",
        order=60,
        until=2,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Order amoxicillin only after three safety checks (penicillin allergy, a duplicate order, eGFR).",
        phrasings={NAME: PHRASINGS},
    )
)
