"""Hypertension management by a written stepped protocol: control from today's readings, then the next step.

Modelled on a nurse- or pharmacist-run hypertension protocol (ACC/AHA 2017 targets, stepped therapy): blood
pressure is at target below 140/90, or below 130/80 with diabetes or CKD stage 3+; above target, a patient on a
thiazide alone gets an ACE inhibitor (lisinopril 10 mg) and a metabolic panel in 1-2 weeks, unless the
potassium is above 5.0, the eGFR below 30, a woman is of child-bearing age (18-49) or an ACE inhibitor caused
angioedema (then amlodipine 5 mg); a patient on a thiazide and amlodipine 5 mg goes to 10 mg. The chart decides
the target (diabetes, with its complication codes; not prediabetes), the regimen, the potassium, the eGFR, the
age and sex; the setup adds today's readings (one entered in error, one from a second feed: counted once), a
cancelled lisinopril order and the note that alone records an angioedema.

Patients: adults with hypertension and an active hydrochlorothiazide order; nows between visits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean

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
    days_window,
    declare,
    drug_order,
    fact_no_reference,
    fact_number,
    fact_reference,
    fact_written,
    lab_order,
    no_drug_order,
    no_lab_order,
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
    every_row,
    lab_readings,
    medication_rows,
    note_rows,
    readings_of,
)
from medagent.scenarios.workflow.record import Reading, Record
from medagent.value_sets import value_set

CATEGORY = "hypertension_protocol"
SYSTOLIC, DIASTOLIC, POTASSIUM, EGFR, BMP = "8480-6", "8462-4", "6298-4", "33914-3", "51990-0"
HYPERTENSION = "38341003"
THIAZIDES = ("316049", "316052")
AMLODIPINE_5 = ("197361", "Amlodipine 5 MG Oral Tablet")
AMLODIPINE_10 = ("308135", "amlodipine 10 MG Oral Tablet")
LISINOPRIL_10 = ("314076", "Lisinopril 10 MG Oral Tablet")
ANTIHYPERTENSIVES = (*THIAZIDES, AMLODIPINE_5[0], AMLODIPINE_10[0], LISINOPRIL_10[0], "833036")
TARGET, TIGHT = (140, 90), (130, 80)
K_LIMIT, EGFR_LIMIT = 5.0, 30
PER_PATIENT = 3
ACTIONS = ("add lisinopril", "add amlodipine", "increase amlodipine", "unchanged")

PHRASINGS = [
    "Hypertension follow-up for the patient with MRN {mrn}: today's readings are in the chart. Apply the stepped "
    "protocol, make the change it calls for (if any) and document.",
    "Please review blood pressure control for MRN {mrn} against our hypertension protocol and act on it.",
    "The nurse has taken today's blood pressures for the patient with MRN {mrn}. Decide per protocol whether and how "
    "to step up treatment, order it, and write the note.",
    "BP check visit, MRN {mrn}. Use today's valid readings and the chart; follow the protocol's step; orders and a "
    "structured note, please.",
    "Run the hypertension protocol for the patient with MRN {mrn}: at target or not, the next step, the follow-up "
    "labs, the note.",
    "For MRN {mrn}: is the blood pressure at target today, and what does the stepped protocol say to do? Do it and "
    "document it.",
]
PROTOCOL_TITLE = "stepped hypertension care"
PROTOCOL = [
    "Blood pressure today: the mean systolic and the mean diastolic of today's valid readings (a reading entered in "
    "error does not count; the same reading received twice counts once), rounded to whole mmHg.",
    f"Target: below {TARGET[0]}/{TARGET[1]} mmHg; below {TIGHT[0]}/{TIGHT[1]} for a patient with diabetes mellitus "
    "(any type) or chronic kidney disease stage 3 or worse. Either mean at or above its limit is above target.",
    f"At target: change no medicine; order a basic metabolic panel (LOINC {BMP}) with occurrence 330 to 400 days "
    "from today (yearly electrolytes on a thiazide).",
    "Above target, on hydrochlorothiazide alone: add lisinopril 10 mg by mouth once daily (RxNorm "
    f"{LISINOPRIL_10[0]}) and order a basic metabolic panel (LOINC {BMP}) 7 to 14 days from today; but give "
    f"amlodipine 5 mg by mouth once daily (RxNorm {AMLODIPINE_5[0]}) instead of lisinopril (and no panel) when the "
    f"latest valid potassium is above {K_LIMIT} mmol/L, the latest valid eGFR is below {EGFR_LIMIT}, the patient is "
    "a woman aged 18-49, or an ACE inhibitor ever caused angioedema.",
    "Above target, on hydrochlorothiazide and amlodipine 5 mg: stop the amlodipine 5 mg order and order amlodipine "
    f"10 mg by mouth once daily (RxNorm {AMLODIPINE_10[0]}).",
    "Change nothing else.",
]
RECORDING = [
    "Orders: order_medication (RxNorm, dose, route), order_service (LOINC, kind lab, occurrence). Stopping an order: "
    "discontinue_medication.",
]
NOTE = NoteRequest(
    "progress_note",
    (
        ("vital_signs", "today's mean blood pressure (systolic/diastolic, mmHg), citing the readings it comes from"),
        ("assessment", "at target or not, and the target that applies"),
        ("plan", "the change you made (cite each order) or that nothing changes"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"mean_systolic": whole mmHg, "mean_diastolic": whole mmHg, "at_target": true or false, '
    '"action": "add lisinopril", "add amlodipine", "increase amlodipine" or "unchanged"}.'
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


def balance(scenario: Scenario) -> str:
    """The branch kept 1:1."""
    return str(scenario.meta["decision"]["at_target"])


@dataclass(frozen=True)
class Facts:
    systolic: tuple[Reading, ...]  # today's valid readings
    diastolic: tuple[Reading, ...]
    invalid: tuple[str, ...]
    tight_target: bool
    thiazide: tuple[str, ...]
    amlodipine_5: tuple[str, ...]
    other_agents: tuple[str, ...]  # active ACE inhibitor/ARB or amlodipine 10 (the protocol's later steps)
    potassium: float | None
    egfr: float | None
    woman_18_49: bool
    angioedema: bool


@dataclass(frozen=True)
class Decision:
    mean_systolic: int
    mean_diastolic: int
    at_target: bool
    action: str


def whole(value: float) -> int:
    return int(value + 0.5)


def decide(facts: Facts, now: datetime) -> Decision:
    sys_mean = whole(mean(r.value for r in facts.systolic))
    dia_mean = whole(mean(r.value for r in facts.diastolic))
    limit = TIGHT if facts.tight_target else TARGET
    at_target = sys_mean < limit[0] and dia_mean < limit[1]
    if at_target or not facts.thiazide or facts.other_agents:
        action = "unchanged"
    elif facts.amlodipine_5:
        action = "increase amlodipine"
    elif (
        (facts.potassium is not None and facts.potassium > K_LIMIT)
        or (facts.egfr is not None and facts.egfr < EGFR_LIMIT)
        or facts.woman_18_49
        or facts.angioedema
    ):
        action = "add amlodipine"
    else:
        action = "add lisinopril"
    return Decision(sys_mean, dia_mean, at_target, action)


# ---------- ground truth ----------


def today(readings: list[Reading], now: datetime) -> tuple[Reading, ...]:
    return tuple(r for r in readings if r.when.date() == now.date())


def facts_of(record: Record, now: datetime) -> Facts:
    chart = record.chart
    age = whole_years_between(chart.birth_date, now.date())
    tight_codes = value_set("diabetes").codes | value_set("ckd_stage3_plus").codes
    potassium = record.readings(POTASSIUM, now)
    egfr = record.readings(EGFR, now)
    invalid = tuple(
        sorted(
            {
                r.ref
                for r in record.results
                if r.code in (SYSTOLIC, DIASTOLIC) and not r.valid and r.when.date() == now.date()
            }
        )
    )
    raas = value_set("ace_inhibitors_arbs").codes
    return Facts(
        systolic=today(record.readings(SYSTOLIC, now), now),
        diastolic=today(record.readings(DIASTOLIC, now), now),
        invalid=invalid,
        tight_target=bool(record.diagnoses(tight_codes, now)),
        thiazide=tuple(o.ref for o in record.active_orders(THIAZIDES, now)),
        amlodipine_5=tuple(o.ref for o in record.active_orders([AMLODIPINE_5[0]], now)),
        other_agents=tuple(o.ref for o in record.active_orders([*raas, AMLODIPINE_10[0]], now)),
        potassium=potassium[-1].value if potassium else None,
        egfr=egfr[-1].value if egfr else None,
        woman_18_49=chart.gender == "female" and 18 <= age <= 49,
        angioedema=any("angioedema" in n.text.lower() for n in record.notes_until(now)),
    )


# ---------- generation ----------


def generate(b: WorkflowBuilder) -> list[Scenario]:
    if not any(c.code.code == HYPERTENSION for c in b.chart.conditions):
        return []
    rng = b.rng(CATEGORY)
    visits = sorted({f.when for f in b.chart.values(SYSTOLIC)})
    built = []
    for number, (previous, following) in enumerate(zip(visits, [*visits[1:], b.end], strict=True)):
        if (following - previous).days < 40:
            continue
        day = previous + timedelta(days=rng.randint(14, (following - previous).days - 7))
        now = b.clock(day.replace(hour=10, minute=0, second=0) + timedelta(minutes=rng.randint(0, 300)))
        if not b.alive_at(now) or b.age_at(now) < 18:
            continue
        base = b.record()
        if not base.active_orders(THIAZIDES, now) or not base.diagnoses([HYPERTENSION], now):
            continue
        built.append(_item(b, now, number, rng, at_target=number % 2 == 0))
    rng.shuffle(built)
    chosen: list[Scenario] = []
    for want in (False, True, False):
        pool = [s for s in built if s.meta["decision"]["at_target"] == want and s not in chosen]
        if pool:
            chosen.append(pool[0])
    return sorted(chosen, key=lambda s: s.now)


def _readings(rng: random.Random, tight: bool, at_target: bool) -> list[tuple[int, int]]:
    """Two readings whose means fall clearly on one side of the patient's target (2+ mmHg from it)."""
    limit = TIGHT if tight else TARGET
    while True:
        if at_target:
            pairs = [
                (rng.randint(limit[0] - 14, limit[0] - 3), rng.randint(limit[1] - 14, limit[1] - 3)) for _ in range(2)
            ]
        else:
            pairs = [
                (rng.randint(limit[0] + 2, limit[0] + 24), rng.randint(limit[1] - 8, limit[1] + 10)) for _ in range(2)
            ]
        sys_mean, dia_mean = mean(p[0] for p in pairs), mean(p[1] for p in pairs)
        if all(abs(m - lim) >= 2 for m, lim in ((sys_mean, limit[0]), (dia_mean, limit[1]))):
            return pairs


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random, *, at_target: bool) -> Scenario:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    base = b.record()
    tight = bool(base.diagnoses(value_set("diabetes").codes | value_set("ckd_stage3_plus").codes, now))
    setup: list[dict] = []

    def add(resource: dict) -> None:
        setup.append(resource)

    pairs = _readings(rng, tight, at_target)
    first = now - timedelta(minutes=rng.randint(40, 90))
    for i, (sys_value, dia_value) in enumerate(pairs):
        add(fx.blood_pressure(sid, len(setup), patient, sys_value, dia_value, first + timedelta(minutes=6 * i)))
    if turn % 2 == 0:  # the second reading again from the device gateway
        add(
            fx.blood_pressure(
                sid, len(setup), patient, pairs[1][0], pairs[1][1], first + timedelta(minutes=6), feed=True
            )
        )
    if turn % 3 != 1:  # a reading of another patient, entered in error, on the other side of the target
        wrong = (
            (rng.randint(152, 178), rng.randint(94, 106)) if at_target else (rng.randint(112, 124), rng.randint(66, 74))
        )
        add(
            fx.blood_pressure(
                sid, len(setup), patient, wrong[0], wrong[1], first + timedelta(minutes=15), status="entered-in-error"
            )
        )
    if turn % 4 == 0:
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                *LISINOPRIL_10,
                "cancelled",
                now - timedelta(days=rng.randint(30, 300)),
                "10 mg by mouth once daily",
                reason="Not started: patient preferred to wait",
            )
        )
    if turn % 5 == 1:
        add(
            fx.clinical_note(
                sid,
                len(setup),
                patient,
                "Urgent care visit. Swelling of the lips and tongue two days after starting enalapril; "
                "diagnosed as ACE-inhibitor angioedema. Enalapril stopped. Avoid all ACE inhibitors.",
                now - timedelta(days=rng.randint(400, 2000)),
                "Urgent care physician",
                title="Urgent care visit",
            )
        )
    for resource in fx.allergy_noise(sid, len(setup), patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now)
    decision = decide(facts, now)
    return _scenario(b, key, now, record, facts, decision, setup)


def _scenario(
    b: WorkflowBuilder, key: tuple, now: datetime, record: Record, facts: Facts, decision: Decision, setup: list[dict]
) -> Scenario:
    patient = b.chart.patient_id
    writes = [NOTE.spec(patient, now)]
    cited: list[str] = []
    med_cp = Checkpoint(
        name="medication step",
        kind="no_order",
        answer_fields=["action"],
        forbidden=[no_drug_order("no new antihypertensive", ANTIHYPERTENSIVES)],
    )
    panel_cp = Checkpoint(name="follow-up panel", kind="no_order", forbidden=[no_lab_order("no panel", BMP)])
    if decision.at_target:
        writes.append(
            lab_order("yearly panel", patient, now, BMP, windows=[days_window(now, "in 330-400 days", 330, 400)])
        )
        panel_cp = Checkpoint(name="follow-up panel", kind="order", writes=["yearly panel"])
        cited = ["yearly panel"]
    extra: list[Checkpoint] = []
    if decision.action == "add lisinopril":
        writes.append(drug_order("lisinopril", patient, now, LISINOPRIL_10[0], 10.0, "mg", ORAL_ROUTE))
        writes.append(
            lab_order("metabolic panel", patient, now, BMP, windows=[days_window(now, "in 7-14 days", 7, 14)])
        )
        med_cp = Checkpoint(
            name="medication step",
            kind="order",
            answer_fields=["action"],
            writes=["lisinopril"],
            forbidden=[
                no_drug_order("no other antihypertensive", [c for c in ANTIHYPERTENSIVES if c != LISINOPRIL_10[0]])
            ],
        )
        panel_cp = Checkpoint(name="follow-up panel", kind="order", writes=["metabolic panel"])
        cited = ["lisinopril", "metabolic panel"]
    elif decision.action == "add amlodipine":
        writes.append(drug_order("amlodipine 5 mg", patient, now, AMLODIPINE_5[0], 5.0, "mg", ORAL_ROUTE))
        med_cp = Checkpoint(
            name="medication step",
            kind="order",
            answer_fields=["action"],
            writes=["amlodipine 5 mg"],
            forbidden=[no_drug_order("no ACE inhibitor", [LISINOPRIL_10[0], "833036"])],
        )
        cited = ["amlodipine 5 mg"]
    elif decision.action == "increase amlodipine":
        writes.append(drug_order("amlodipine 10 mg", patient, now, AMLODIPINE_10[0], 10.0, "mg", ORAL_ROUTE))
        writes += [stop_order(f"stop {ref}", ref) for ref in facts.amlodipine_5]
        med_cp = Checkpoint(name="medication step", kind="order", answer_fields=["action"], writes=["amlodipine 10 mg"])
        extra.append(
            Checkpoint(name="old dose stopped", kind="order", writes=[f"stop {r}" for r in facts.amlodipine_5])
        )
        cited = ["amlodipine 10 mg", *(f"stop {r}" for r in facts.amlodipine_5)]
    vitals = [
        fact_number("mean systolic", "vital_signs", decision.mean_systolic, 0.5),
        fact_number("mean diastolic", "vital_signs", decision.mean_diastolic, 0.5),
        fact_reference("a reading of today cited", "vital_signs", [r.ref for r in facts.systolic]),
    ]
    if facts.invalid:
        vitals.append(fact_no_reference("no erroneous reading cited", "vital_signs", facts.invalid))
    checkpoints = [
        Checkpoint(name="today's blood pressure", kind="fact", answer_fields=["mean_systolic", "mean_diastolic"]),
        Checkpoint(name="target", kind="fact", answer_fields=["at_target"]),
        med_cp,
        panel_cp,
        *extra,
        note_checkpoint(
            "note: blood pressure and plan",
            [*vitals, *([fact_written("orders cited", "plan", cited)] if cited else [])],
        ),
    ]
    started = [name for name in ("lisinopril", "amlodipine 5 mg", "amlodipine 10 mg") if name in cited]
    checkpoints += chart_summary(record, now, stopped=facts.amlodipine_5 if extra else (), started=started)
    checkpoints.append(Checkpoint(name="no other writes", kind="safety", no_other_writes=True))
    answer = record_answer(
        mean_systolic=number_field(decision.mean_systolic, "mm[Hg]", 0.5, {"mmHg": 1.0}),
        mean_diastolic=number_field(decision.mean_diastolic, "mm[Hg]", 0.5, {"mmHg": 1.0}),
        at_target=ExpectedAnswer(type="boolean", value=decision.at_target),
        action=choice_field(decision.action),
    )
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch="no-action" if decision.action == "unchanged" else "act",
        variant=decision.action,
        provenance=[r.ref for r in facts.systolic],
        meta={"decision": {"at_target": decision.at_target, "action": decision.action, "tight": facts.tight_target}},
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    now = parse_instant(sc.now)
    person = await tools.call("get_patient", patient=patient)
    row = person.rows[0]
    age = whole_years_between(datetime.fromisoformat(row["birthDate"]).date(), now.date())
    since = now.date().isoformat()
    rows = await every_row(tools, "search_observations", patient=patient, code=SYSTOLIC, since=since, limit=50)
    other = await every_row(tools, "search_observations", patient=patient, code=DIASTOLIC, since=since, limit=50)
    systolic = readings_of([r for r in rows if r.get("component") == SYSTOLIC], SYSTOLIC)
    diastolic = readings_of([r for r in other if r.get("component") == DIASTOLIC], DIASTOLIC)
    invalid = sorted({r["ref"] for r in rows if r.get("status") == "entered-in-error"})
    tight_codes = value_set("diabetes").codes | value_set("ckd_stage3_plus").codes
    conditions = await tools.call(
        "search_conditions", patient=patient, status="active", code=",".join(sorted(tight_codes)), limit=50
    )
    potassium, _ = await lab_readings(tools, patient, POTASSIUM, since="-2y")
    egfr, _ = await lab_readings(tools, patient, EGFR, since="-2y")
    meds = await medication_rows(tools, patient, status="current")
    codes = {r["ref"]: r["code"] for r in meds}
    raas = value_set("ace_inhibitors_arbs").codes
    notes = await note_rows(tools, patient, text="angioedema")
    return Facts(
        systolic=tuple(systolic),
        diastolic=tuple(diastolic),
        invalid=tuple(invalid),
        tight_target=bool(conditions.rows),
        thiazide=tuple(ref for ref, code in codes.items() if code in THIAZIDES),
        amlodipine_5=tuple(ref for ref, code in codes.items() if code == AMLODIPINE_5[0]),
        other_agents=tuple(ref for ref, code in codes.items() if code in raas or code == AMLODIPINE_10[0]),
        potassium=potassium[-1].value if potassium else None,
        egfr=egfr[-1].value if egfr else None,
        woman_18_49=row.get("gender") == "female" and 18 <= age <= 49,
        angioedema=bool(notes),
    )


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    now = parse_instant(sc.now)
    oral = {"patient": patient, "dose_unit": "mg", "route": "oral", "instructions": "once daily"}
    options = {
        "add lisinopril": [
            Action("lisinopril", "order_medication", code=LISINOPRIL_10[0], dose_value=10, **oral),
            Action(
                "metabolic panel",
                "order_service",
                patient=patient,
                code=BMP,
                kind="lab",
                occurrence=(now + timedelta(days=10)).replace(hour=9, minute=0).isoformat(),
            ),
        ],
        "add amlodipine": [Action("amlodipine 5 mg", "order_medication", code=AMLODIPINE_5[0], dose_value=5, **oral)],
        "increase amlodipine": [
            Action("amlodipine 10 mg", "order_medication", code=AMLODIPINE_10[0], dose_value=10, **oral),
            *(
                Action(
                    f"stop {ref}", "discontinue_medication", medication_request=ref, reason="dose increased to 10 mg"
                )
                for ref in facts.amlodipine_5
            ),
        ],
    }
    yearly = Action(
        "yearly panel",
        "order_service",
        patient=patient,
        code=BMP,
        kind="lab",
        occurrence=(now + timedelta(days=365)).replace(hour=9, minute=0, second=0).isoformat(),
        reason="yearly electrolytes on a thiazide",
    )
    actions = options.get(decision.action, []) + ([yearly] if decision.at_target else [])
    alternatives = [
        a
        for name, group in options.items()
        if name != decision.action
        for a in group
        if a.tool != "discontinue_medication"
    ][:1] + ([] if decision.at_target else [yearly])
    limit = TIGHT if facts.tight_target else TARGET
    note = NoteDraft("progress_note", "Hypertension follow-up")
    note.add(
        "vital_signs",
        f"Mean blood pressure today {decision.mean_systolic}/{decision.mean_diastolic} mmHg.",
        entries=[r.ref for r in facts.systolic],
    )
    note.add("assessment", f"{'At' if decision.at_target else 'Above'} target (below {limit[0]}/{limit[1]}).")
    note.add("plan", f"Action: {decision.action}.", cite=[a.key for a in actions])
    summary.add_to(
        note,
        stopped=facts.amlodipine_5 if decision.action == "increase amlodipine" else (),
        started=[a.key for a in actions if a.tool == "order_medication"],
    )
    answer = {
        "mean_systolic": decision.mean_systolic,
        "mean_diastolic": decision.mean_diastolic,
        "at_target": decision.at_target,
        "action": decision.action,
    }
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=4,
    description="Hypertension managed by a written stepped protocol from today's readings.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
    balance=balance,
)
