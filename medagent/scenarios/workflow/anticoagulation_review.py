"""Anticoagulation clinic review of a patient on warfarin for atrial fibrillation: INR, dose, recheck, risks.

Modelled on a pharmacist-run warfarin clinic: the latest valid INR against the 2.0-3.0 target, a written
weekly-dose adjustment table, the INR recheck interval, interacting drugs (an NSAID order is stopped), and the
CHA2DS2-VASc score from the problem list and demographics. Synthea charts hold no INR, so the setup adds the
clinic's INR log (point-of-care results under the device's local code and laboratory results, one entered in
error, one from a second feed) and the clinic's notes with the current regimen (an older note holds a
superseded one). The chart decides the score (age, sex, heart failure, hypertension, diabetes with its
complications, vascular disease; prediabetes does not count; a stroke entered in error does not count) and
which interacting orders exist.

Patients: every patient with an active warfarin order and atrial fibrillation; nows at monthly clinic visits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.clock import parse_instant, whole_years_between
from medagent.scenarios.models import Checkpoint, Scenario
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.common import (
    NoteRequest,
    TaskText,
    WorkflowBuilder,
    chart_summary,
    date_field,
    days_window,
    declare,
    fact_date,
    fact_no_reference,
    fact_number,
    fact_reference,
    fact_written,
    lab_order,
    note_checkpoint,
    number_field,
    record_answer,
    stop_order,
)
from medagent.scenarios.workflow.reading import (
    Action,
    ChartSummary,
    NoteDraft,
    Plan,
    ToolCaller,
    invalid_refs,
    lab_readings,
    medication_rows,
    note_rows,
)
from medagent.scenarios.workflow.record import Reading, Record
from medagent.value_sets import value_set

CATEGORY = "anticoagulation_review"
INR = "6301-6"
INR_DISPLAY = "INR in Platelet poor plasma by Coagulation assay"
AF = "49436004"
HYPERTENSION = "38341003"
LOW, HIGH = 2.0, 3.0
WEEKLY_DOSES = (25.0, 27.5, 30.0, 32.5, 35.0, 37.5, 40.0)
RECHECK_CHANGED, RECHECK_STABLE = 7, 28
PER_PATIENT = 6
INR_NOISE = ("entered_in_error", "second_feed", "superseded_note", "refuted_stroke")
REGIMEN_TEMPLATE = "Current regimen: warfarin {dose:g} mg per week"

PHRASINGS = [
    "Anticoagulation clinic visit for the patient with MRN {mrn} (warfarin for atrial fibrillation). Review the INR, "
    "adjust per the protocol, book the recheck and document.",
    "Please run the warfarin review for MRN {mrn}: latest INR, dose decision, interacting drugs, stroke risk score, "
    "recheck order and a structured note.",
    "The patient with MRN {mrn} is seen in the INR clinic today. Apply our warfarin protocol to the chart and carry "
    "it out.",
    "Warfarin management for MRN {mrn}: work through the protocol below, make the orders and changes it calls for, "
    "and write the clinic note.",
    "INR clinic: patient MRN {mrn}. Decide the weekly dose from the latest INR, handle interactions, score the "
    "stroke risk and schedule the next INR.",
    "Could you do today's anticoagulation review for the patient with MRN {mrn}? Protocol below; orders, dose and "
    "note please.",
]
PROTOCOL_TITLE = "warfarin clinic, atrial fibrillation"
PROTOCOL = [
    f"Use the most recent valid INR (LOINC {INR}; a point-of-care INR counts; the same result from two feeds counts "
    "once; results entered in error do not count). Target range 2.0-3.0.",
    "Weekly dose: start from the current weekly warfarin dose in the most recent anticoagulation clinic note. INR "
    "below 1.5: increase it by 15%; 1.5-1.9: increase by 10%; 2.0-3.0: no change; 3.1-3.9: decrease by 10%; 4.0 or "
    "more: decrease by 15%. Round the new weekly dose to the nearest 2.5 mg.",
    f"Recheck: order an INR (order_service, LOINC {INR}, kind lab) with occurrence {RECHECK_CHANGED} days from "
    f"today when the dose changed, {RECHECK_STABLE} days from today when it did not.",
    "Interactions: stop every active NSAID order (bleeding risk on warfarin). Do not change other medicines.",
    "Stroke risk: compute CHA2DS2-VASc from the chart as of today: congestive heart failure 1, hypertension 1, age "
    "75 or older 2, diabetes mellitus 1, prior stroke/TIA/thromboembolism 2, vascular disease (prior myocardial "
    "infarction, coronary or peripheral artery disease) 1, age 65-74 1, female sex 1. Count diagnoses that are on "
    "the chart (not refuted or entered in error).",
]
RECORDING = [
    "Orders: order_service (LOINC, kind lab, occurrence). Stopping an order: discontinue_medication.",
]
NOTE = NoteRequest(
    "progress_note",
    (
        ("results", "the INR the decision rests on (value and date), citing it"),
        (
            "medications",
            "the current and the new weekly warfarin dose in mg (write the new one as 'new weekly dose N "
            "mg'), and any order you stopped",
        ),
        ("assessment", "the CHA2DS2-VASc score (write it as 'CHA2DS2-VASc N')"),
        ("plan", "the INR recheck (cite the order) and any order you stopped (cite it)"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"inr": the INR the decision rests on (1 decimal), "inr_date": its date (YYYY-MM-DD), '
    '"new_weekly_dose_mg": the new weekly warfarin dose in mg, "recheck_in_days": 7 or 28, "cha2ds2_vasc": the '
    "score (a whole number)}."
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


@dataclass(frozen=True)
class Facts:
    inr: tuple[Reading, ...]
    inr_invalid: tuple[str, ...]
    weekly_dose: float
    age: int
    female: bool
    heart_failure: bool
    hypertension: bool
    diabetes: bool
    stroke: bool
    vascular: bool
    nsaids: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    new_dose: float
    recheck: int
    score: int


def balance(scenario: Scenario) -> str:
    """The branch kept 1:1: the weekly dose changed (INR out of range) or kept."""
    return str(scenario.meta["decision"]["dose_changed"])


def adjust(dose: float, inr: float) -> float:
    factor = 1.15 if inr < 1.5 else 1.10 if inr < LOW else 1.0 if inr <= HIGH else 0.90 if inr < 4.0 else 0.85
    return round(dose * factor / 2.5) * 2.5


def cha2ds2_vasc(f: Facts) -> int:
    return (
        f.heart_failure
        + f.hypertension
        + (2 if f.age >= 75 else 1 if f.age >= 65 else 0)
        + f.diabetes
        + 2 * f.stroke
        + f.vascular
        + f.female
    )


def decide(facts: Facts, now: datetime) -> Decision:
    inr = round(facts.inr[-1].value, 1)
    new = adjust(facts.weekly_dose, inr)
    return Decision(
        new_dose=new, recheck=RECHECK_CHANGED if new != facts.weekly_dose else RECHECK_STABLE, score=cha2ds2_vasc(facts)
    )


# ---------- ground truth ----------


def condition_flags(record: Record, now: datetime) -> dict[str, bool]:
    groups = {
        "heart_failure": value_set("heart_failure").codes,
        "hypertension": {HYPERTENSION},
        "diabetes": value_set("diabetes").codes,
        "stroke": value_set("cerebrovascular").codes,
        "vascular": value_set("ascvd").codes,
    }
    return {name: bool(record.ever_diagnosed(codes, now)) for name, codes in groups.items()}


def regimen_of(notes: list[tuple[datetime, str]]) -> float:
    """The weekly dose of the most recent note that states a regimen."""
    for _, text in sorted(notes, reverse=True):
        if "Current regimen: warfarin " in text:
            return float(text.split("Current regimen: warfarin ")[1].split(" mg per week")[0])
    raise ValueError("no regimen note")


def facts_of(record: Record, now: datetime) -> Facts:
    nsaids = value_set("nsaids").codes
    chart = record.chart
    invalid = tuple(sorted({r.ref for r in record.results if r.code == INR and not r.valid and r.when <= now}))
    return Facts(
        inr=tuple(record.readings(INR, now)),
        inr_invalid=invalid,
        weekly_dose=regimen_of([(n.when, n.text) for n in record.notes_until(now)]),
        age=whole_years_between(chart.birth_date, now.date()),
        female=chart.gender == "female",
        nsaids=tuple(o.ref for o in record.active_orders(nsaids, now)),
        **condition_flags(record, now),
    )


# ---------- generation ----------


def _periods(b: WorkflowBuilder) -> list[tuple[datetime, datetime]]:
    """When the patient is on warfarin with atrial fibrillation: from the order to the end of record or death."""
    anticoagulants = value_set("anticoagulants").codes
    af = [c.onset for c in b.chart.conditions if c.code.code == AF]
    starts = [m.authored for m in b.chart.medications if m.code.code in anticoagulants and m.status == "active"]
    if not af or not starts:
        return []
    start = max(min(starts), min(af)) + timedelta(days=21)
    return [(start, b.end - timedelta(days=1))] if b.end - start > timedelta(days=7) else []


def generate(b: WorkflowBuilder) -> list[Scenario]:
    rng = b.rng(CATEGORY)
    out: list[Scenario] = []
    for start, end in _periods(b):
        span = (end - start).days
        count = min(PER_PATIENT, max(1, span // 40))
        for number in range(count):
            moment = start + timedelta(days=span * (number + rng.random()) / count)
            now = b.clock(moment.replace(hour=9) + timedelta(minutes=rng.randint(0, 300)))
            if not b.alive_at(now) or now > end:
                continue
            out.append(_item(b, now, number, rng, in_range=number % 2 == 0))
    return out


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random, *, in_range: bool) -> Scenario:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    noise = [INR_NOISE[(turn + i) % len(INR_NOISE)] for i in range(2)]
    setup: list[dict] = []

    def add(resource: dict) -> None:
        setup.append(resource)

    dose = rng.choice(WEEKLY_DOSES)
    visits = sorted(now - timedelta(days=d) for d in rng.sample(range(24, 120), 3))
    for visit in visits[:-1]:
        add(
            fx.lab_result(
                sid,
                len(setup),
                patient,
                INR,
                INR_DISPLAY,
                round(rng.uniform(2.0, 3.0), 1),
                "{INR}",
                visit,
                local=True,
                category="laboratory",
            )
        )
    add(
        fx.clinical_note(
            sid,
            len(setup),
            patient,
            f"Anticoagulation clinic. INR in range. {REGIMEN_TEMPLATE.format(dose=dose)} (5 mg tablets). "
            "Reviewed bleeding signs: none. Next INR in 4 weeks.",
            visits[-1],
            "Anticoagulation pharmacist",
            title="Anticoagulation clinic",
        )
    )
    if "superseded_note" in noise:
        old = rng.choice([d for d in WEEKLY_DOSES if d != dose])
        add(
            fx.clinical_note(
                sid,
                len(setup),
                patient,
                f"Anticoagulation clinic. {REGIMEN_TEMPLATE.format(dose=old)}. Dose adjusted after a low INR.",
                visits[0] - timedelta(days=rng.randint(20, 60)),
                "Anticoagulation pharmacist",
                title="Anticoagulation clinic",
            )
        )
    # today's INR: in range, or out of range by a clear margin
    value = (
        round(rng.uniform(2.1, 2.9), 1)
        if in_range
        else rng.choice([round(rng.uniform(1.2, 1.8), 1), round(rng.uniform(3.3, 4.6), 1)])
    )
    drawn = now - timedelta(hours=rng.randint(1, 3))
    add(fx.lab_result(sid, len(setup), patient, INR, INR_DISPLAY, value, "{INR}", drawn, local=turn % 2 == 0))
    if "second_feed" in noise:
        add(fx.lab_result(sid, len(setup), patient, INR, INR_DISPLAY, value, "{INR}", drawn, feed=True))
    if "entered_in_error" in noise:
        wrong = round(rng.uniform(3.4, 4.5), 1) if in_range else round(rng.uniform(2.2, 2.8), 1)
        add(
            fx.lab_result(
                sid,
                len(setup),
                patient,
                INR,
                INR_DISPLAY,
                wrong,
                "{INR}",
                drawn + timedelta(minutes=rng.randint(10, 50)),
                status="entered-in-error",
            )
        )
    if "refuted_stroke" in noise:
        add(
            fx.condition(
                sid,
                len(setup),
                patient,
                "230690007",
                "Cerebrovascular accident (disorder)",
                now - timedelta(days=rng.randint(200, 900)),
                verification="entered-in-error",
            )
        )
    nsaids = value_set("nsaids").codes
    base = b.record()
    if turn % 3 != 0 and not base.active_orders(nsaids, now):
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                "849574",
                "Naproxen sodium 220 MG Oral Tablet",
                "active",
                now - timedelta(days=rng.randint(10, 60)),
                "1 tablet twice daily as needed for knee pain",
            )
        )
    elif turn % 3 == 0:
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                "310965",
                "Ibuprofen 200 MG Oral Tablet",
                "stopped",
                now - timedelta(days=rng.randint(90, 300)),
                "1-2 tablets every 6 hours as needed",
            )
        )
    for resource in fx.allergy_noise(sid, len(setup), patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now)
    decision = decide(facts, now)
    return _scenario(b, key, now, record, facts, decision, setup, noise, dose)


def _scenario(
    b: WorkflowBuilder,
    key: tuple,
    now: datetime,
    record: Record,
    facts: Facts,
    decision: Decision,
    setup: list[dict],
    noise: list[str],
    dose: float,
) -> Scenario:
    patient = b.chart.patient_id
    latest = facts.inr[-1]
    recheck = lab_order(
        "INR recheck",
        patient,
        now,
        INR,
        windows=[days_window(now, "recheck day", decision.recheck - 1, decision.recheck + 1)],
    )
    writes = [NOTE.spec(patient, now), recheck]
    stops = [stop_order(f"stop {ref}", ref) for ref in facts.nsaids]
    writes += stops
    checkpoints = [
        Checkpoint(name="latest valid INR", kind="fact", answer_fields=["inr", "inr_date"]),
        Checkpoint(name="weekly dose", kind="fact", answer_fields=["new_weekly_dose_mg"]),
        Checkpoint(name="INR recheck", kind="order", answer_fields=["recheck_in_days"], writes=["INR recheck"]),
        Checkpoint(name="stroke risk score", kind="fact", answer_fields=["cha2ds2_vasc"]),
    ]
    if stops:
        checkpoints.append(Checkpoint(name="NSAID stopped", kind="order", writes=[s.name for s in stops]))
    results = [
        fact_number("INR value", "results", latest.value, 0.05),
        fact_date("INR date", "results", latest.when),
        fact_reference("INR cited", "results", latest.refs),
    ]
    if facts.inr_invalid:
        results.append(fact_no_reference("no erroneous INR cited", "results", facts.inr_invalid))
    checkpoints.append(
        note_checkpoint(
            "note: INR, dose and score",
            [
                *results,
                fact_number("new weekly dose", "medications", decision.new_dose, 0.01),
                fact_number("CHA2DS2-VASc", "assessment", decision.score, 0.0),
                fact_written("orders cited", "plan", ["INR recheck", *(s.name for s in stops)]),
            ],
        )
    )
    checkpoints += chart_summary(record, now, stopped=facts.nsaids)
    checkpoints.append(Checkpoint(name="no other writes", kind="safety", no_other_writes=True))
    answer = record_answer(
        inr=number_field(round(latest.value, 1), "{INR}", 0.05, {"INR": 1.0, "": 1.0}),
        inr_date=date_field(latest.when),
        new_weekly_dose_mg=number_field(decision.new_dose, "mg", 0.01),
        recheck_in_days=number_field(float(decision.recheck), "d", 0.0, {"days": 1.0, "day": 1.0}),
        cha2ds2_vasc=number_field(float(decision.score), "", 0.0),
    )
    changed = decision.new_dose != dose
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch="act" if changed else "no-action",
        variant="dose-changed" if changed else "dose-kept",
        provenance=list(latest.refs),
        meta={
            "noise": noise,
            "decision": {
                "new_dose": decision.new_dose,
                "dose_changed": changed,
                "recheck": decision.recheck,
                "score": decision.score,
                "stop": list(facts.nsaids),
            },
        },
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    now = parse_instant(sc.now)
    person = await tools.call("get_patient", patient=patient)
    row = person.rows[0]
    age = whole_years_between(datetime.fromisoformat(row["birthDate"]).date(), now.date())
    inr, rows = await lab_readings(tools, patient, INR, "inr", since="-1y")
    notes = await note_rows(tools, patient, since="-1y", text="regimen")
    dose = regimen_of([(parse_instant(n["date"]), n["text"]) for n in notes])
    flags = {}
    for name, codes in (
        ("heart_failure", value_set("heart_failure").codes),
        ("hypertension", {HYPERTENSION}),
        ("diabetes", value_set("diabetes").codes),
        ("stroke", value_set("cerebrovascular").codes),
        ("vascular", value_set("ascvd").codes),
    ):
        result = await tools.call("search_conditions", patient=patient, code=",".join(sorted(codes)), limit=50)
        flags[name] = any(r.get("verification") not in ("refuted", "entered-in-error") for r in result.rows)
    meds = await medication_rows(tools, patient, status="current")
    nsaids = value_set("nsaids").codes
    return Facts(
        inr=tuple(inr),
        inr_invalid=tuple(invalid_refs(rows)),
        weekly_dose=dose,
        age=age,
        female=row.get("gender") == "female",
        nsaids=tuple(r["ref"] for r in meds if r["code"] in nsaids),
        **flags,
    )


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    now = parse_instant(sc.now)
    latest = facts.inr[-1]
    when = (now + timedelta(days=decision.recheck)).replace(hour=9, minute=0, second=0).isoformat()
    actions = [
        Action(
            "INR recheck",
            "order_service",
            patient=patient,
            code=INR,
            kind="lab",
            occurrence=when,
            reason=f"INR {latest.value:.1f}",
        )
    ]
    actions += [
        Action(
            f"stop {ref}", "discontinue_medication", medication_request=ref, reason="NSAID with warfarin: bleeding risk"
        )
        for ref in facts.nsaids
    ]
    note = NoteDraft("progress_note", "Anticoagulation clinic")
    note.add("results", f"INR {latest.value:.1f} on {latest.when.date()}.", entries=list(latest.refs))
    summary.add_to(
        note,
        stopped=facts.nsaids,
        medications_text=(
            f"Warfarin: current weekly dose {facts.weekly_dose:g} mg; new weekly dose {decision.new_dose:g} mg."
            + (" NSAID order stopped." if facts.nsaids else "")
        ),
    )
    note.add("assessment", f"CHA2DS2-VASc {decision.score}.")
    note.add("plan", f"INR recheck in {decision.recheck} days.", cite=[a.key for a in actions])
    answer = {
        "inr": round(latest.value, 1),
        "inr_date": latest.when.date().isoformat(),
        "new_weekly_dose_mg": decision.new_dose,
        "recheck_in_days": decision.recheck,
        "cha2ds2_vasc": decision.score,
    }
    other = RECHECK_STABLE if decision.recheck == RECHECK_CHANGED else RECHECK_CHANGED
    alternatives = [
        Action(
            "INR recheck (other interval)",
            "order_service",
            patient=patient,
            code=INR,
            kind="lab",
            occurrence=(now + timedelta(days=other)).replace(hour=9, minute=0, second=0).isoformat(),
        )
    ]
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=3,
    description="Warfarin clinic review: INR, weekly dose, recheck, interactions, CHA2DS2-VASc.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
    balance=balance,
)
