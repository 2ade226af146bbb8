"""A cardiology referral with the data the specialist needs: reason, urgency, pre-referral work-up, referral letter.

Modelled on a cardiology department's referral guidelines: the reason is the active cardiac diagnosis of most
recent onset; the referral is urgent with a documented left-ventricular ejection fraction below 40% or an
NT-proBNP above 900 pg/mL in the past 90 days; the clinic completes the work-up first (a lipid panel within a
year, a metabolic panel within six months, an NT-proBNP within six months for heart failure) and sends a
referral letter with the reason, the latest LDL and creatinine, the ejection fraction and the medication list.
The chart decides it (Synthea's coronary disease, atrial fibrillation and heart failure, echo results, lipid
and metabolic panels); the setup adds an outside echo report that only a note holds, an atrial fibrillation
entered in error, the latest LDL entered in error or from a second feed, a creatinine in umol/L.

Patients: adults with an active cardiac diagnosis (coronary disease, myocardial infarction, atrial
fibrillation, heart failure); up to three nows each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.agentic.common import around
from medagent.scenarios.clock import parse_instant
from medagent.scenarios.codes import SNOMED
from medagent.scenarios.models import Checkpoint, CodingSpec, FieldRule, Scenario, WriteSpec
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.common import (
    NoteRequest,
    TaskText,
    WorkflowBuilder,
    chart_summary,
    choice_field,
    declare,
    fact_date,
    fact_no_reference,
    fact_number,
    fact_reference,
    fact_written,
    lab_order,
    no_lab_order,
    note_checkpoint,
    number_field,
    record_answer,
)
from medagent.scenarios.workflow.reading import (
    Action,
    ChartSummary,
    NoteDraft,
    Plan,
    ToolCaller,
    every_row,
    invalid_refs,
    lab_readings,
    note_rows,
)
from medagent.scenarios.workflow.record import NOT_DIAGNOSED, Problem, Reading, Record
from medagent.value_sets import value_set

CATEGORY = "cardiology_referral"
REFERRAL = ("183519002", "Referral to cardiology service")
AF = "49436004"
LDL, CREATININE, BNP, EF = "18262-6", "38483-4", "33762-6", "10230-1"
LIPID_PANEL, BMP = "57698-3", "51990-0"
EF_LIMIT, BNP_LIMIT, BNP_DAYS = 40.0, 900.0, 90
PER_PATIENT = 3

PHRASINGS = [
    "Please refer the patient with MRN {mrn} to cardiology, following the department's referral guidelines: "
    "work-up first, then the referral and the letter.",
    "Cardiology referral for MRN {mrn}: complete the pre-referral work-up per the guideline, place the referral "
    "with the right reason and urgency, and write the referral letter.",
    "The patient with MRN {mrn} needs to see cardiology. Follow the referral protocol below and send the data they "
    "ask for.",
    "Refer MRN {mrn} to the cardiology clinic per protocol: reason, priority, missing labs and a structured "
    "referral note.",
    "Set up a cardiology referral for the patient with MRN {mrn}, with everything the guideline requires.",
    "Could you send the patient with MRN {mrn} to cardiology? Use the referral guideline; orders and letter please.",
]
PROTOCOL_TITLE = "cardiology referral guideline"
PROTOCOL = [
    "Reason for referral: the active cardiac diagnosis (coronary heart disease, myocardial infarction, atrial "
    "fibrillation or heart failure) with the most recent onset date; a diagnosis entered in error or refuted does "
    "not count.",
    f"Priority urgent when the most recent documented left-ventricular ejection fraction (LOINC {EF}, or an echo "
    f"report in the notes) is below {EF_LIMIT:.0f}%, or an NT-proBNP (LOINC {BNP}) above {BNP_LIMIT:.0f} pg/mL "
    f"was resulted in the past {BNP_DAYS} days; routine otherwise.",
    f"Work-up before referral: order a lipid panel (LOINC {LIPID_PANEL}) if there is no valid LDL result (LOINC "
    f"{LDL}) in the past 365 days; a basic metabolic panel (LOINC {BMP}) if there is no valid creatinine (LOINC "
    f"{CREATININE}) in the past 182 days; with heart failure, an NT-proBNP (LOINC {BNP}) if none in the past 182 "
    "days. Order nothing else.",
    f"The referral: order_service kind referral, SNOMED {REFERRAL[0]} ({REFERRAL[1]}), with the priority, and the "
    "reason as reason_reference (the Condition).",
]
RECORDING = [
    "Orders: order_service (LOINC labs kind lab; the referral kind referral with priority and reason_reference)."
]
NOTE = NoteRequest(
    "referral_note",
    (
        (
            "reason_for_referral",
            "the diagnosis and its onset date (YYYY-MM-DD), citing the Condition, and the priority",
        ),
        (
            "results",
            "the latest valid LDL (mg/dL, with its date) and creatinine (mg/dL), and the latest ejection "
            "fraction (%) if there is one, citing each result",
        ),
        ("plan", "cite the referral and every lab you ordered"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"reason": the diagnosis you referred for (its name), "priority": "urgent" or "routine", '
    '"ldl": the latest valid LDL in mg/dL (whole number, or "none"), "creatinine": the latest valid creatinine in '
    'mg/dL (2 decimals, or "none")}.'
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


def balance(scenario: Scenario) -> str:
    """The branch kept 1:1."""
    return scenario.meta["decision"]["priority"]


@dataclass(frozen=True)
class Facts:
    reason: Problem
    heart_failure: bool
    ef: float | None
    bnp: Reading | None
    ldl: Reading | None
    ldl_invalid: tuple[str, ...]
    creatinine: Reading | None


@dataclass(frozen=True)
class Decision:
    urgent: bool
    lipids: bool
    metabolic: bool
    bnp: bool


def decide(f: Facts, now: datetime) -> Decision:
    recent_bnp = f.bnp is not None and now - f.bnp.when <= timedelta(days=BNP_DAYS) and f.bnp.value > BNP_LIMIT
    return Decision(
        urgent=(f.ef is not None and f.ef < EF_LIMIT) or recent_bnp,
        lipids=f.ldl is None or now - f.ldl.when > timedelta(days=365),
        metabolic=f.creatinine is None or now - f.creatinine.when > timedelta(days=182),
        bnp=f.heart_failure and (f.bnp is None or now - f.bnp.when > timedelta(days=182)),
    )


def cardiac_codes() -> frozenset[str]:
    return value_set("heart_failure").codes | value_set("ascvd").codes | {AF}


# ---------- ground truth ----------

ECHO_REPORT = "Transthoracic echocardiogram on {day}: left ventricular ejection fraction {ef}%"


def echo_notes(notes: list[tuple[datetime, str]]) -> list[tuple[datetime, float]]:
    out: list[tuple[datetime, float]] = []
    for _, text in notes:
        if "Transthoracic echocardiogram on " in text:
            day = text.split("Transthoracic echocardiogram on ")[1][:10]
            ef = float(text.split("ejection fraction ")[1].split("%")[0])
            out.append((parse_instant(day), ef))
    return out


def facts_of(record: Record, now: datetime) -> Facts | None:
    active = record.diagnoses(cardiac_codes(), now)
    if not active:
        return None
    reason = max(active, key=lambda p: (p.onset, p.ref))
    efs = [(r.when, r.value) for r in record.readings(EF, now)]
    efs += echo_notes([(n.when, n.text) for n in record.notes_until(now)])
    bnp = record.readings(BNP, now)
    ldl = record.readings(LDL, now)
    creatinine = record.readings(CREATININE, now)
    invalid = tuple(sorted({r.ref for r in record.results if r.code == LDL and not r.valid and r.when <= now}))
    return Facts(
        reason=reason,
        heart_failure=bool(record.diagnoses(value_set("heart_failure").codes, now)),
        ef=max(efs)[1] if efs else None,
        bnp=bnp[-1] if bnp else None,
        ldl=ldl[-1] if ldl else None,
        ldl_invalid=invalid,
        creatinine=creatinine[-1] if creatinine else None,
    )


# ---------- generation ----------


def generate(b: WorkflowBuilder) -> list[Scenario]:
    codes = cardiac_codes()
    onsets = [c.onset for c in b.chart.conditions if c.code.code in codes]
    if not onsets:
        return []
    rng = b.rng(CATEGORY)
    start, end = min(onsets) + timedelta(days=30), b.end
    if end <= start:
        return []
    out: list[Scenario] = []
    for number in range(PER_PATIENT):
        moment = start + (end - start) * (number + rng.uniform(0.2, 0.9)) / PER_PATIENT
        now = b.clock(moment.replace(hour=9, minute=0, second=0) + timedelta(minutes=rng.randint(0, 420)))
        if not b.alive_at(now) or b.age_at(now) < 18 or now > end:
            continue
        item = _item(b, now, number, rng)
        if item is not None:
            out.append(item)
    return out


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random) -> Scenario | None:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    base = b.record()
    if not base.diagnoses(cardiac_codes(), now):
        return None
    setup: list[dict] = []

    def add(resource: dict) -> None:
        setup.append(resource)

    if turn % 3 == 0:  # an echo done elsewhere: only the report in the notes holds the ejection fraction
        day = now - timedelta(days=rng.randint(30, 500))
        ef = rng.choice([rng.randint(28, 38), rng.randint(45, 62)])
        add(
            fx.clinical_note(
                sid,
                len(setup),
                patient,
                f"Outside report. {ECHO_REPORT.format(day=day.date().isoformat(), ef=ef)}. Mild mitral "
                "regurgitation. No pericardial effusion.",
                day + timedelta(days=rng.randint(5, 20)),
                "Medical records",
                kind="outside",
                title="Outside echocardiogram",
            )
        )
    if turn % 3 == 1 and not any(c.code.code == AF for c in b.chart.conditions):
        add(
            fx.condition(
                sid,
                len(setup),
                patient,
                AF,
                "Atrial Fibrillation",
                now - timedelta(days=rng.randint(5, 60)),
                verification="entered-in-error",
            )
        )
    ldl = base.readings(LDL, now)
    if ldl and turn % 4 == 0:  # a newer LDL entered in error (the valid one may be over a year old)
        add(
            fx.lab_result(
                sid,
                len(setup),
                patient,
                LDL,
                "Low Density Lipoprotein Cholesterol",
                float(rng.randint(90, 190)),
                "mg/dL",
                now - timedelta(days=rng.randint(20, 200)),
                status="entered-in-error",
            )
        )
    elif ldl and turn % 4 == 2:
        add(
            fx.lab_result(
                sid,
                len(setup),
                patient,
                LDL,
                "Low Density Lipoprotein Cholesterol",
                ldl[-1].value,
                "mg/dL",
                ldl[-1].when,
                feed=True,
            )
        )
    creatinine = base.readings(CREATININE, now)
    if creatinine and turn % 2 == 1:
        when = now - timedelta(days=rng.randint(10, 150))
        add(
            fx.lab_result(
                sid,
                len(setup),
                patient,
                CREATININE,
                "Creatinine [Mass/volume] in Serum or Plasma",
                float(round(max(0.6, creatinine[-1].value + rng.uniform(-0.2, 0.2)) * 88.42)),
                "umol/L",
                when,
                feed=True,
            )
        )
    for resource in fx.allergy_noise(sid, len(setup), patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now)
    if facts is None:
        return None
    return _scenario(b, key, now, record, facts, decide(facts, now), setup)


def _referral(patient: str, now: datetime, reason: str, priority: str) -> WriteSpec:
    return WriteSpec(
        name="cardiology referral",
        resource_type="ServiceRequest",
        subject=f"Patient/{patient}",
        code_path="code.coding",
        codes=[CodingSpec(system=SNOMED, code=REFERRAL[0])],
        intent=["order"],
        status=["active"],
        windows=[around(now, "authored now", ["authoredOn"])],
        fields=[
            FieldRule(name="priority", path="priority", any_of=[priority]),
            FieldRule(name="reason", path="reasonReference.reference", any_of=[reason]),
        ],
    )


def _scenario(
    b: WorkflowBuilder, key: tuple, now: datetime, record: Record, facts: Facts, decision: Decision, setup: list[dict]
) -> Scenario:
    patient = b.chart.patient_id
    priority = "urgent" if decision.urgent else "routine"
    writes = [NOTE.spec(patient, now), _referral(patient, now, facts.reason.ref, priority)]
    checkpoints = [
        Checkpoint(
            name="referral: reason and priority",
            kind="order",
            answer_fields=["reason", "priority"],
            writes=["cardiology referral"],
        )
    ]
    cited = ["cardiology referral"]
    labs = [("lipid panel", decision.lipids, LIPID_PANEL), ("metabolic panel", decision.metabolic, BMP)]
    if facts.heart_failure:
        labs.append(("NT-proBNP", decision.bnp, BNP))
    for name, wanted, loinc in labs:
        if wanted:
            writes.append(lab_order(name, patient, now, loinc))
            checkpoints.append(Checkpoint(name=name, kind="order", writes=[name]))
            cited.append(name)
        else:
            checkpoints.append(Checkpoint(name=name, kind="no_order", forbidden=[no_lab_order(f"no {name}", loinc)]))
    checkpoints.append(Checkpoint(name="latest LDL and creatinine", kind="fact", answer_fields=["ldl", "creatinine"]))
    letter = [
        fact_reference("reason cited", "reason_for_referral", [facts.reason.ref]),
        fact_date("onset date", "reason_for_referral", facts.reason.onset),
        fact_written("orders cited", "plan", cited),
    ]
    if facts.ldl is not None:
        letter += [
            fact_number("LDL value", "results", facts.ldl.value, 0.5),
            fact_reference("LDL cited", "results", facts.ldl.refs),
        ]
    if facts.ldl_invalid:
        letter.append(fact_no_reference("no erroneous LDL cited", "results", facts.ldl_invalid))
    if facts.ef is not None:
        letter.append(fact_number("ejection fraction", "results", facts.ef, 0.5))
    checkpoints.append(note_checkpoint("note: referral letter", letter))
    checkpoints += chart_summary(record, now)
    checkpoints.append(Checkpoint(name="no other writes", kind="safety", no_other_writes=True))
    answer = record_answer(
        reason=choice_field(facts.reason.display),
        priority=choice_field(priority),
        ldl=number_field(facts.ldl.value if facts.ldl else None, "mg/dL", 0.5, {"mmol/L": 38.67}),
        creatinine=number_field(
            facts.creatinine.value if facts.creatinine else None,
            "mg/dL",
            0.01,
            {"umol/L": 1 / 88.42, "µmol/L": 1 / 88.42},
        ),
    )
    answer.fields["reason"].aliases = {facts.reason.display: [facts.reason.code]}
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch="act",
        variant=priority,
        provenance=[facts.reason.ref],
        meta={
            "decision": {
                "priority": priority,
                "lipids": decision.lipids,
                "metabolic": decision.metabolic,
                "bnp": decision.bnp,
            }
        },
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    rows = await every_row(
        tools, "search_conditions", patient=patient, status="active", code=",".join(sorted(cardiac_codes())), limit=100
    )
    rows = [r for r in rows if r.get("verification") not in NOT_DIAGNOSED]
    chosen = max(rows, key=lambda r: (parse_instant(r["onset"]), r["ref"]))
    reason = Problem(chosen["ref"], chosen["code"], chosen["display"], parse_instant(chosen["onset"]))
    hf = any(r["code"] in value_set("heart_failure") for r in rows)
    efs = [(r.when, r.value) for r in (await lab_readings(tools, patient, EF))[0]]
    notes = await note_rows(tools, patient, text="echocardiogram")
    efs += echo_notes([(parse_instant(n["date"]), n["text"]) for n in notes])
    bnp, _ = await lab_readings(tools, patient, BNP)
    ldl, ldl_rows = await lab_readings(tools, patient, LDL)
    creatinine, _ = await lab_readings(tools, patient, CREATININE, "creatinine")
    facts = Facts(
        reason=reason,
        heart_failure=hf,
        ef=max(efs)[1] if efs else None,
        bnp=bnp[-1] if bnp else None,
        ldl=ldl[-1] if ldl else None,
        ldl_invalid=tuple(invalid_refs(ldl_rows)),
        creatinine=creatinine[-1] if creatinine else None,
    )
    return facts


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    priority = "urgent" if decision.urgent else "routine"
    actions = [
        Action(
            "cardiology referral",
            "order_service",
            patient=patient,
            code=REFERRAL[0],
            system="snomed",
            kind="referral",
            priority=priority,
            reason_reference=facts.reason.ref,
            note=f"{facts.reason.display} since {facts.reason.onset.date()}",
        )
    ]
    alternatives: list[Action] = []
    labs = [
        ("lipid panel", decision.lipids, LIPID_PANEL),
        ("metabolic panel", decision.metabolic, BMP),
        ("NT-proBNP", decision.bnp, BNP),
    ]
    for name, wanted, loinc in labs:
        action = Action(name, "order_service", patient=patient, code=loinc, kind="lab", reason="cardiology work-up")
        (actions if wanted else alternatives).append(action)
    note = NoteDraft("referral_note", "Referral to cardiology")
    note.add(
        "reason_for_referral",
        f"{facts.reason.display} (onset {facts.reason.onset.date()}). Priority {priority}.",
        entries=[facts.reason.ref],
    )
    results, entries = [], []
    if facts.ldl:
        results.append(f"LDL {facts.ldl.value:.0f} mg/dL on {facts.ldl.when.date()}")
        entries.append(facts.ldl.ref)
    if facts.creatinine:
        results.append(f"creatinine {facts.creatinine.value:.2f} mg/dL on {facts.creatinine.when.date()}")
        entries.append(facts.creatinine.ref)
    if facts.ef is not None:
        results.append(f"ejection fraction {facts.ef:.0f} %")
    note.add("results", "; ".join(results) or "No results.", entries=entries)
    note.add("plan", "Referral and work-up ordered.", cite=[a.key for a in actions])
    summary.add_to(note)
    answer = {
        "reason": facts.reason.display,
        "priority": priority,
        "ldl": round(facts.ldl.value) if facts.ldl else "none",
        "creatinine": round(facts.creatinine.value, 2) if facts.creatinine else "none",
    }
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=8,
    description="A cardiology referral with the work-up and the data the specialist needs.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
    balance=balance,
)
