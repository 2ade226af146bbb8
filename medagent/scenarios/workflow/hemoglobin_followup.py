"""Abnormal result follow-up: a new hemoglobin in the results inbox, judged against the patient's own baseline.

Modelled on a primary-care results-management protocol for a falling hemoglobin: compare the new value with
the most recent valid one before it (within two years); a fall of 2.0 g/dL or more, or a value below 8.0 g/dL,
is significant: repeat the blood count (urgently below 8.0), check iron stores, stop NSAIDs, and list every
active drug that raises bleeding risk (anticoagulants, antiplatelets, NSAIDs) for the physician. The baseline
is the chart's (Synthea's complete blood counts); the setup adds the new result (sometimes reported in g/L by
the reference laboratory), a result entered in error between the two, an older result again from a second
feed (never the baseline itself: what the setup adds never tells the baseline), and an NSAID order (on both
branches).

Patients: adults with a hemoglobin in the two years before now; the new value falls 2.3-4.0 g/dL below the
baseline, or 1.6 g/dL below to 0.8 above it, so the new value alone does not tell the branch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.agentic.common import around
from medagent.scenarios.clock import parse_instant, whole_years_between
from medagent.scenarios.codes import SNOMED
from medagent.scenarios.models import (
    Checkpoint,
    CodingSpec,
    ExpectedAnswer,
    FieldRule,
    ForbiddenWrite,
    Scenario,
    WriteSpec,
)
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.care_gaps import COLONOSCOPY, OUTSIDE_COLONOSCOPY, outside_colonoscopies
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
    no_lab_order,
    no_stop,
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
    invalid_refs,
    lab_readings,
    medication_rows,
    note_rows,
)
from medagent.scenarios.workflow.record import Reading, Record
from medagent.value_sets import value_set

CATEGORY = "hemoglobin_followup"
HEMOGLOBIN, CBC, FERRITIN, INR = "718-7", "58410-2", "2276-4", "6301-6"
WARFARIN = "855332"
COLONOSCOPY_AGE, COLONOSCOPY_YEARS = 45, 10
HB_DISPLAY = "Hemoglobin [Mass/volume] in Blood"
DROP, FLOOR = 2.0, 8.0
BASELINE_DAYS = 730
BLEEDING_CLASSES = ("anticoagulants", "antiplatelets", "nsaids")
PER_PATIENT = 2

PHRASINGS = [
    "A new hemoglobin result for the patient with MRN {mrn} is in the results inbox. Follow it up per the protocol "
    "below and document.",
    "Results inbox: MRN {mrn} has a new hemoglobin. Compare it with the baseline, act per protocol and write the "
    "follow-up note.",
    "Please handle the new blood count result of the patient with MRN {mrn}: significance, orders, medication "
    "safety and documentation as the protocol says.",
    "The lab sent a hemoglobin for MRN {mrn} today. Work the result-follow-up protocol and leave a structured note.",
    "Follow up today's hemoglobin of the patient with MRN {mrn} against their own baseline; protocol below.",
    "For MRN {mrn}: is today's hemoglobin a significant fall? Do what the protocol asks and document it.",
]
PROTOCOL_TITLE = "falling hemoglobin follow-up"
PROTOCOL = [
    f"New value: today's hemoglobin (LOINC {HEMOGLOBIN}), in g/dL (1 g/dL = 10 g/L). Baseline: the most recent "
    f"valid hemoglobin before today within {BASELINE_DAYS} days (results entered in error do not count; the same "
    "result from two feeds counts once).",
    f"Significant: the new value is {DROP:.1f} g/dL or more below the baseline, or below {FLOOR:.1f} g/dL.",
    f"If significant: order a complete blood count (LOINC {CBC}; priority urgent if the new value is below "
    f"{FLOOR:.1f} g/dL, else routine) and a ferritin (LOINC {FERRITIN}), and stop every active NSAID order; on "
    f"warfarin, also order an INR (LOINC {INR}); aged {COLONOSCOPY_AGE} or older with no colonoscopy in the past "
    f"{COLONOSCOPY_YEARS} years (one done elsewhere counts when a note reports it), also order a colonoscopy "
    f"(SNOMED {COLONOSCOPY}, kind procedure).",
    f"If not significant: change nothing; order a complete blood count (LOINC {CBC}, routine) with occurrence 80 to "
    "100 days from today to recheck it.",
    "Whatever the result: list in the note's assessment every medication order that raises bleeding risk "
    "(anticoagulants, antiplatelet drugs, NSAIDs) and was active when you started, citing each.",
]
RECORDING = [
    "Orders: order_service (LOINC, kind lab, priority; the colonoscopy: SNOMED, kind procedure). Stopping an order: "
    "discontinue_medication.",
]
NOTE = NoteRequest(
    "progress_note",
    (
        ("results", "the new hemoglobin and the baseline (values in g/dL, the baseline's date), citing both results"),
        (
            "assessment",
            "significant or not, and every order that raises bleeding risk and was active when you started "
            "(cite each, the ones you stop included)",
        ),
        ("plan", "the orders you placed or stopped (cite each), or that nothing is needed"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"new_hb": today\'s hemoglobin in g/dL (1 decimal), "baseline_hb": the baseline in g/dL '
    '(1 decimal), "baseline_date": its date (YYYY-MM-DD), "significant": true or false}.'
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


def balance(scenario: Scenario) -> str:
    """The branch kept 1:1."""
    return str(scenario.meta["decision"]["significant"])


@dataclass(frozen=True)
class Facts:
    new: Reading
    baseline: Reading
    invalid: tuple[str, ...]
    nsaids: tuple[str, ...]
    bleeding_risk: tuple[str, ...]  # active anticoagulant, antiplatelet and NSAID orders
    warfarin: bool
    age: int
    colonoscopy: datetime | None


@dataclass(frozen=True)
class Decision:
    significant: bool
    urgent: bool
    inr: bool
    colonoscopy: bool


def decide(facts: Facts, now: datetime) -> Decision:
    new = round(facts.new.value, 1)
    significant = facts.baseline.value - facts.new.value >= DROP - 1e-9 or new < FLOOR
    screened = facts.colonoscopy is not None and now - facts.colonoscopy <= timedelta(days=365 * COLONOSCOPY_YEARS + 2)
    return Decision(
        significant=significant,
        urgent=new < FLOOR,
        inr=significant and facts.warfarin,
        colonoscopy=significant and facts.age >= COLONOSCOPY_AGE and not screened,
    )


# ---------- ground truth ----------


def facts_of(record: Record, now: datetime) -> Facts | None:
    readings = record.readings(HEMOGLOBIN, now, since=now - timedelta(days=BASELINE_DAYS))
    today = [r for r in readings if r.when.date() == now.date()]
    before = [r for r in readings if r.when.date() < now.date()]
    if len(today) != 1 or not before:
        return None
    invalid = tuple(sorted({r.ref for r in record.results if r.code == HEMOGLOBIN and not r.valid and r.when <= now}))
    risky = set().union(*(value_set(name).codes for name in BLEEDING_CLASSES))
    colonoscopies = [e.when for e in record.events("procedure", [COLONOSCOPY], now)]
    colonoscopies += [d for d in outside_colonoscopies([(n.when, n.text) for n in record.notes_until(now)]) if d <= now]
    return Facts(
        new=today[0],
        baseline=before[-1],
        invalid=invalid,
        nsaids=tuple(o.ref for o in record.active_orders(value_set("nsaids").codes, now)),
        bleeding_risk=tuple(o.ref for o in record.active_orders(risky, now)),
        warfarin=bool(record.active_orders([WARFARIN], now)),
        age=whole_years_between(record.chart.birth_date, now.date()),
        colonoscopy=max(colonoscopies) if colonoscopies else None,
    )


# ---------- generation ----------


def generate(b: WorkflowBuilder) -> list[Scenario]:
    rng = b.rng(CATEGORY)
    results = b.chart.values(HEMOGLOBIN)
    moments = sorted({f.when for f in results})
    built = []
    for number, moment in enumerate(moments):
        later = [m for m in moments if m > moment]
        room = min((later[0] - moment).days if later else 700, 700)
        if room < 80:
            continue
        day = moment + timedelta(days=rng.randint(60, room - 10))
        now = b.clock(day.replace(hour=11, minute=0, second=0) + timedelta(minutes=rng.randint(0, 240)))
        if not b.alive_at(now) or b.age_at(now) < 18 or now > b.end:
            continue
        item = _item(b, now, number, rng, significant=number % 2 == 0)
        if item is not None:
            built.append(item)
    rng.shuffle(built)
    chosen: list[Scenario] = []
    for want in (True, False):
        pool = [s for s in built if s.meta["decision"]["significant"] == want]
        if pool:
            chosen.append(pool[0])
    return sorted(chosen, key=lambda s: s.now)


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random, *, significant: bool) -> Scenario | None:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    base = b.record()
    before = base.readings(HEMOGLOBIN, now, since=now - timedelta(days=BASELINE_DAYS))
    if not before:
        return None
    baseline = before[-1]
    setup: list[dict] = []

    def add(resource: dict) -> None:
        setup.append(resource)

    new = round(baseline.value - (rng.uniform(2.3, 4.0) if significant else rng.uniform(-0.8, 1.6)), 1)
    if new < 6.0 or (not significant and new < FLOOR + 0.3):
        return None
    drawn = now - timedelta(hours=rng.randint(2, 5))
    if turn % 2 == 0:
        add(
            fx.lab_result(
                sid, len(setup), patient, HEMOGLOBIN, HB_DISPLAY, float(round(new * 10)), "g/L", drawn, feed=True
            )
        )
    else:
        add(fx.lab_result(sid, len(setup), patient, HEMOGLOBIN, HB_DISPLAY, new, "g/dL", drawn))
    if turn % 3 != 2:  # an erroneous result between the baseline and today, on the other side of the rule
        when = baseline.when + (drawn - baseline.when) * rng.uniform(0.4, 0.9)
        wrong = round(new + rng.uniform(0.5, 1.5), 1) if significant else round(new + rng.uniform(2.5, 3.5), 1)
        add(
            fx.lab_result(
                sid, len(setup), patient, HEMOGLOBIN, HB_DISPLAY, wrong, "g/dL", when, status="entered-in-error"
            )
        )
    if turn % 3 != 0 and len(before) >= 2:  # an older result again from a second feed (never the baseline: the
        older = before[-2]  # chart, not the setup, must tell the baseline)
        add(fx.lab_result(sid, len(setup), patient, HEMOGLOBIN, HB_DISPLAY, older.value, "g/dL", older.when, feed=True))
    if not base.active_orders(value_set("nsaids").codes, now):
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                "198014",
                "Naproxen 500 MG Oral Tablet",
                "active",
                now - timedelta(days=rng.randint(20, 200)),
                "1 tablet twice daily with food",
            )
        )
    if turn % 4 == 1:
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                "243670",
                "Aspirin 81 MG Oral Tablet",
                "active",
                now - timedelta(days=rng.randint(100, 900)),
                "1 tablet daily",
            )
        )
    elif turn % 4 == 3:
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                "309362",
                "Clopidogrel 75 MG Oral Tablet",
                "stopped",
                now - timedelta(days=rng.randint(100, 900)),
                "1 tablet daily",
            )
        )
    if not base.events("procedure", [COLONOSCOPY], now) and turn % 3 == 1:
        years = rng.choice([3, 6, 13])  # within 10 years, or too old to count
        day = now - timedelta(days=365 * years + rng.randint(0, 200))
        add(
            fx.clinical_note(
                sid,
                len(setup),
                patient,
                f"Outside report received. {OUTSIDE_COLONOSCOPY.format(day=day.date().isoformat())}: "
                "normal examination to the caecum.",
                day + timedelta(days=rng.randint(10, 40)),
                "Medical records",
                kind="outside",
                title="Outside procedure report",
            )
        )
    for resource in fx.allergy_noise(sid, len(setup), patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now)
    if facts is None:
        return None
    return _scenario(b, key, now, record, facts, decide(facts, now), setup)


def _colonoscopy(patient: str, now: datetime) -> WriteSpec:
    return WriteSpec(
        name="colonoscopy",
        resource_type="ServiceRequest",
        subject=f"Patient/{patient}",
        code_path="code.coding",
        codes=[CodingSpec(system=SNOMED, code=COLONOSCOPY)],
        intent=["order"],
        status=["active"],
        windows=[around(now, "authored now", ["authoredOn"])],
    )


def _no_colonoscopy() -> ForbiddenWrite:
    return ForbiddenWrite(
        name="no colonoscopy",
        resource_type="ServiceRequest",
        code_path="code.coding",
        codes=[CodingSpec(system=SNOMED, code=COLONOSCOPY)],
    )


def _scenario(
    b: WorkflowBuilder, key: tuple, now: datetime, record: Record, facts: Facts, decision: Decision, setup: list[dict]
) -> Scenario:
    patient = b.chart.patient_id
    writes = [NOTE.spec(patient, now)]
    priority = "urgent" if decision.urgent else "routine"
    if decision.significant:
        cbc = lab_order("repeat blood count", patient, now, CBC)
        cbc = cbc.model_copy(update={"fields": [FieldRule(name="priority", path="priority", any_of=[priority])]})
        labs = [cbc, lab_order("ferritin", patient, now, FERRITIN)]
        if decision.inr:
            labs.append(lab_order("INR", patient, now, INR))
        stops = [stop_order(f"stop {ref}", ref) for ref in facts.nsaids]
        writes += labs + stops
        orders = [
            Checkpoint(
                name="follow-up labs",
                kind="order",
                writes=[spec.name for spec in labs],
                forbidden=[] if decision.inr else [no_lab_order("no INR", INR)],
            ),
            Checkpoint(name="NSAIDs stopped", kind="order", writes=[s.name for s in stops]),
        ]
        cited = [spec.name for spec in labs] + [s.name for s in stops]
        if decision.colonoscopy:
            writes.append(_colonoscopy(patient, now))
            orders.append(Checkpoint(name="colonoscopy", kind="order", writes=["colonoscopy"]))
            cited.append("colonoscopy")
        else:
            orders.append(Checkpoint(name="colonoscopy", kind="no_order", forbidden=[_no_colonoscopy()]))
    else:
        writes.append(
            lab_order("recheck blood count", patient, now, CBC, windows=[days_window(now, "in 80-100 days", 80, 100)])
        )
        orders = [
            Checkpoint(
                name="recheck in three months",
                kind="order",
                writes=["recheck blood count"],
                forbidden=[
                    no_lab_order("no ferritin", FERRITIN),
                    no_lab_order("no INR", INR),
                    _no_colonoscopy(),
                    *(no_stop(f"keep {ref}", ref) for ref in facts.nsaids),
                ],
            )
        ]
        cited = ["recheck blood count"]
    results = [
        fact_number("new hemoglobin", "results", round(facts.new.value, 1), 0.05),
        fact_number("baseline hemoglobin", "results", round(facts.baseline.value, 1), 0.051),
        fact_date("baseline date", "results", facts.baseline.when),
        fact_reference("new result cited", "results", facts.new.refs),
        fact_reference("baseline cited", "results", facts.baseline.refs),
    ]
    if facts.invalid:
        results.append(fact_no_reference("no erroneous result cited", "results", facts.invalid))
    meds = [fact_reference(f"bleeding-risk order {ref} cited", "assessment", [ref]) for ref in facts.bleeding_risk]
    checkpoints = [
        Checkpoint(
            name="new hemoglobin and baseline", kind="fact", answer_fields=["new_hb", "baseline_hb", "baseline_date"]
        ),
        Checkpoint(name="significance", kind="fact", answer_fields=["significant"]),
        *orders,
        note_checkpoint("note: results", results),
        note_checkpoint(
            "note: bleeding-risk medicines", meds + ([fact_written("orders cited", "plan", cited)] if cited else [])
        ),
        *chart_summary(record, now, stopped=facts.nsaids if decision.significant else ()),
        Checkpoint(name="no other writes", kind="safety", no_other_writes=True),
    ]
    answer = record_answer(
        new_hb=number_field(round(facts.new.value, 1), "g/dL", 0.05, {"g/L": 0.1}),
        baseline_hb=number_field(round(facts.baseline.value, 1), "g/dL", 0.051, {"g/L": 0.1}),
        baseline_date=date_field(facts.baseline.when),
        significant=ExpectedAnswer(type="boolean", value=decision.significant),
    )
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch="act" if decision.significant else "no-action",
        variant="significant" if decision.significant else "stable",
        provenance=[*facts.new.refs, *facts.baseline.refs],
        meta={"decision": {"significant": decision.significant, "urgent": decision.urgent}},
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    now = parse_instant(sc.now)
    readings, rows = await lab_readings(tools, patient, HEMOGLOBIN, "hemoglobin", since=f"-{BASELINE_DAYS}d")
    today = [r for r in readings if r.when.date() == now.date()]
    before = [r for r in readings if r.when.date() < now.date()]
    meds = await medication_rows(tools, patient, status="current")
    risky = set().union(*(value_set(name).codes for name in BLEEDING_CLASSES))
    nsaids = value_set("nsaids").codes
    person = await tools.call("get_patient", patient=patient)
    procedures = await every_row(tools, "search_procedures", patient=patient, code=COLONOSCOPY, limit=50)
    notes = await note_rows(tools, patient, text="colonoscopy")
    colonoscopies = [parse_instant(r["date"]) for r in procedures if r.get("status") in (None, "completed")]
    colonoscopies += outside_colonoscopies([(parse_instant(n["date"]), n["text"]) for n in notes])
    return Facts(
        new=today[0],
        baseline=before[-1],
        invalid=tuple(invalid_refs(rows)),
        nsaids=tuple(r["ref"] for r in meds if r["code"] in nsaids),
        bleeding_risk=tuple(r["ref"] for r in meds if r["code"] in risky),
        warfarin=any(r["code"] == WARFARIN for r in meds),
        age=whole_years_between(datetime.fromisoformat(person.rows[0]["birthDate"]).date(), now.date()),
        colonoscopy=max(colonoscopies) if colonoscopies else None,
    )


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    priority = "urgent" if decision.urgent else "routine"
    orders = [
        Action(
            "repeat blood count",
            "order_service",
            patient=patient,
            code=CBC,
            kind="lab",
            priority=priority,
            reason=f"hemoglobin {facts.new.value:.1f} g/dL",
        ),
        Action("ferritin", "order_service", patient=patient, code=FERRITIN, kind="lab", reason="falling hemoglobin"),
        *(
            Action(
                f"stop {ref}",
                "discontinue_medication",
                medication_request=ref,
                reason="falling hemoglobin: bleeding risk",
            )
            for ref in facts.nsaids
        ),
    ]
    if decision.inr or not decision.significant:
        orders.append(Action("INR", "order_service", patient=patient, code=INR, kind="lab", reason="on warfarin"))
    if decision.colonoscopy or not decision.significant:
        orders.append(
            Action(
                "colonoscopy",
                "order_service",
                patient=patient,
                code=COLONOSCOPY,
                system="snomed",
                kind="procedure",
                reason="falling hemoglobin, no colonoscopy in 10 years",
            )
        )
    recheck = Action(
        "recheck blood count",
        "order_service",
        patient=patient,
        code=CBC,
        kind="lab",
        occurrence=(parse_instant(sc.now) + timedelta(days=90)).replace(hour=9, minute=0).isoformat(),
        reason="hemoglobin stable: recheck in 3 months",
    )
    actions, alternatives = (orders, [recheck]) if decision.significant else ([recheck], orders)
    note = NoteDraft("progress_note", "Hemoglobin follow-up")
    note.add(
        "results",
        f"Hemoglobin {facts.new.value:.1f} g/dL today; baseline {facts.baseline.value:.1f} g/dL on "
        f"{facts.baseline.when.date()}. {'Significant fall' if decision.significant else 'Stable'}.",
        entries=[facts.new.ref, facts.baseline.ref],
    )
    note.add(
        "assessment",
        f"{'Significant fall' if decision.significant else 'Not significant'}. Active bleeding-risk "
        f"orders: {len(facts.bleeding_risk)}.",
        entries=list(facts.bleeding_risk),
    )
    note.add(
        "plan", "Orders placed as per protocol." if actions else "No orders needed.", cite=[a.key for a in actions]
    )
    summary.add_to(note, stopped=facts.nsaids if decision.significant else ())
    answer = {
        "new_hb": round(facts.new.value, 1),
        "baseline_hb": round(facts.baseline.value, 1),
        "baseline_date": facts.baseline.when.date().isoformat(),
        "significant": decision.significant,
    }
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=6,
    description="Abnormal result follow-up: a new hemoglobin against the patient's baseline.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
    balance=balance,
)
