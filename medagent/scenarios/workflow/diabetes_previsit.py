"""Pre-visit planning for a diabetes follow-up: HbA1c trend, kidney screening, statin, eye exam; order what is due.

Modelled on a clinic's pre-visit protocol built from the ADA Standards of Care: HbA1c every 3 months when not
at goal (7.0%) and every 6 months at goal; a urine albumin/creatinine ratio yearly; a statin for adults aged
40-75 with diabetes unless one was not tolerated; a retinal exam yearly (one done elsewhere counts when a note
documents it). The chart decides each branch (the HbA1c history, the UACR dates, the age); the setup adds what
a clinician meets in a real record: an HbA1c entered in error, the latest one again from the reference
laboratory's feed, a point-of-care HbA1c under the device's local code, a statin stopped for myalgia that
only a note explains (or an order cancelled before it was filled), and an outside eye-exam report.

Patients: every adult with a diabetes diagnosis (value set ``diabetes``, complications included) before now,
an eGFR and two HbA1c results; nows fall between visits so that the HbA1c is due and not due about equally.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.answers import find_dates
from medagent.scenarios.clock import parse_instant, whole_years_between
from medagent.scenarios.codes import ORAL_ROUTE
from medagent.scenarios.models import Checkpoint, ExpectedAnswer, Scenario
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.common import (
    NoteRequest,
    TaskText,
    WorkflowBuilder,
    chart_summary,
    choice_field,
    date_field,
    declare,
    drug_order,
    fact_date,
    fact_no_reference,
    fact_number,
    fact_reference,
    fact_text,
    fact_written,
    lab_order,
    no_drug_order,
    no_lab_order,
    note_checkpoint,
    number_field,
    one_decimal,
    record_answer,
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

CATEGORY = "diabetes_previsit"
A1C, UACR, CREATININE = "4548-4", "14959-1", "38483-4"
A1C_DISPLAY = "Hemoglobin A1c/Hemoglobin.total in Blood"
SIMVASTATIN = ("312961", "Simvastatin 20 MG Oral Tablet")
GOAL = 7.0
DUE_ABOVE_GOAL, DUE_AT_GOAL, UACR_DAYS, EYE_DAYS = 90, 180, 365, 365
STATIN_AGES = (40, 75)
MARGIN_DAYS = 10  # no now within 10 days of a due threshold
PER_PATIENT = 4
STATIN_VARIANTS = ("none", "cancelled", "intolerant", "active")
EYE_VARIANTS = ("recent", "old", "none")
A1C_NOISE = ("entered_in_error", "second_feed", "point_of_care")

PHRASINGS = [
    "Please do the pre-visit planning for the diabetes follow-up of the patient with MRN {mrn}: review the chart "
    "against our diabetes protocol, order what is due and write the visit-prep note.",
    "The patient with MRN {mrn} comes in for a diabetes check soon. Prepare the visit: apply the protocol below, "
    "place the orders that are due and document it.",
    "Pre-visit prep for MRN {mrn} (diabetes follow-up). Go through the protocol, order whatever is due, and leave "
    "a structured prep note for the visit.",
    "Diabetes visit coming up for the patient with MRN {mrn}. Check HbA1c, kidney screening, statin and eye exam "
    "per protocol; order what's due and write the prep note.",
    "Can you get the patient with MRN {mrn} ready for their diabetes follow-up? Follow the clinic protocol, put in "
    "the due orders and write up the pre-visit note.",
    "Run our diabetes pre-visit protocol on the chart of the patient with MRN {mrn}: orders for what is due, "
    "nothing else, and the prep note.",
]
PROTOCOL_TITLE = "diabetes pre-visit planning"
PROTOCOL = [
    f"HbA1c (LOINC {A1C}; a point-of-care HbA1c counts): order an HbA1c when the most recent valid result is "
    f"{GOAL:.1f}% or higher and more than {DUE_ABOVE_GOAL} days old, or below {GOAL:.1f}% and more than "
    f"{DUE_AT_GOAL} days old, or when there is none.",
    f"Kidney screening: order a urine albumin/creatinine ratio (LOINC {UACR}) when none was resulted in the past "
    f"{UACR_DAYS} days.",
    f"Statin: patients with diabetes aged {STATIN_AGES[0]} to {STATIN_AGES[1]} years should take a statin. If there "
    f"is no active statin order, order simvastatin 20 mg by mouth once daily (RxNorm {SIMVASTATIN[0]}, "
    f"{SIMVASTATIN[1]}; dose 20 mg, route oral), unless a statin was stopped before because the patient did not "
    "tolerate it: then order none and document the intolerance. Outside that age range, order no statin.",
    f"Eye exam: a dilated retinal exam is due when none is documented in the past {EYE_DAYS} days (an exam done "
    "elsewhere counts when a note documents it). It is booked at the visit: do not order it, report it.",
    "Order nothing else.",
]
RECORDING = [
    "Orders: labs with order_service (LOINC code, kind lab); medicines with order_medication (RxNorm code, dose, "
    "route).",
]
NOTE = NoteRequest(
    "progress_note",
    (
        (
            "results",
            "the most recent valid HbA1c (value in % and date) and the most recent serum creatinine "
            "(mg/dL), citing the HbA1c result",
        ),
        ("medications", "the statin status: the active statin, the one you ordered, or why none"),
        ("plan", "the orders you placed (cite each one) and whether the retinal exam is due"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"latest_a1c": the most recent valid HbA1c in % (1 decimal), "latest_a1c_date": its date '
    '(YYYY-MM-DD), "previous_a1c_date": the date of the valid HbA1c result before it, "creatinine": the most '
    'recent serum creatinine in mg/dL (2 decimals), "statin": "active", "ordered", "intolerant" or "not indicated", '
    '"eye_exam_due": true or false}.'
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


# ---------- the protocol (one pure function: the ground truth and the oracle both apply it) ----------


@dataclass(frozen=True)
class Facts:
    age: int
    a1c: tuple[Reading, ...]  # valid, oldest first
    a1c_invalid: tuple[str, ...]  # results entered in error (never cited)
    uacr_last: datetime | None
    creatinine: Reading | None  # mg/dL
    statin_active: tuple[str, ...]  # active statin orders
    statin_intolerance: bool  # a statin stopped because it was not tolerated (a note says so)
    eye_exam_last: datetime | None


@dataclass(frozen=True)
class Decision:
    order_a1c: bool
    order_uacr: bool
    statin: str
    eye_due: bool


def a1c_due(latest: Reading | None, now: datetime) -> bool:
    if latest is None:
        return True
    limit = DUE_ABOVE_GOAL if latest.value >= GOAL else DUE_AT_GOAL
    return now - latest.when > timedelta(days=limit)


def decide(facts: Facts, now: datetime) -> Decision:
    latest = facts.a1c[-1] if facts.a1c else None
    if not STATIN_AGES[0] <= facts.age <= STATIN_AGES[1]:
        statin = "not indicated"
    elif facts.statin_active:
        statin = "active"
    elif facts.statin_intolerance:
        statin = "intolerant"
    else:
        statin = "ordered"
    return Decision(
        order_a1c=a1c_due(latest, now),
        order_uacr=facts.uacr_last is None or now - facts.uacr_last > timedelta(days=UACR_DAYS),
        statin=statin,
        eye_due=facts.eye_exam_last is None or now - facts.eye_exam_last > timedelta(days=EYE_DAYS),
    )


# ---------- ground truth from the record ----------

INTOLERANCE_WORDS = ("myalgia", "did not tolerate", "intolerance")
EYE_WORDS = ("retinal exam", "dilated eye exam", "retinopathy screening")


def facts_of(record: Record, now: datetime, eye_exam: datetime | None) -> Facts:
    """The protocol's inputs from the record (``eye_exam``: the outside exam the setup's note documents)."""
    statins = value_set("statins")
    a1c = tuple(record.readings(A1C, now))
    invalid = tuple(sorted({r.ref for r in record.results if r.code == A1C and not r.valid and r.when <= now}))
    uacr = record.readings(UACR, now)
    creatinine = record.readings(CREATININE, now)
    stopped = [o for o in record.orders if o.code in statins and o.status == "stopped" and o.authored <= now]
    intolerance = bool(stopped) and any(
        any(w in n.text.lower() for w in INTOLERANCE_WORDS) for n in record.notes_until(now)
    )
    return Facts(
        age=whole_years_between(record.chart.birth_date, now.date()),
        a1c=a1c,
        a1c_invalid=invalid,
        uacr_last=uacr[-1].when if uacr else None,
        creatinine=creatinine[-1] if creatinine else None,
        statin_active=tuple(o.ref for o in record.active_orders(statins.codes, now)),
        statin_intolerance=intolerance,
        eye_exam_last=eye_exam,
    )


# ---------- generation ----------


def _candidate_nows(b: WorkflowBuilder, onset: datetime, rng: random.Random) -> list[tuple[datetime, bool]]:
    """(now, HbA1c due on the chart alone) between visits: after an HbA1c with an earlier one, before the next."""
    a1c = b.chart.values(A1C)
    out: list[tuple[datetime, bool]] = []
    for index in range(1, len(a1c)):
        last = a1c[index]
        if last.when < onset:
            continue
        ends = [a.when for a in a1c[index + 1 :]] + [b.end]
        room = (min(ends) - last.when).days - 7
        threshold = DUE_ABOVE_GOAL if last.value >= GOAL else DUE_AT_GOAL
        for due in (False, True):
            low, high = (20, threshold - MARGIN_DAYS) if not due else (threshold + MARGIN_DAYS, min(room, 600))
            high = min(high, room)
            if high >= low:
                moment = b.clock(last.when + timedelta(days=rng.randint(low, high), hours=rng.randint(1, 8)))
                if b.alive_at(moment) and b.age_at(moment) >= 18:
                    out.append((moment, due))
    return out


def generate(b: WorkflowBuilder) -> list[Scenario]:
    diabetes = value_set("diabetes")
    onsets = [c.onset for c in b.chart.conditions if c.code.code in diabetes]
    if not onsets or not b.chart.values(CREATININE):
        return []
    rng = b.rng(CATEGORY)
    built = [
        item
        for number, (now, _) in enumerate(sorted(_candidate_nows(b, min(onsets), rng)))
        if (item := _item(b, now, number, rng)) is not None
    ]
    rng.shuffle(built)
    chosen: list[Scenario] = []
    for want in (True, False) * 3:  # the HbA1c decision, alternating; a UACR due first where there is one
        pool = [
            s
            for s in built
            if s.meta["decision"]["a1c"] == want
            and s not in chosen
            and all(abs((_now(s) - _now(x)).days) > 45 for x in chosen)
        ]
        pool.sort(key=lambda s: not s.meta["decision"]["uacr"])
        if pool:
            chosen.append(pool[0])
    return sorted(chosen, key=lambda s: s.now)


def _now(scenario: Scenario) -> datetime:
    return parse_instant(scenario.now)


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random) -> Scenario | None:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(b.chart.patient_id[:6], 16) + number
    statin_variant = STATIN_VARIANTS[turn % len(STATIN_VARIANTS)]
    eye_variant = EYE_VARIANTS[(turn // 2) % len(EYE_VARIANTS)]
    noise = [A1C_NOISE[(turn + i) % len(A1C_NOISE)] for i in range(2)]
    base = b.record()
    chart_a1c = base.readings(A1C, now)
    latest = chart_a1c[-1]
    setup: list[dict] = []
    index = 0

    def add(resource: dict) -> None:
        nonlocal index
        setup.append(resource)
        index += 1

    # HbA1c noise: an erroneous newer result on the other side of the goal, the reference laboratory's copy of
    # the latest, or a newer point-of-care result under the device's local code
    if "second_feed" in noise:
        add(fx.lab_result(sid, index, patient, A1C, A1C_DISPLAY, latest.value, "%", latest.when, feed=True))
    if "point_of_care" in noise:
        when = latest.when + (now - latest.when) * rng.uniform(0.2, 0.6)
        value = round(rng.uniform(7.3, 8.6) if rng.random() < 0.5 else rng.uniform(6.1, 6.8), 1)
        add(fx.lab_result(sid, index, patient, A1C, A1C_DISPLAY, value, "%", when, local=True))
    if "entered_in_error" in noise:
        newest = max([latest.when, *(at_iso(r) for r in setup)])
        when = newest + (now - newest) * rng.uniform(0.3, 0.8)
        value = round(rng.uniform(5.8, 6.6) if latest.value >= GOAL else rng.uniform(7.6, 9.4), 1)
        add(fx.lab_result(sid, index, patient, A1C, A1C_DISPLAY, value, "%", when, status="entered-in-error"))
    if turn % 2 == 0:  # a newer creatinine from the reference laboratory, reported in umol/L
        chart_creatinine = base.readings(CREATININE, now)
        if chart_creatinine:
            last = chart_creatinine[-1]
            when = last.when + (now - last.when) * rng.uniform(0.2, 0.7)
            mg_dl = max(0.5, last.value + rng.uniform(-0.25, 0.25))
            add(
                fx.lab_result(
                    sid,
                    index,
                    patient,
                    CREATININE,
                    "Creatinine [Mass/volume] in Serum or Plasma",
                    float(round(mg_dl * 88.42)),
                    "umol/L",
                    when,
                    feed=True,
                )
            )
            noise.append("creatinine_umol")
    age = b.age_at(now)
    statin_setup = statin_variant if STATIN_AGES[0] <= age <= STATIN_AGES[1] else rng.choice(["none", "intolerant"])
    if statin_setup == "cancelled":
        add(
            fx.medication_order(
                sid,
                index,
                patient,
                *SIMVASTATIN,
                "cancelled",
                now - timedelta(days=rng.randint(60, 300)),
                "20 mg by mouth once daily",
                reason="Prescription never filled",
            )
        )
    elif statin_setup == "active":
        add(
            fx.medication_order(
                sid,
                index,
                patient,
                *SIMVASTATIN,
                "active",
                now - timedelta(days=rng.randint(40, 400)),
                "20 mg by mouth once daily",
            )
        )
    elif statin_setup == "intolerant":
        started = now - timedelta(days=rng.randint(300, 700))
        stopped = started + timedelta(days=rng.randint(40, 120))
        add(fx.medication_order(sid, index, patient, *SIMVASTATIN, "stopped", started, "20 mg by mouth once daily"))
        add(
            fx.clinical_note(
                sid,
                index,
                patient,
                "Follow-up. Patient reports diffuse muscle aches in both thighs since starting simvastatin "
                "20 mg. CK normal. Assessment: statin-associated myalgia. Simvastatin stopped today; "
                "symptoms to be reviewed in 4 weeks. Do not restart without discussing with the patient.",
                stopped,
                "Clinic physician",
                title="Statin follow-up",
            )
        )
    eye_exam: datetime | None = None
    if eye_variant != "none":
        days = rng.randint(40, EYE_DAYS - 30) if eye_variant == "recent" else rng.randint(EYE_DAYS + 30, 900)
        eye_exam = b.clock(now - timedelta(days=days))
        add(
            fx.clinical_note(
                sid,
                index,
                patient,
                f"Outside ophthalmology report received. Dilated retinal exam performed on "
                f"{eye_exam.date().isoformat()} at Eastside Eye Associates: no diabetic retinopathy, "
                f"no macular edema. Recommend repeat exam in 12 months.",
                eye_exam + timedelta(days=rng.randint(3, 20)),
                "Medical records",
                kind="outside",
                title="Outside eye exam report",
            )
        )
    for resource in fx.allergy_noise(sid, index, patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now, eye_exam)
    if len(facts.a1c) < 2 or facts.creatinine is None:
        return None
    decision = decide(facts, now)
    return _scenario(b, key, now, record, facts, decision, setup, statin_setup, eye_variant, noise)


def at_iso(resource: dict) -> datetime:
    return parse_instant(resource.get("effectiveDateTime") or resource.get("date") or resource["authoredOn"])


def _scenario(
    b: WorkflowBuilder,
    key: tuple,
    now: datetime,
    record: Record,
    facts: Facts,
    decision: Decision,
    setup: list[dict],
    statin_variant: str,
    eye_variant: str,
    noise: list[str],
) -> Scenario:
    patient = b.chart.patient_id
    latest, previous = facts.a1c[-1], facts.a1c[-2]
    assert facts.creatinine is not None
    writes = [NOTE.spec(patient, now)]
    checkpoints: list[Checkpoint] = [
        Checkpoint(
            name="HbA1c history", kind="fact", answer_fields=["latest_a1c", "latest_a1c_date", "previous_a1c_date"]
        ),
        Checkpoint(name="creatinine and retinal exam", kind="fact", answer_fields=["creatinine", "eye_exam_due"]),
    ]
    cited: list[str] = []
    for name, due, loinc in (("HbA1c order", decision.order_a1c, A1C), ("UACR order", decision.order_uacr, UACR)):
        if due:
            writes.append(lab_order(name, patient, now, loinc))
            checkpoints.append(Checkpoint(name=name, kind="order", writes=[name]))
            cited.append(name)
        else:
            checkpoints.append(Checkpoint(name=name, kind="no_order", forbidden=[no_lab_order(name, loinc)]))
    statin_codes = value_set("statins").codes
    if decision.statin == "ordered":
        writes.append(drug_order("statin order", patient, now, SIMVASTATIN[0], 20.0, "mg", ORAL_ROUTE))
        checkpoints.append(Checkpoint(name="statin", kind="order", answer_fields=["statin"], writes=["statin order"]))
        cited.append("statin order")
    else:
        checkpoints.append(
            Checkpoint(
                name="statin",
                kind="no_order",
                answer_fields=["statin"],
                forbidden=[no_drug_order("statin order", statin_codes)],
            )
        )
    results_facts = [
        fact_number("latest HbA1c value", "results", latest.value, 0.05),
        fact_date("latest HbA1c date", "results", latest.when),
        fact_reference("latest HbA1c cited", "results", latest.refs),
        fact_number("creatinine value", "results", facts.creatinine.value, 0.01),
    ]
    if facts.a1c_invalid:
        results_facts.append(fact_no_reference("no erroneous HbA1c cited", "results", facts.a1c_invalid))
    statin_words = {
        "active": ["simvastatin"],
        "ordered": ["simvastatin"],
        "intolerant": ["myalgia", "intoleran"],
        "not indicated": ["not indicated", "age"],
    }[decision.statin]
    results_facts.append(fact_text("statin status", "medications", statin_words))
    if cited:
        results_facts.append(fact_written("orders cited", "plan", cited))
    checkpoints.append(note_checkpoint("note: results, statin and plan", results_facts))
    checkpoints += chart_summary(record, now, started=["statin order"] if decision.statin == "ordered" else [])
    checkpoints.append(Checkpoint(name="no other writes", kind="safety", no_other_writes=True))
    answer = record_answer(
        latest_a1c=number_field(one_decimal(latest.value), "%", 0.05),
        latest_a1c_date=date_field(latest.when),
        previous_a1c_date=date_field(previous.when),
        creatinine=number_field(facts.creatinine.value, "mg/dL", 0.01, {"umol/L": 1 / 88.42, "µmol/L": 1 / 88.42}),
        statin=choice_field(decision.statin),
        eye_exam_due=ExpectedAnswer(type="boolean", value=decision.eye_due),
    )
    branch = "act" if (decision.order_a1c or decision.order_uacr or decision.statin == "ordered") else "no-action"
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch=branch,
        variant=f"a1c-{'due' if decision.order_a1c else 'current'}",
        provenance=[*latest.refs, *previous.refs, *facts.creatinine.refs],
        meta={
            "statin_setup": statin_variant,
            "eye_setup": eye_variant,
            "a1c_noise": noise,
            "decision": {
                "a1c": decision.order_a1c,
                "uacr": decision.order_uacr,
                "statin": decision.statin,
                "eye_due": decision.eye_due,
            },
        },
    )


# ---------- the oracle: the same protocol, every fact read through the tools ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    """The protocol's inputs as the tools show them, and the HbA1c rows entered in error."""
    now = datetime.fromisoformat(sc.now)
    patient = sc.patient
    person = await tools.call("get_patient", patient=patient)
    age = whole_years_between(datetime.fromisoformat(person.rows[0]["birthDate"]).date(), now.date())
    await tools.call(
        "search_conditions", patient=patient, status="active", code=",".join(sorted(value_set("diabetes").codes))
    )
    a1c, a1c_rows = await lab_readings(tools, patient, A1C, "a1c")
    uacr, _ = await lab_readings(tools, patient, UACR, since="-2y")
    creatinine, _ = await lab_readings(tools, patient, CREATININE, "creatinine", since="-3y")
    statins = value_set("statins").codes
    meds = await medication_rows(tools, patient)
    active = tuple(r["ref"] for r in meds if r["code"] in statins and r["status"] == "active")
    stopped = [r for r in meds if r["code"] in statins and r["status"] == "stopped"]
    notes = await note_rows(tools, patient, since="-3y")
    intolerance = bool(stopped) and any(any(w in (n["text"] or "").lower() for w in INTOLERANCE_WORDS) for n in notes)
    eye_dates: list[datetime] = []
    for note in notes:
        text = (note["text"] or "").lower()
        if any(w in text for w in EYE_WORDS):
            for day in find_dates(note["text"]):
                eye_dates.append(datetime(day.year, day.month, day.day, 12, tzinfo=now.tzinfo))
    eye = max((d for d in eye_dates if d <= now), default=None)
    facts = Facts(
        age=age,
        a1c=tuple(a1c),
        a1c_invalid=tuple(invalid_refs(a1c_rows)),
        uacr_last=uacr[-1].when if uacr else None,
        creatinine=creatinine[-1] if creatinine else None,
        statin_active=active,
        statin_intolerance=intolerance,
        eye_exam_last=eye,
    )
    return facts


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    latest, previous = facts.a1c[-1], facts.a1c[-2]
    assert facts.creatinine is not None
    lab = {"kind": "lab", "patient": patient}
    a1c_order = Action(
        "HbA1c order",
        "order_service",
        code=A1C,
        **lab,
        reason=f"last HbA1c {latest.value:.1f}% on {latest.when.date()}",
    )
    uacr_order = Action("UACR order", "order_service", code=UACR, **lab, reason="yearly kidney screening")
    statin_order = Action(
        "statin order",
        "order_medication",
        patient=patient,
        code=SIMVASTATIN[0],
        dose_value=20,
        dose_unit="mg",
        route="oral",
        instructions="once daily",
        reason="diabetes, age 40-75",
    )
    actions: list[Action] = []
    alternatives: list[Action] = []
    for wanted, action in (
        (decision.order_a1c, a1c_order),
        (decision.order_uacr, uacr_order),
        (decision.statin == "ordered", statin_order),
    ):
        (actions if wanted else alternatives).append(action)
    statin_text = {
        "active": "On simvastatin (active order); continue.",
        "ordered": "No active statin: simvastatin 20 mg by mouth daily ordered today.",
        "intolerant": "No statin: simvastatin was stopped for myalgia (statin intolerance).",
        "not indicated": "No statin: not indicated by age (protocol covers ages 40-75).",
    }[decision.statin]
    ordered = [a.key for a in actions]
    eye = ("Retinal exam due" if decision.eye_due else "Retinal exam not due") + (
        f" (last documented {facts.eye_exam_last.date()})." if facts.eye_exam_last else " (none documented)."
    )
    note = NoteDraft("progress_note", "Diabetes pre-visit planning")
    note.add(
        "results",
        f"HbA1c {latest.value:.1f} % on {latest.when.date()} (previous {previous.value:.1f} % on "
        f"{previous.when.date()}). Creatinine {facts.creatinine.value:.2f} mg/dL on "
        f"{facts.creatinine.when.date()}.",
        entries=[latest.ref, facts.creatinine.ref],
    )
    note.add("plan", (f"Ordered: {', '.join(ordered)}. " if ordered else "No orders due. ") + eye, cite=ordered)
    summary.add_to(note, started=["statin order"] if decision.statin == "ordered" else [], medications_text=statin_text)
    answer = {
        "latest_a1c": round(latest.value, 1),
        "latest_a1c_date": latest.when.date().isoformat(),
        "previous_a1c_date": previous.when.date().isoformat(),
        "creatinine": round(facts.creatinine.value, 2),
        "statin": decision.statin,
        "eye_exam_due": decision.eye_due,
    }
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=1,
    description="Diabetes pre-visit planning: HbA1c, kidney screening, statin, eye exam; order what is due.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
)
