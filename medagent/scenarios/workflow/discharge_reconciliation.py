"""Post-discharge medication reconciliation: the hospital's discharge list against the clinic's active orders.

Modelled on the transitional-care visit after a hospital or emergency stay (Joint Commission NPSG.03.06.01):
stop what the hospital stopped, start what it started (the dose as discharged), leave what continues, and
raise for clarification what the two lists disagree on: a clinic order the discharge list does not mention,
and a new drug of a class the patient keeps taking (a therapeutic duplicate: chlorthalidone beside
hydrochlorothiazide, atorvastatin beside simvastatin, a second NSAID, beta blocker, loop diuretic,
anticoagulant). A drug the hospital continues whose clinic order was cancelled is ordered again.

Every item holds at least one drug to start and at least one to withhold, and which is which only the clinic's
orders tell: the withheld drug is a class duplicate of an active clinic order (or the unmentioned clinic order
itself); the near miss is a switch within a class (the list stops a clinic drug and starts another of its
class: not a duplicate, it is ordered; the superseded preliminary list still continues the old one). So acting
on every line fails, and so does withholding every new drug of a class the clinic list holds. The chart holds the clinic's orders (Synthea's, from the real stay's dates); the setup
adds the discharge summary (and, as noise, an earlier preliminary version that was superseded, with another
list).

Patients: every hospital or emergency stay after which the patient had at least two active orders (not
contraceptives), at most four stays a patient; nows 2-7 days after discharge.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.clock import parse_instant
from medagent.scenarios.codes import ORAL_ROUTE
from medagent.scenarios.models import Checkpoint, Scenario
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.common import (
    NoteRequest,
    TaskText,
    WorkflowBuilder,
    chart_summary,
    date_field,
    declare,
    drug_names,
    drug_order,
    fact_date,
    fact_text,
    fact_written,
    no_drug_order,
    no_stop,
    note_checkpoint,
    record_answer,
    stop_order,
)
from medagent.scenarios.workflow.reading import (
    Action,
    ChartSummary,
    NoteDraft,
    Plan,
    ToolCaller,
    medication_rows,
    note_rows,
)
from medagent.scenarios.workflow.record import Order, Record
from medagent.value_sets import value_set

CATEGORY = "discharge_reconciliation"
NOT_RECONCILED = (
    "Pack",
    "Intrauterine",
    "Implant",
    "Ring",
    "Injection",
    "medroxyprogesterone",
    "Auto-Injector",
    "Transdermal System",
    "Inhaler",
    "Alteplase",
)
# drugs a hospital starts: RxNorm, display, dose in mg, the line as written in the discharge list
NEW_DRUGS = [
    ("309362", "Clopidogrel 75 MG Oral Tablet", 75.0, "Clopidogrel 75 mg by mouth once daily"),
    ("243670", "Aspirin 81 MG Oral Tablet", 81.0, "Aspirin 81 mg by mouth once daily"),
    ("197361", "Amlodipine 5 MG Oral Tablet", 5.0, "Amlodipine 5 mg by mouth once daily"),
    ("312961", "Simvastatin 20 MG Oral Tablet", 20.0, "Simvastatin 20 mg by mouth every evening"),
    ("315971", "Lasix 40mg", 40.0, "Furosemide (Lasix) 40 mg by mouth once daily"),
]
# drugs a hospital starts that duplicate a class the patient may already take: class -> candidates (the first
# the patient has no order of is used), as in NEW_DRUGS
SAME_CLASS = {
    "thiazide_diuretics": [
        ("197499", "Chlorthalidone 25 MG Oral Tablet", 25.0, "Chlorthalidone 25 mg by mouth once daily"),
    ],
    "loop_diuretics": [("197418", "Bumetanide 1 MG Oral Tablet", 1.0, "Bumetanide 1 mg by mouth once daily")],
    "beta_blockers": [("197380", "Atenolol 25 MG Oral Tablet", 25.0, "Atenolol 25 mg by mouth once daily")],
    "statins": [("617310", "Atorvastatin 20 MG Oral Tablet", 20.0, "Atorvastatin 20 mg by mouth every evening")],
    "anticoagulants": [("1364445", "Apixaban 5 MG Oral Tablet", 5.0, "Apixaban 5 mg by mouth twice daily")],
    "antiplatelets": [
        ("309362", "Clopidogrel 75 MG Oral Tablet", 75.0, "Clopidogrel 75 mg by mouth once daily"),
        ("243670", "Aspirin 81 MG Oral Tablet", 81.0, "Aspirin 81 mg by mouth once daily"),
    ],
    "nsaids": [
        ("310965", "Ibuprofen 200 MG Oral Tablet", 200.0, "Ibuprofen 200 mg by mouth every 6 hours as needed"),
        ("849574", "Naproxen sodium 220 MG Oral Tablet", 220.0, "Naproxen sodium 220 mg by mouth twice daily"),
    ],
    "ace_inhibitors_arbs": [("314076", "Lisinopril 10 MG Oral Tablet", 10.0, "Lisinopril 10 mg by mouth once daily")],
}
CLASSES = tuple(SAME_CLASS)
PER_PATIENT = 4
STOP_REASONS = {
    "nsaids": "acute kidney injury during the admission",
    "statins": "raised liver enzymes",
    "default": "no longer needed (discussed with the patient)",
}
HOSPITAL = "St. Elsewhere Hospital"
DISPLAYS: dict[str, str] = {code: display for code, display, _, _ in NEW_DRUGS}
DISPLAYS.update({code: display for drugs in SAME_CLASS.values() for code, display, _, _ in drugs})

PHRASINGS = [
    "The patient with MRN {mrn} was discharged from hospital recently. Reconcile the discharge medication list with "
    "our active orders per the protocol, make the changes and document the reconciliation.",
    "Post-discharge visit for MRN {mrn}: please do the medication reconciliation against the discharge summary and "
    "update the orders.",
    "Medication reconciliation after the recent hospital stay of the patient with MRN {mrn}. Follow the protocol, "
    "update orders, flag what needs clarifying, and write the note.",
    "MRN {mrn} is back from the hospital. Compare the discharge medicines with the clinic list, act per protocol and "
    "leave a structured reconciliation note.",
    "Transitional care for the patient with MRN {mrn}: reconcile medications with the hospital's discharge list, "
    "orders and note please.",
    "Please reconcile MRN {mrn}'s medicines after discharge (protocol below): stop, start, clarify, document.",
]
PROTOCOL_TITLE = "post-discharge medication reconciliation"
PROTOCOL = [
    "Use the hospital's final discharge summary for the most recent stay (a preliminary or superseded version does "
    "not count). Compare its discharge medication list with the clinic's active medication orders.",
    "A drug the discharge list says to stop: stop the clinic's active order(s) of it.",
    "A drug the hospital started: order it as written in the discharge list (same product, dose in mg, by mouth), "
    "unless the patient keeps taking another drug of the same therapeutic class (an active clinic order that the "
    "discharge list does not stop; e.g. a second statin, NSAID, anticoagulant, antiplatelet drug, beta blocker, "
    "thiazide-type or loop diuretic, ACE inhibitor or ARB): then do not order it; list it for clarification. A "
    "clinic order of that class that was already stopped or cancelled is no duplicate.",
    "A drug the discharge list continues: nothing to do if the clinic has an active order; if the clinic has none "
    "(e.g. it was cancelled), order it as written.",
    "An active clinic order the discharge list does not mention at all: change nothing; list it for clarification.",
]
RECORDING = [
    "Orders: order_medication (RxNorm code of the product, dose_value and dose_unit mg, route oral). Stopping an "
    "order: discontinue_medication.",
]
NOTE = NoteRequest(
    "progress_note",
    (
        ("hospital_course", "the hospital and the discharge date"),
        (
            "medications",
            "the reconciled list: what you stopped, what you started, and what needs clarification (by name)",
        ),
        ("plan", "cite every order you placed or stopped"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"discharge_date": the discharge date (YYYY-MM-DD), "stopped": names of the clinic orders you '
    'stopped, "started": names of the drugs you ordered, "to_clarify": names of the drugs listed for clarification '
    "(each a list, empty if none; a drug named as the chart or the discharge list names it, or by its RxNorm "
    "code)}."
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


@dataclass(frozen=True)
class Line:
    """One line of the discharge medication list."""

    action: str  # stop | start | continue
    code: str
    display: str
    text: str
    dose: float | None = None


@dataclass(frozen=True)
class Facts:
    discharge: datetime
    lines: tuple[Line, ...]
    active: tuple[tuple[str, str, str], ...]  # (ref, code, display) of the clinic's active orders


@dataclass(frozen=True)
class Decision:
    stop: tuple[tuple[str, str], ...]  # (ref, display)
    start: tuple[Line, ...]
    clarify: tuple[str, ...]


def _class_of(code: str) -> str | None:
    for name in CLASSES:
        if code in value_set(name):
            return name
    return None


def decide(facts: Facts, now: datetime) -> Decision:
    active_codes = {code for _, code, _ in facts.active}
    kept = active_codes - {line.code for line in facts.lines if line.action == "stop"}
    stop = tuple(
        (ref, display)
        for ref, code, display in facts.active
        if any(line.action == "stop" and line.code == code for line in facts.lines)
    )
    start: list[Line] = []
    clarify: list[str] = []
    for line in facts.lines:
        if line.action == "start":
            klass = _class_of(line.code)
            if klass and any(_class_of(code) == klass and code != line.code for code in kept):
                clarify.append(line.display)
            elif line.code not in active_codes:
                start.append(line)
        elif line.action == "continue" and line.code not in active_codes:
            start.append(line)
    mentioned = {line.code for line in facts.lines}
    clarify += [display for _, code, display in facts.active if code not in mentioned]
    return Decision(stop=stop, start=tuple(start), clarify=tuple(sorted(set(clarify))))


# ---------- the discharge summary ----------

LINE_PATTERN = re.compile(r"^- (STOP|NEW|CONTINUE): (.+?) \[RxNorm (\d+)\]", re.M)
DOSE = re.compile(r"(\d+(?:\.\d+)?) mg", re.I)


def summary_text(lines: list[Line], admitted: datetime, discharged: datetime, reason: str) -> str:
    rows = "\n".join(
        f"- {line.action.upper().replace('START', 'NEW')}: {line.text} [RxNorm {line.code}]" for line in lines
    )
    return (
        f"{HOSPITAL} discharge summary. Admitted {admitted.date().isoformat()}, discharged "
        f"{discharged.date().isoformat()}. Reason for admission: {reason}.\nDischarge medications:\n{rows}\n"
        "Follow up with the primary care clinic within 1 week."
    )


def lines_of(text: str) -> tuple[Line, ...]:
    """The discharge list read back from the summary's text (the ground truth reads what the note says)."""
    out: list[Line] = []
    for action, written, code in LINE_PATTERN.findall(text):
        kind = {"STOP": "stop", "NEW": "start", "CONTINUE": "continue"}[action]
        dose = DOSE.search(written)
        out.append(
            Line(
                kind,
                code,
                written.split(" by mouth")[0].split(" - ")[0].split(" (")[0],
                written,
                float(dose.group(1)) if dose else None,
            )
        )
    return tuple(out)


def discharge_of(text: str) -> datetime:
    day = re.search(r"discharged (\d{4}-\d{2}-\d{2})", text)
    assert day is not None
    return parse_instant(day.group(1))


# ---------- generation ----------


def _other_of_class(code: str, codes: set[str]) -> tuple[str, str, float, str] | None:
    """A drug a hospital might start of the same class as ``code`` that the patient has no order of."""
    klass = _class_of(code)
    return next((d for d in SAME_CLASS.get(klass or "", []) if d[0] not in codes), None)


def _reconcilable(orders: list[Order]) -> list[Order]:
    return [o for o in orders if not any(word.lower() in o.display.lower() for word in NOT_RECONCILED)]


def generate(b: WorkflowBuilder) -> list[Scenario]:
    rng = b.rng(CATEGORY)
    base = b.record()
    out: list[Scenario] = []
    stays = [e for e in b.chart.encounters if e.klass in ("IMP", "EMER") and e.end is not None]
    rng.shuffle(stays)
    for number, stay in enumerate(stays):
        assert stay.end is not None
        now = b.clock(stay.end + timedelta(days=rng.randint(2, 7), hours=rng.randint(1, 6)))
        if (
            not b.alive_at(now)
            or b.age_at(now) < 18
            or any(e.start <= now <= (e.end or e.start) for e in b.chart.encounters if e.klass in ("IMP", "EMER"))
        ):
            continue
        if any(stay.end < e.start <= now for e in b.chart.encounters if e.klass in ("IMP", "EMER")):
            continue  # another stay in between: the summary would not be the most recent
        active = _reconcilable(base.all_active_orders(stay.end))
        if len(active) < 2 or len({o.code for o in active}) != len(active):
            continue
        item = _item(b, now, stay.start, stay.end, active, number, rng)
        if item is not None:
            out.append(item)
        if len(out) >= PER_PATIENT:
            break
    return out


def _item(
    b: WorkflowBuilder,
    now: datetime,
    admitted: datetime,
    discharged: datetime,
    active: list[Order],
    number: int,
    rng: random.Random,
) -> Scenario | None:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    orders = list(active)
    rng.shuffle(orders)
    codes = {o.code for o in active}
    classes = {_class_of(o.code) for o in active} - {None}
    # the withheld drug: a class duplicate of an active clinic order the list keeps, on two items in three where the
    # chart has such an order (else, and on every other item, the clinic order the list leaves out)
    duplicate = None
    anchors = [o for o in orders if _other_of_class(o.code, codes) is not None]
    if anchors and turn % 3 != 2:
        duplicate = anchors[0]
    klass = _class_of(duplicate.code) if duplicate else None
    stoppable = [o for o in orders if o is not duplicate and (klass is None or _class_of(o.code) != klass)]
    if not stoppable:
        return None
    # the near miss, on every other item where the chart allows: the hospital switched a clinic drug to another of
    # its class (the list stops the one and starts the other): no duplicate, ordered
    switches = [
        o
        for o in stoppable
        if _class_of(o.code) not in (None, "nsaids")
        and _other_of_class(o.code, codes) is not None
        and not any(_class_of(other.code) == _class_of(o.code) for other in orders if other is not o)
    ]
    switch = switches[0] if switches and turn % 2 == 1 else None
    stopped = switch or stoppable[0]
    reason = STOP_REASONS.get(_class_of(stopped.code) or "", STOP_REASONS["default"])
    if switch is not None:
        code, display, dose, text = _other_of_class(switch.code, codes)  # type: ignore[misc]
        reason = f"switched to {display.split(' ')[0].lower()}"
    lines = [Line("stop", stopped.code, stopped.display, f"{stopped.display} - stopped: {reason}")]
    if switch is not None:
        lines.append(Line("start", code, display, text, dose))
    rest = [o for o in orders if o is not stopped]
    unmentioned = rest[0] if duplicate is None or turn % 2 == 0 else None
    for order in rest:
        if order is not unmentioned:
            lines.append(Line("continue", order.code, order.display, f"{order.display} - continue as before"))
    if duplicate is not None:
        code, display, dose, text = _other_of_class(duplicate.code, codes)  # type: ignore[misc]
        lines.append(Line("start", code, display, text, dose))
    used = set(classes)
    lapsed = [
        o
        for o in _reconcilable(b.record().orders)
        if o.status == "stopped"
        and o.code not in codes
        and discharged - timedelta(days=730) < o.authored < admitted
        and DOSE.search(o.display)
        and _class_of(o.code) not in used
        and _class_of(o.code) != "nsaids"  # an NSAID is never re-ordered unasked (kidneys, bleeding)
    ]
    if lapsed and turn % 4 == 1:  # the patient still takes it, but the clinic's order has lapsed
        order = max(lapsed, key=lambda o: o.authored)
        dose = float(DOSE.search(order.display).group(1))  # type: ignore[union-attr]
        lines.append(Line("continue", order.code, order.display, f"{order.display} ({dose:g} mg) - continue", dose))
        used.add(_class_of(order.code))
    named = {line.code for line in lines}
    new = [d for d in NEW_DRUGS if d[0] not in codes | named and _class_of(d[0]) not in used]
    if new:
        code, display, dose, text = new[turn % len(new)]
        lines.append(Line("start", code, display, text, dose))
    rng.shuffle(lines)
    reason = rng.choice(
        [
            "community-acquired pneumonia",
            "chest pain, myocardial infarction ruled out",
            "syncope",
            "cellulitis of the leg",
            "dehydration",
        ]
    )
    setup = [
        fx.clinical_note(
            sid,
            0,
            patient,
            summary_text(lines, admitted, discharged, reason),
            discharged + timedelta(hours=2),
            f"Hospitalist, {HOSPITAL}",
            kind="discharge",
            title="Discharge summary",
        )
    ]
    if turn % 2 == 1:  # the preliminary version, superseded: another list
        draft = [
            Line("continue", stopped.code, stopped.display, f"{stopped.display} - continue as before"),
            *[line for line in lines if line.action != "stop"],
        ]
        note = fx.clinical_note(
            sid,
            1,
            patient,
            summary_text(draft, admitted, discharged, reason),
            discharged - timedelta(hours=3),
            f"Hospitalist, {HOSPITAL}",
            kind="discharge",
            title="Discharge summary (preliminary)",
        )
        note["status"], note["docStatus"] = "superseded", "preliminary"
        setup.append(note)
    for resource in fx.allergy_noise(sid, 10, patient, turn, now):
        setup.append(resource)
    text = summary_text(lines, admitted, discharged, reason)
    setup[0] = fx.clinical_note(
        sid,
        0,
        patient,
        text,
        discharged + timedelta(hours=2),
        f"Hospitalist, {HOSPITAL}",
        kind="discharge",
        title="Discharge summary",
    )
    record = b.record(setup)
    facts = Facts(
        discharge=discharged,
        lines=lines_of(text),
        active=tuple((o.ref, o.code, o.display) for o in _reconcilable(record.all_active_orders(now))),
    )
    decision = decide(facts, now)
    if not decision.start or not decision.clarify:
        return None  # every item starts a drug and withholds one (acting on every line must fail)
    return _scenario(b, key, now, record, facts, decision, setup)


def _scenario(
    b: WorkflowBuilder, key: tuple, now: datetime, record: Record, facts: Facts, decision: Decision, setup: list[dict]
) -> Scenario:
    patient = b.chart.patient_id
    writes = [NOTE.spec(patient, now)]
    stops = [stop_order(f"stop {ref}", ref) for ref, _ in decision.stop]
    starts = [
        drug_order(f"start {line.code}", patient, now, line.code, line.dose or 0.0, "mg", ORAL_ROUTE)
        for line in decision.start
    ]
    writes += stops + starts
    stop_refs = {ref for ref, _ in decision.stop}
    keep = [no_stop(f"keep {ref}", ref) for ref, _, _ in facts.active if ref not in stop_refs]
    clarify_codes = [line.code for line in facts.lines if line.display in decision.clarify]
    checkpoints = [
        Checkpoint(name="discharge found", kind="fact", answer_fields=["discharge_date"]),
        Checkpoint(
            name="orders stopped",
            kind="order",
            answer_fields=["stopped"],
            writes=[s.name for s in stops],
            forbidden=keep,
        ),
        Checkpoint(
            name="orders started",
            kind="order" if starts else "no_order",
            answer_fields=["started"],
            writes=[s.name for s in starts],
        ),
        Checkpoint(
            name="clarifications",
            kind="no_order",
            answer_fields=["to_clarify"],
            forbidden=[no_drug_order("no class duplicate ordered", clarify_codes)] if clarify_codes else [],
        ),
        note_checkpoint(
            "note: hospital stay",
            [
                fact_date("discharge date", "hospital_course", facts.discharge),
                fact_text("hospital named", "hospital_course", ["Elsewhere"]),
            ],
        ),
        note_checkpoint(
            "note: reconciled list",
            [
                *[fact_text(f"clarify {name}", "medications", [name.split(" ")[0]]) for name in decision.clarify],
                fact_written("changes cited", "plan", [*(s.name for s in stops), *(s.name for s in starts)]),
            ],
        ),
        *chart_summary(record, now, stopped=stop_refs, started=[s.name for s in starts]),
        Checkpoint(name="no other writes", kind="safety", no_other_writes=True),
    ]
    short = {line.code: line.display for line in facts.lines}
    code_of_ref = {ref: code for ref, code, _ in facts.active}
    code_of_name = {
        **{display: code for _, code, display in facts.active},
        **{line.display: line.code for line in facts.lines},
    }
    answer = record_answer(
        discharge_date=date_field(facts.discharge),
        stopped=drug_names([(code_of_ref[ref], display) for ref, display in decision.stop], short),
        started=drug_names([(line.code, DISPLAYS.get(line.code, line.display)) for line in decision.start], short),
        to_clarify=drug_names(
            [(code_of_name[name], DISPLAYS.get(code_of_name[name], name)) for name in decision.clarify], short
        ),
    )
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch="act",
        variant="+".join(
            kind
            for kind, found in (
                ("duplicate", any(line.display in decision.clarify for line in facts.lines if line.action == "start")),
                ("unmentioned", any(display in decision.clarify for _, _, display in facts.active)),
            )
            if found
        ),
        provenance=[ref for ref, _, _ in facts.active],
        meta={
            "decision": {
                "stop": [r for r, _ in decision.stop],
                "start": [line.code for line in decision.start],
                "clarify": list(decision.clarify),
            }
        },
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    await tools.call("search_encounters", patient=patient, since="-30d")
    notes = await note_rows(tools, patient, since="-30d")
    summaries = [n for n in notes if n["type"] == "Discharge summary" and n["status"] == "current"]
    latest = max(summaries, key=lambda n: n["date"])
    meds = await medication_rows(tools, patient, status="current")
    active = tuple(
        (r["ref"], r["code"], r["display"])
        for r in meds
        if not any(word.lower() in r["display"].lower() for word in NOT_RECONCILED)
    )
    return Facts(discharge=discharge_of(latest["text"]), lines=lines_of(latest["text"]), active=active)


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    actions = [
        Action(f"stop {ref}", "discontinue_medication", medication_request=ref, reason="stopped at hospital discharge")
        for ref, _ in decision.stop
    ]
    actions += [
        Action(
            f"start {line.code}",
            "order_medication",
            patient=patient,
            code=line.code,
            dose_value=line.dose,
            dose_unit="mg",
            route="oral",
            instructions=line.text,
            reason="started at hospital discharge",
        )
        for line in decision.start
    ]
    clarify_lines = [line for line in facts.lines if line.display in decision.clarify and line.action == "start"]
    alternatives = [
        Action(
            f"start {line.code}",
            "order_medication",
            patient=patient,
            code=line.code,
            dose_value=line.dose or 1,
            dose_unit="mg",
            route="oral",
        )
        for line in clarify_lines
    ]
    alternatives += [
        Action(f"stop {ref}", "discontinue_medication", medication_request=ref, reason="not on the discharge list")
        for ref, _, display in facts.active
        if display in decision.clarify
    ]
    note = NoteDraft("progress_note", "Post-discharge medication reconciliation")
    note.add("hospital_course", f"Discharged from {HOSPITAL} on {facts.discharge.date()}.")
    note.add("plan", "Orders updated as reconciled.", cite=[a.key for a in actions])
    summary.add_to(
        note,
        stopped=[ref for ref, _ in decision.stop],
        started=[a.key for a in actions if a.tool == "order_medication"],
        medications_text=f"Stopped: {'; '.join(d for _, d in decision.stop) or 'none'}. Started: "
        f"{'; '.join(line.display for line in decision.start) or 'none'}. To clarify: "
        f"{'; '.join(decision.clarify) or 'none'}.",
    )
    answer = {
        "discharge_date": facts.discharge.date().isoformat(),
        "stopped": [d for _, d in decision.stop],
        "started": [line.display for line in decision.start],
        "to_clarify": list(decision.clarify),
    }
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=5,
    description="Post-discharge medication reconciliation against the hospital's discharge list.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
)
