"""Safety-gated order (v3): amoxicillin for strep pharyngitis under a written protocol whose checks read the chart.

The task asks for amoxicillin 500 mg capsules (RxNorm 308191), one by mouth every 8 hours for 10 days, under a
standing-order protocol stated in the task: (1) 18 or older; (2) no active penicillin-class *allergy* (not an
intolerance; verification not refuted or entered-in-error; a low-criticality allergy does not count once a
penicillin-class course was completed or stopped after it was recorded: the patient has tolerated one); (3) no
active order of an amoxicillin-containing product; (4) Cockcroft-Gault creatinine clearance from the chart's own
latest creatinine (if one was resulted in the 365 days before now), latest weight, age and sex, at least 30 mL/min.

Every item's setup adds one allergy and one or two amoxicillin-containing orders of varied kind, status and age, so
the setup alone does not decide: half of each branch is decided by the chart's own records (a penicillin course
Synthea recorded after the allergy, the patient's age, the clearance from real creatinine and weight). Kinds
(``meta.kind``): act ``clean`` and ``tolerated``; no-action ``allergy``, ``duplicate``, ``kidney``, ``age``.
Sampled per split 2 : 2 : 1 : 1 : 2 (``kidney`` and ``age`` together), so both branches are 1:1.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medagent.scenarios.agentic.common import medication_order, quantity
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import Chart, MedicationFact
from medagent.scenarios.chart_reads import every_row, latest_observation
from medagent.scenarios.clock import whole_years_between
from medagent.scenarios.codes import ORAL_ROUTE, RXNORM, SNOMED
from medagent.scenarios.expect import names
from medagent.scenarios.hard.common import FUTURE_NOTE, HardBuilder
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, refs, utc_moment
from medagent.scenarios.v3.common import balanced, builder, json_format, none_field, number, record
from medagent.scenarios.v3.fixtures import drug_allergy, other_allergy
from medagent.scenarios.v3.fixtures import medication_order as order_fixture

NAME = "safety_gated_order"
AMOXICILLIN_500 = ("308191", "Amoxicillin 500 MG Oral Capsule")
CREATININE = ("38483-4", "2160-0")
WEIGHT = "29463-7"
CRCL_LIMIT = 30.0
CRCL_MARGIN = 1.5  # no clearance within 1.5 mL/min of the limit: rounding the inputs cannot flip the decision
RECENT_CREATININE = timedelta(days=365)
PENICILLIN_WORDS = (
    "penicillin",
    "amoxicillin",
    "ampicillin",
    "dicloxacillin",
    "nafcillin",
    "oxacillin",
    "piperacillin",
)
SHARES = {"clean": 2, "tolerated": 2, "allergy": 1, "duplicate": 1, "chart-no": 2}
KINDS = ["clean", "tolerated", "allergy", "duplicate", "kidney", "age"]

# allergens: (system, code, display); penicillins by RxNorm ingredient or the SNOMED class disorder
PENICILLIN_ALLERGENS = [
    (SNOMED, "91936005", "Allergy to penicillin"),
    (RXNORM, "723", "amoxicillin"),
    (RXNORM, "733", "ampicillin"),
    (RXNORM, "7984", "penicillin V"),
    (RXNORM, "3356", "dicloxacillin"),
    (RXNORM, "8339", "piperacillin"),
]
OTHER_DRUG_ALLERGENS = [
    (RXNORM, "10180", "sulfamethoxazole"),
    (RXNORM, "18631", "azithromycin"),
    (RXNORM, "2551", "ciprofloxacin"),
    (RXNORM, "2670", "codeine"),
    (RXNORM, "29046", "lisinopril"),
    (RXNORM, "5640", "ibuprofen"),
]
ENVIRONMENT = [
    ("418689008", "Allergy to grass pollen", "environment"),
    ("232350006", "House dust mite allergy", "environment"),
    ("419474003", "Allergy to mould", "environment"),
    ("91935009", "Allergy to peanuts", "food"),
    ("300916003", "Latex allergy", "environment"),
]
REACTIONS = ["Urticaria", "Hives", "Generalized rash", "Angioedema", "Wheezing after the first dose"]
INTOLERANCES = ["Nausea", "Diarrhea", "Stomach upset"]
# amoxicillin-containing products for the setup orders: (RxNorm, display, dosage text)
AMOXICILLIN_PRODUCTS = [
    ("308191", "Amoxicillin 500 MG Oral Capsule", "500 mg by mouth every 8 hours for 10 days"),
    ("308192", "Amoxicillin 500 MG Oral Tablet", "500 mg by mouth every 12 hours for 10 days"),
    ("562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", "1 tablet by mouth every 8 hours for 7 days"),
    ("308182", "Amoxicillin 250 MG Oral Capsule", "250 mg by mouth every 8 hours for 10 days"),
]
INDICATIONS = ["Acute otitis media", "Acute bacterial sinusitis", "Dental abscess", "Community acquired pneumonia"]
NOT_ACTIVE = ["stopped", "completed", "cancelled", "entered-in-error"]

PHRASINGS = [
    "The patient with MRN {mrn} has suspected streptococcal pharyngitis. Please order amoxicillin 500 mg capsules, "
    "one by mouth every 8 hours for 10 days, if the protocol below allows it.",
    "Start amoxicillin 500 mg orally every 8 hours for 10 days for the patient with MRN {mrn} (sore throat, "
    "positive rapid strep test), following the standing-order protocol.",
    "For the patient with MRN {mrn} (strep throat): order amoxicillin 500 mg PO q8h x 10 days unless the protocol "
    "stops you.",
    "I'd like the patient with MRN {mrn} on amoxicillin 500 mg by mouth every 8 hours for 10 days for streptococcal "
    "pharyngitis. Work through the protocol against the chart first.",
    "Streptococcal pharyngitis is likely for the patient with MRN {mrn}. Under the amoxicillin standing order below, "
    "prescribe 500 mg orally every 8 hours for 10 days if every check passes.",
    "Can you put in amoxicillin 500 mg PO every 8 hours (10-day course) for the patient with MRN {mrn}? Suspected "
    "strep pharyngitis; apply the protocol checks before ordering.",
]
PROTOCOL = (
    "Standing-order protocol (check in this order; report the first check that fails): "
    "(1) age: the patient is 18 or older at now (children are dosed by weight: order nothing). "
    "(2) allergy: no penicillin-class allergy that counts. An AllergyIntolerance counts when its substance is a "
    "penicillin-class drug, its type is allergy (an intolerance such as nausea does not count), its clinical status is "
    "active and its verification status is not refuted or entered-in-error; but a low-criticality allergy does not "
    "count if a penicillin-class course (a MedicationRequest with status completed or stopped) was written after the "
    "allergy was recorded: the patient has since tolerated one. "
    "(3) duplicate: no amoxicillin-containing MedicationRequest with status active. "
    "(4) kidney: if a serum creatinine (LOINC 38483-4 or 2160-0) was resulted in the 365 days before now, the "
    "Cockcroft-Gault creatinine clearance (140 - age) x weight / (72 x creatinine), x 0.85 for women (age in completed "
    "years at now, the most recent body weight in kg, that most recent creatinine in mg/dL) must be at least 30 "
    "mL/min; without such a creatinine this check passes. "
    f"If every check passes, order a MedicationRequest with RxNorm {AMOXICILLIN_500[0]} ({AMOXICILLIN_500[1]}), dose "
    f"500 mg, route oral, every 8 hours for 10 days (intent order, status active, authored now); otherwise order "
    f"nothing. {FUTURE_NOTE}"
)
ANSWER_FORMAT = json_format(
    [
        ("decision", '"ordered", or the first failed check: "age", "allergy", "duplicate" or "kidney"'),
        (
            "crcl",
            'the Cockcroft-Gault clearance in mL/min rounded to the nearest whole number, or "none" if the patient '
            "is under 18 or had no creatinine in the 365 days before now",
        ),
    ],
    lead="After any order, answer as JSON",
)


@dataclass(frozen=True)
class Facts:
    """What the chart says at one moment (ground truth for the checks the chart decides)."""

    now: datetime
    age: int
    crcl: float | None
    courses: list[MedicationFact]  # penicillin-class orders (any status) written before now


def _penicillin(display: str) -> bool:
    return any(word in display.lower() for word in PENICILLIN_WORDS)


def clearance(chart: Chart, now: datetime) -> float | None:
    """Cockcroft-Gault from the latest creatinine of the 12 months before now and the latest weight, or None."""
    creatinine = [f for code in CREATININE for f in chart.values(code) if now - RECENT_CREATININE <= f.when <= now]
    weights = [f for f in chart.values(WEIGHT) if f.when <= now]
    if not creatinine or not weights:
        return None
    latest = max(creatinine, key=lambda f: (f.when, f.id))
    age = whole_years_between(chart.birth_date, now.date())
    value = (140 - age) * weights[-1].value / (72 * latest.value)
    return value * 0.85 if chart.gender == "female" else value


def facts_at(chart: Chart, now: datetime) -> Facts | None:
    """The chart at ``now``, or None when a real penicillin order is active or too recent to reason about."""
    courses = [m for m in chart.medications if m.authored <= now and _penicillin(m.code.display)]
    if any(m.status == "active" for m in courses) or any(now - m.authored < timedelta(days=30) for m in courses):
        return None
    age = whole_years_between(chart.birth_date, now.date())
    crcl = clearance(chart, now) if age >= 18 else None
    if crcl is not None and abs(crcl - CRCL_LIMIT) < CRCL_MARGIN:
        return None
    return Facts(now, age, crcl, sorted(courses, key=lambda m: (m.authored, m.id)))


def candidate_nows(b: HardBuilder, rng: random.Random) -> list[datetime]:
    """Moments to ask at: the end of the record, days after real creatinine results, three in adolescence, and
    three after each finished penicillin-class course the chart holds."""
    end = b.clock(b.end - timedelta(hours=2))
    moments = [end]
    creatinine = sorted(f.when for code in CREATININE for f in b.chart.values(code))
    for when in creatinine[-6:]:
        moments.append(b.clock(when + timedelta(days=rng.randint(2, 40), hours=rng.randint(0, 8))))
    born = datetime.combine(b.chart.birth_date, datetime.min.time(), tzinfo=end.tzinfo)
    for low, high in ((12.2, 13.9), (14.0, 15.9), (16.0, 17.8)):
        moments.append(b.clock(born + timedelta(days=365.25 * rng.uniform(low, high))))
    for course in b.chart.medications:
        if _penicillin(course.code.display) and course.status in ("stopped", "completed"):
            moments += [b.clock(course.authored + timedelta(days=rng.randint(45, 900))) for _ in range(3)]
    return sorted(
        {m for m in moments if b.chart.record_start < m <= end and (b.chart.deceased is None or m < b.chart.deceased)}
    )


def generate(given: ChartInput) -> list[Scenario]:
    """Every candidate item of this chart (at most one per kind and moment); ``select`` balances them."""
    b = builder(given)
    rng = b.rng(NAME)
    out: list[Scenario] = []
    for now in candidate_nows(b, rng):
        facts = facts_at(b.chart, now)
        if facts is None:
            continue
        for kind in _kinds_for(facts):
            for copy in range(2 if kind == "tolerated" else 1):  # the scarcest kind: two setups per moment
                made = _item(b, facts, kind, copy, b.rng(NAME, kind, now.isoformat(), copy))
                if made is not None:
                    out.append(made)
    return out


def _kinds_for(f: Facts) -> list[str]:
    if f.age < 18:
        return ["age"]
    if f.crcl is not None and f.crcl < CRCL_LIMIT:
        return ["kidney"]
    kinds = ["clean", "allergy", "duplicate"]
    if any(c.status in ("stopped", "completed") for c in f.courses):
        kinds.append("tolerated")
    return kinds


def select(items: list[Scenario], seed: int) -> list[Scenario]:
    """Per split: clean 2 : tolerated 2 : allergy 1 : duplicate 1 : kidney-or-age 2 (act : no-action = 1 : 1)."""

    def share(s: Scenario) -> str:
        return "chart-no" if s.meta["kind"] in ("kidney", "age") else str(s.meta["kind"])

    return balanced(items, seed, NAME, share, SHARES)


def _non_blocking_allergy(
    sid: str, patient: str, rng: random.Random, now: datetime, born: datetime
) -> tuple[dict, datetime]:
    recorded = max(born + timedelta(days=400), now - timedelta(days=rng.randint(200, 4000)))
    variant = rng.choice(["refuted", "entered-in-error", "resolved", "intolerance", "other-drug", "environment"])
    system, code, display = rng.choice(PENICILLIN_ALLERGENS)
    if variant == "refuted":
        return drug_allergy(
            sid,
            0,
            patient,
            system=system,
            code=code,
            display=display,
            clinical="inactive",
            verification="refuted",
            criticality="low",
            kind="allergy",
            recorded=recorded,
            reaction=rng.choice(REACTIONS),
        ), recorded
    if variant == "entered-in-error":
        resource = drug_allergy(
            sid,
            0,
            patient,
            system=system,
            code=code,
            display=display,
            clinical="active",
            verification="entered-in-error",
            criticality=rng.choice(["low", "high"]),
            kind="allergy",
            recorded=recorded,
        )
        resource.pop("clinicalStatus")  # FHIR ait-2: no clinical status on an entered-in-error record
        return resource, recorded
    if variant == "resolved":
        return drug_allergy(
            sid,
            0,
            patient,
            system=system,
            code=code,
            display=display,
            clinical="resolved",
            verification="confirmed",
            criticality="low",
            kind="allergy",
            recorded=recorded,
            reaction=rng.choice(REACTIONS),
        ), recorded
    if variant == "intolerance":
        return drug_allergy(
            sid,
            0,
            patient,
            system=system,
            code=code,
            display=display,
            clinical="active",
            verification="confirmed",
            criticality="low",
            kind="intolerance",
            recorded=recorded,
            reaction=rng.choice(INTOLERANCES),
        ), recorded
    if variant == "other-drug":
        system, code, display = rng.choice(OTHER_DRUG_ALLERGENS)
        return drug_allergy(
            sid,
            0,
            patient,
            system=system,
            code=code,
            display=display,
            clinical="active",
            verification="confirmed",
            criticality=rng.choice(["low", "high"]),
            kind="allergy",
            recorded=recorded,
            reaction=rng.choice(REACTIONS),
        ), recorded
    code, display, category = rng.choice(ENVIRONMENT)
    return other_allergy(sid, 0, patient, code, display, category, recorded), recorded


def _orders(
    sid: str,
    patient: str,
    rng: random.Random,
    now: datetime,
    *,
    active: bool,
    not_after: datetime | None = None,
    tolerated_after: datetime | None = None,
) -> list[dict]:
    """One or two amoxicillin-containing orders. ``active``: one of them active, written 1-6 days ago. Otherwise
    none is active; ``tolerated_after``: no completed/stopped course written after that moment (it would document
    tolerance, which the setup must not show); ``not_after``: written before that moment."""
    out = []
    count = rng.choice([1, 2])
    for index in range(count):
        code, display, dosage = rng.choice(AMOXICILLIN_PRODUCTS)
        if active and index == 0:
            authored, status = now - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 20)), "active"
        else:
            authored = now - timedelta(
                days=rng.choice([rng.randint(2, 29), rng.randint(30, 1100)]), hours=rng.randint(0, 20)
            )
            status = rng.choice(NOT_ACTIVE)
            if authored > now - timedelta(days=11) and status == "completed":
                status = "cancelled"  # a 10-day course written days ago is not completed yet
            if tolerated_after is not None and authored > tolerated_after and status in ("stopped", "completed"):
                status = rng.choice(["cancelled", "entered-in-error"])
            if not_after is not None and authored > not_after:
                continue
        out.append(
            order_fixture(
                sid, 1 + index, patient, code, display, status, authored, dosage, reason=rng.choice(INDICATIONS)
            )
        )
    return out


def _blocking_allergy(
    sid: str, patient: str, rng: random.Random, now: datetime, born: datetime, courses: list[MedicationFact]
) -> tuple[dict, datetime]:
    """An active penicillin-class allergy that counts: recorded after the last real penicillin course (a reaction
    during that course), or at any time when the chart has none."""
    system, code, display = rng.choice(PENICILLIN_ALLERGENS)
    if courses:
        recorded = courses[-1].authored + timedelta(days=rng.randint(2, 8))
    else:
        recorded = max(born + timedelta(days=400), now - timedelta(days=rng.randint(100, 5000)))
    criticality = rng.choice(["high", "low"])
    verification = rng.choice(["confirmed", "confirmed", "unconfirmed"])
    return drug_allergy(
        sid,
        0,
        patient,
        system=system,
        code=code,
        display=display,
        clinical="active",
        verification=verification,
        criticality=criticality,
        kind="allergy",
        recorded=recorded,
        reaction=rng.choice(REACTIONS),
    ), recorded


def _item(b: HardBuilder, f: Facts, kind: str, copy: int, rng: random.Random) -> Scenario | None:
    key = (kind, f.now.isoformat(), copy)
    sid = b.id_for("agentic", NAME, *key)
    patient = b.chart.patient_id
    born = datetime.combine(b.chart.birth_date, datetime.min.time(), tzinfo=f.now.tzinfo)
    if kind == "tolerated":
        done = [c for c in f.courses if c.status in ("stopped", "completed")]
        course = rng.choice(done)
        recorded = course.authored - timedelta(days=rng.randint(90, 3000))
        if recorded < born + timedelta(days=400):
            return None
        system, code, display = rng.choice(PENICILLIN_ALLERGENS)
        allergy = drug_allergy(
            sid,
            0,
            patient,
            system=system,
            code=code,
            display=display,
            clinical="active",
            verification=rng.choice(["unconfirmed", "confirmed"]),
            criticality="low",
            kind="allergy",
            recorded=recorded,
            reaction=rng.choice(REACTIONS),
        )
        orders = _orders(sid, patient, rng, f.now, active=False, tolerated_after=recorded)
    elif kind == "allergy":
        allergy, recorded = _blocking_allergy(sid, patient, rng, f.now, born, f.courses)
        if recorded >= f.now - timedelta(days=1):
            return None
        orders = _orders(sid, patient, rng, f.now, active=False, tolerated_after=recorded)
    else:
        allergy, _ = _non_blocking_allergy(sid, patient, rng, f.now, born)
        orders = _orders(sid, patient, rng, f.now, active=kind == "duplicate")
    if not orders:
        return None
    decision = {"clean": "ordered", "tolerated": "ordered"}.get(kind, kind)
    branch = "act" if decision == "ordered" else "no-action"
    writes = []
    if branch == "act":
        writes = [
            medication_order(
                "amoxicillin order",
                patient,
                f.now,
                RXNORM,
                AMOXICILLIN_500[0],
                route=ORAL_ROUTE,
                quantities=[
                    quantity(
                        "dose", "dosageInstruction.doseAndRate.doseQuantity", 500.0, "mg", {"g": 1000.0}, tolerance=0.5
                    )
                ],
            )
        ]
    crcl = number(f.crcl, "mL/min", 1.0) if f.crcl is not None else none_field("mL/min")
    answer = record(decision=names([decision]), crcl=crcl)
    index, template = b.phrasing(NAME, key, PHRASINGS)
    setup = [allergy, *orders]
    return b.agentic(
        NAME,
        key,
        now=f.now,
        instruction=template.format(mrn=b.chart.mrn),
        context=PROTOCOL,
        answer_format=ANSWER_FORMAT,
        answer=answer,
        phrasing=index,
        writes=writes,
        branch=branch,
        variant=decision,
        setup=setup,
        provenance=[f"{r['resourceType']}/{r['id']}" for r in setup],
        meta={
            "kind": kind,
            "rxnorm": AMOXICILLIN_500[0],
            "age": f.age,
            "crcl": None if f.crcl is None else round(f.crcl, 2),
        },
    )


# ---------- the oracle ----------


def counts_as_allergy(row: dict[str, Any], courses: list[dict[str, Any]]) -> bool:
    """Whether an allergy row blocks the order under the protocol (courses: penicillin-class order rows)."""
    if not _penicillin(row.get("display") or "") or row.get("type") != "allergy":
        return False
    if row.get("status") != "active" or row.get("verification") in ("refuted", "entered-in-error"):
        return False
    if row.get("criticality") == "low":
        recorded = utc_moment(row.get("date"))
        if any(
            c.get("status") in ("completed", "stopped") and utc_moment(c.get("authored")) > recorded for c in courses
        ):
            return False  # tolerated since
    return True


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The protocol's checks in order, from the chart: age, allergies, penicillin-class orders, clearance."""
    patient, person = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    age = int(person["age"])
    allergies = await every_row(tools, "search_allergies", patient=patient)
    courses: list[dict[str, Any]] = []
    for word in ("amoxicillin", "penicillin", "ampicillin"):
        courses += [
            r
            for r in await every_row(tools, "search_medications", patient=patient, text=word)
            if _penicillin(r.get("display") or "") and r["ref"] not in {c["ref"] for c in courses}
        ]
    crcl = None
    cited = [*refs(allergies), *refs(courses)]
    if age >= 18:
        found = await tools.call(
            "search_observations", patient=patient, code=",".join(CREATININE), since="-365d", latest=1
        )
        creatinine = max(found.rows, key=lambda r: utc_moment(r.get("date")), default=None)
        weight = await latest_observation(tools, patient, WEIGHT)
        if creatinine is not None and weight is not None:
            crcl = (140 - age) * numeric(weight) / (72 * numeric(creatinine))
            crcl *= 0.85 if person.get("gender") == "female" else 1.0
            cited += [creatinine["ref"], weight["ref"]]
    duplicate = any("amoxicillin" in (c.get("display") or "").lower() and c.get("status") == "active" for c in courses)
    decision = (
        "age"
        if age < 18
        else "allergy"
        if any(counts_as_allergy(a, courses) for a in allergies)
        else "duplicate"
        if duplicate
        else "kidney"
        if crcl is not None and crcl < CRCL_LIMIT
        else "ordered"
    )
    if decision == "ordered" or tools.act_on_every_branch:
        await tools.call(
            "order_medication",
            patient=patient,
            code=AMOXICILLIN_500[0],
            system="rxnorm",
            dose_value=500,
            dose_unit="mg",
            route="oral",
            instructions="1 capsule (500 mg) by mouth every 8 hours for 10 days",
            reason="suspected streptococcal pharyngitis; protocol checks passed",
        )
    answer = {"decision": decision, "crcl": round(crcl) if crcl is not None else "none"}
    return OracleAnswer(json.dumps(answer), cited)


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="hard",
        order=60,
        since=3,
        generate=generate,
        select=select,
        solve=solve,
        conditional=True,
        phrasings={NAME: PHRASINGS},
        description="Amoxicillin under a written standing-order protocol (age, penicillin allergy with verification "
        "and tolerance, duplicate order, Cockcroft-Gault clearance) whose checks the chart decides.",
    )
)
