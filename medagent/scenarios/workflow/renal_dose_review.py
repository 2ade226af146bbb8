"""Renal medication safety review: kidney function from the latest valid eGFR, then a written dosing table.

Modelled on a pharmacist-led CKD medication review (KDIGO 2012 chapter 4.4, Beers renal criteria): NSAIDs are
stopped below an eGFR of 60, metformin and nitrofurantoin below 30; a new fall below 60 after a normal value
is confirmed with a repeat metabolic panel; CKD (two values below 60 at least 90 days apart) without a
urine albumin/creatinine ratio in a year gets one; an NSAID bought over the counter, which only a note
mentions, is documented and the patient advised to stop. The chart's eGFR history decides the branch; the
setup adds an NSAID order (both branches, so its presence says nothing), the latest eGFR entered in error
or from a second feed or under a local code, a refuted CKD diagnosis, a cancelled NSAID order and the note.

Patients: adults with an eGFR whose latest moment before now holds one value (Synthea reports two eGFR
series for some patients at the same moment with different values: those moments are not asked about).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.clock import parse_instant
from medagent.scenarios.models import Checkpoint, Scenario
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.common import (
    NoteRequest,
    TaskText,
    WorkflowBuilder,
    chart_summary,
    choice_field,
    date_field,
    days_window,
    declare,
    fact_date,
    fact_no_reference,
    fact_number,
    fact_reference,
    fact_text,
    fact_written,
    lab_order,
    names_field,
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
    invalid_refs,
    lab_readings,
    medication_rows,
    note_rows,
)
from medagent.scenarios.workflow.record import Reading, Record
from medagent.value_sets import value_set

CATEGORY = "renal_dose_review"
EGFR, UACR, BMP = "33914-3", "14959-1", "51990-0"
EGFR_DISPLAY = "Estimated Glomerular Filtration Rate"
NSAID_LIMIT, METFORMIN_LIMIT, NITROFURANTOIN_LIMIT = 60, 30, 30
CKD_SPAN = 90
METFORMIN = ("860975",)  # the metformin product of the charts
NITROFURANTOIN = ("311989", "311995")
NAPROXEN = ("198014", "Naproxen 500 MG Oral Tablet")
OTC_DRUGS = ("ibuprofen", "naproxen")
EGFR_NOISE = ("entered_in_error", "second_feed", "local_code", "refuted_ckd")
PER_PATIENT = 3


def balance(scenario: Scenario) -> str:
    """The branch kept 1:1."""
    return str(scenario.meta["egfr"] < NSAID_LIMIT)


PHRASINGS = [
    "Please do a renal medication safety review for the patient with MRN {mrn}: check kidney function, apply the "
    "dosing table below, make the changes and document them.",
    "Medication review for kidney safety, patient MRN {mrn}. Work through the renal dosing protocol, stop what has "
    "to be stopped, order the follow-up labs and write the review note.",
    "The patient with MRN {mrn} needs a CKD medication safety check. Use the latest kidney function and the "
    "protocol; act on it and leave a structured note.",
    "Run the renal dose review on MRN {mrn}: which medicines are unsafe at this kidney function? Stop them per "
    "protocol, order what the protocol asks, and document.",
    "Kidney-function medication review for the patient with MRN {mrn}, please: protocol below; changes, labs and a "
    "structured note.",
    "Pharmacy asked for a renal review of MRN {mrn}'s medications. Apply the protocol to the chart, carry out the "
    "changes and write it up.",
]
PROTOCOL_TITLE = "renal medication safety review"
PROTOCOL = [
    f"Kidney function is the most recent valid eGFR (LOINC {EGFR}; results entered in error do not count; the "
    "problem list does not replace a result).",
    f"NSAIDs (any anti-inflammatory analgesic, e.g. ibuprofen, naproxen): if the eGFR is below {NSAID_LIMIT}, stop "
    "every active NSAID order. An NSAID the patient takes without an order (over the counter) cannot be stopped "
    "here: name it in the note and advise stopping it.",
    f"Metformin and nitrofurantoin: if the eGFR is below {METFORMIN_LIMIT}, stop their active orders.",
    f"A new fall: if the eGFR is below {NSAID_LIMIT} and the valid eGFR before it was {NSAID_LIMIT} or more, order a "
    f"basic metabolic panel (LOINC {BMP}) to repeat it (no occurrence: as soon as possible).",
    f"eGFR {NSAID_LIMIT} or more with an NSAID order that continues: order a basic metabolic panel (LOINC {BMP}) "
    "with occurrence 330 to 400 days from today, to check kidney function in a year.",
    f"CKD: if the eGFR is below {NSAID_LIMIT} and so was a valid eGFR at least {CKD_SPAN} days earlier, and there "
    f"is no urine albumin/creatinine ratio (LOINC {UACR}) in the past 365 days, order one.",
    "Change nothing else.",
]
RECORDING = [
    "Stopping an order: discontinue_medication on that MedicationRequest (give the reason). Labs: order_service "
    "(LOINC code, kind lab).",
]
NOTE = NoteRequest(
    "progress_note",
    (
        ("results", "the eGFR the review rests on (value in mL/min/1.73m2 and date), citing that result"),
        (
            "medications",
            "each order you stopped and why, and any NSAID taken without an order (named, with the advice to stop it)",
        ),
        ("plan", "the labs you ordered and the orders you stopped (cite each one)"),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"egfr": the eGFR the review rests on in mL/min/1.73m2 (whole number), "egfr_date": its date '
    '(YYYY-MM-DD), "stopped": the names of the medication orders you stopped (a list, empty if none), '
    '"otc_nsaid": the NSAID the patient takes without an order, or "none"}.'
)
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


@dataclass(frozen=True)
class Facts:
    egfr: tuple[Reading, ...]  # valid, oldest first
    egfr_invalid: tuple[str, ...]
    uacr_last: datetime | None
    nsaids: tuple[tuple[str, str], ...]  # active NSAID orders: (ref, display)
    renal_drugs: tuple[tuple[str, str], ...]  # active metformin / nitrofurantoin orders
    otc_nsaid: str | None


@dataclass(frozen=True)
class Decision:
    stop: tuple[tuple[str, str], ...]
    repeat_panel: bool
    order_uacr: bool
    annual_panel: bool = False


def decide(facts: Facts, now: datetime) -> Decision:
    latest = facts.egfr[-1]
    stop: list[tuple[str, str]] = []
    if latest.value < NSAID_LIMIT:
        stop += facts.nsaids
    if latest.value < METFORMIN_LIMIT:
        stop += facts.renal_drugs
    before = facts.egfr[-2] if len(facts.egfr) > 1 else None
    new_fall = latest.value < NSAID_LIMIT and before is not None and before.value >= NSAID_LIMIT
    ckd = latest.value < NSAID_LIMIT and any(
        r.value < NSAID_LIMIT and latest.when - r.when >= timedelta(days=CKD_SPAN) for r in facts.egfr[:-1]
    )
    no_uacr = facts.uacr_last is None or now - facts.uacr_last > timedelta(days=365)
    annual = latest.value >= NSAID_LIMIT and bool(facts.nsaids)
    return Decision(stop=tuple(stop), repeat_panel=new_fall, order_uacr=ckd and no_uacr, annual_panel=annual)


# ---------- ground truth ----------


def facts_of(record: Record, now: datetime, otc: str | None) -> Facts:
    nsaids = value_set("nsaids").codes
    egfr = tuple(record.readings(EGFR, now))
    invalid = tuple(sorted({r.ref for r in record.results if r.code == EGFR and not r.valid and r.when <= now}))
    uacr = record.readings(UACR, now)
    active = record.all_active_orders(now)
    return Facts(
        egfr=egfr,
        egfr_invalid=invalid,
        uacr_last=uacr[-1].when if uacr else None,
        nsaids=tuple((o.ref, o.display) for o in active if o.code in nsaids),
        renal_drugs=tuple((o.ref, o.display) for o in active if o.code in (*METFORMIN, *NITROFURANTOIN)),
        otc_nsaid=otc,
    )


def _unambiguous_moments(b: WorkflowBuilder) -> list[datetime]:
    """Moments with exactly one eGFR value (two series disagreeing at one moment are not asked about)."""
    values: dict[datetime, set[float]] = {}
    for fact in b.chart.values(EGFR):
        values.setdefault(fact.when, set()).add(round(fact.value, 3))
    return sorted(moment for moment, found in values.items() if len(found) == 1)


def generate(b: WorkflowBuilder) -> list[Scenario]:
    rng = b.rng(CATEGORY)
    built = []
    for number, moment in enumerate(_unambiguous_moments(b)):
        now = b.clock(moment + timedelta(days=rng.randint(2, 20), hours=rng.randint(1, 6)))
        if not b.alive_at(now) or b.age_at(now) < 18:
            continue
        later = [f.when for f in b.chart.values(EGFR) if moment < f.when <= now]
        if later:
            continue
        item = _item(b, now, number, rng)
        if item is not None:
            built.append(item)
    rng.shuffle(built)
    chosen: list[Scenario] = []
    for low in (True, True, True, False):
        pool = [s for s in built if (s.meta["egfr"] < NSAID_LIMIT) == low and s not in chosen]
        if pool:
            chosen.append(pool[0])
    return sorted(chosen, key=lambda s: s.now)


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random) -> Scenario | None:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    base = b.record()
    chart_egfr = base.readings(EGFR, now)
    if len(chart_egfr) < 2:
        return None
    latest = chart_egfr[-1]
    setup: list[dict] = []

    def add(resource: dict) -> None:
        setup.append(resource)

    nsaids = value_set("nsaids").codes
    if not any(o.code in nsaids for o in base.all_active_orders(now)):
        add(
            fx.medication_order(
                sid,
                len(setup),
                patient,
                *NAPROXEN,
                "active",
                now - timedelta(days=rng.randint(30, 200)),
                "1 tablet by mouth twice daily with food for knee pain",
            )
        )
    add(
        fx.medication_order(
            sid,
            len(setup),
            patient,
            "310965",
            "Ibuprofen 200 MG Oral Tablet",
            "cancelled",
            now - timedelta(days=rng.randint(20, 120)),
            "2 tablets every 8 hours as needed",
            reason="Replaced before dispensing",
        )
    )
    noise = [EGFR_NOISE[(turn + i) % len(EGFR_NOISE)] for i in range(2)]
    if "second_feed" in noise:
        add(
            fx.lab_result(
                sid, len(setup), patient, EGFR, EGFR_DISPLAY, latest.value, "mL/min/{1.73_m2}", latest.when, feed=True
            )
        )
    if "local_code" in noise:  # a newer valid eGFR from the clinic's own analyser, on the same side of 60
        when = latest.when + (now - latest.when) * rng.uniform(0.3, 0.7)
        value = (
            float(rng.randint(max(8, int(latest.value) - 8), min(59, int(latest.value) + 4)))
            if latest.value < NSAID_LIMIT
            else float(rng.randint(max(61, int(latest.value) - 15), int(latest.value) + 10))
        )
        add(fx.lab_result(sid, len(setup), patient, EGFR, EGFR_DISPLAY, value, "mL/min/{1.73_m2}", when, local=True))
    if "entered_in_error" in noise:  # an erroneous newer result on the other side of 60
        newest = max(
            [latest.when, *(parse_instant(r["effectiveDateTime"]) for r in setup if r["resourceType"] == "Observation")]
        )
        when = newest + (now - newest) * rng.uniform(0.3, 0.8)
        value = float(rng.randint(72, 95) if latest.value < NSAID_LIMIT else rng.randint(24, 52))
        add(
            fx.lab_result(
                sid, len(setup), patient, EGFR, EGFR_DISPLAY, value, "mL/min/{1.73_m2}", when, status="entered-in-error"
            )
        )
    if "refuted_ckd" in noise:
        add(
            fx.condition(
                sid,
                len(setup),
                patient,
                "433144002",
                "Chronic kidney disease stage 3 (disorder)",
                now - timedelta(days=rng.randint(30, 400)),
                verification="refuted",
            )
        )
    otc = None
    if turn % 2 == 0:
        otc = OTC_DRUGS[(turn // 2) % 2]
        add(
            fx.clinical_note(
                sid,
                len(setup),
                patient,
                f"Telephone call. Patient reports taking {otc} {'400' if otc == 'ibuprofen' else '220'} mg "
                f"bought over the counter, two or three times a day for back pain, for about a month. "
                f"No other new medicines. Advised to bring all medicines to the next visit.",
                now - timedelta(days=rng.randint(3, 40)),
                "Practice nurse",
                title="Telephone encounter",
            )
        )
    for resource in fx.allergy_noise(sid, len(setup), patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now, otc)
    if len(facts.egfr) < 2:
        return None
    decision = decide(facts, now)
    return _scenario(b, key, now, record, facts, decision, setup, noise)


def _scenario(
    b: WorkflowBuilder,
    key: tuple,
    now: datetime,
    record: Record,
    facts: Facts,
    decision: Decision,
    setup: list[dict],
    noise: list[str],
) -> Scenario:
    patient = b.chart.patient_id
    latest = facts.egfr[-1]
    writes = [NOTE.spec(patient, now)]
    checkpoints = [Checkpoint(name="kidney function", kind="fact", answer_fields=["egfr", "egfr_date"])]
    stop_names = []
    for group, orders in (("NSAID orders", facts.nsaids), ("metformin and nitrofurantoin orders", facts.renal_drugs)):
        if not orders:
            continue
        to_stop = [o for o in orders if o in decision.stop]
        specs = [stop_order(f"stop {ref}", ref) for ref, _ in to_stop]
        writes += specs
        stop_names += [spec.name for spec in specs]
        forbidden = [no_stop(f"keep {ref}", ref) for ref, _ in orders if (ref, _) not in to_stop]
        checkpoints.append(
            Checkpoint(
                name=group,
                kind="order" if specs else "no_order",
                writes=[spec.name for spec in specs],
                forbidden=forbidden,
            )
        )
    checkpoints[-1] = checkpoints[-1].model_copy(update={"answer_fields": ["stopped"]})
    cited = list(stop_names)
    for name, wanted, loinc in (
        ("repeat metabolic panel", decision.repeat_panel, BMP),
        ("UACR order", decision.order_uacr, UACR),
    ):
        if name == "repeat metabolic panel" and decision.annual_panel:
            name, wanted = "annual metabolic panel", True
        if wanted:
            windows = [days_window(now, "in 330-400 days", 330, 400)] if name == "annual metabolic panel" else []
            writes.append(lab_order(name, patient, now, loinc, windows=windows))
            checkpoints.append(Checkpoint(name=name, kind="order", writes=[name]))
            cited.append(name)
        else:
            checkpoints.append(Checkpoint(name=name, kind="no_order", forbidden=[no_lab_order(name, loinc)]))
    otc_facts = [fact_text("NSAID without an order named", "medications", [facts.otc_nsaid])] if facts.otc_nsaid else []
    checkpoints.append(
        Checkpoint(
            name="NSAID without an order",
            kind="fact",
            answer_fields=["otc_nsaid"],
            note="structured note" if otc_facts else None,
            note_facts=otc_facts,
        )
    )
    results = [
        fact_number("eGFR value", "results", latest.value, 0.5),
        fact_date("eGFR date", "results", latest.when),
        fact_reference("eGFR cited", "results", latest.refs),
    ]
    if facts.egfr_invalid:
        results.append(fact_no_reference("no erroneous eGFR cited", "results", facts.egfr_invalid))
    if cited:
        results.append(fact_written("changes cited", "plan", cited))
    checkpoints.append(note_checkpoint("note: kidney function and changes", results))
    checkpoints += chart_summary(record, now, stopped=[ref for ref, _ in decision.stop])
    checkpoints.append(Checkpoint(name="no other writes", kind="safety", no_other_writes=True))
    stopped = [display for _, display in decision.stop]
    answer = record_answer(
        egfr=number_field(
            latest.value, "mL/min/{1.73_m2}", 0.5, {"mL/min/1.73m2": 1.0, "mL/min/1.73 m2": 1.0, "mL/min": 1.0}
        ),
        egfr_date=date_field(latest.when),
        stopped=names_field(stopped, "medication"),
        otc_nsaid=choice_field(facts.otc_nsaid or "none") if facts.otc_nsaid else names_field([]),
    )
    branch = "act" if (decision.stop or decision.repeat_panel or decision.order_uacr) else "no-action"  # stops, labs
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch=branch,
        variant="egfr-below-60" if latest.value < NSAID_LIMIT else "egfr-60-or-more",
        provenance=list(latest.refs),
        meta={
            "egfr": round(latest.value, 2),
            "noise": noise,
            "otc_nsaid": facts.otc_nsaid,
            "decision": {
                "stop": [r for r, _ in decision.stop],
                "repeat_panel": decision.repeat_panel,
                "uacr": decision.order_uacr,
            },
        },
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    await tools.call("search_conditions", patient=patient, status="active")
    egfr, rows = await lab_readings(tools, patient, EGFR, "egfr")
    uacr, _ = await lab_readings(tools, patient, UACR, since="-2y")
    await tools.call("search_observations", patient=patient, code="38483-4", latest=3)
    meds = await medication_rows(tools, patient, status="current")
    nsaids = value_set("nsaids").codes
    notes = await note_rows(tools, patient, since="-1y")
    otc = None
    for note in notes:
        text = (note["text"] or "").lower()
        if "over the counter" in text:
            otc = next((drug for drug in OTC_DRUGS if drug in text), otc)
    return Facts(
        egfr=tuple(egfr),
        egfr_invalid=tuple(invalid_refs(rows)),
        uacr_last=uacr[-1].when if uacr else None,
        nsaids=tuple((r["ref"], r["display"]) for r in meds if r["code"] in nsaids),
        renal_drugs=tuple((r["ref"], r["display"]) for r in meds if r["code"] in (*METFORMIN, *NITROFURANTOIN)),
        otc_nsaid=otc,
    )


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    latest = facts.egfr[-1]
    actions: list[Action] = []
    alternatives: list[Action] = []
    for ref, display in (*facts.nsaids, *facts.renal_drugs):
        action = Action(
            f"stop {ref}",
            "discontinue_medication",
            medication_request=ref,
            reason=f"eGFR {latest.value:.0f} mL/min/1.73m2 (renal dosing protocol)",
        )
        (actions if (ref, display) in decision.stop else alternatives).append(action)
    for key, wanted, loinc in (
        ("repeat metabolic panel", decision.repeat_panel, BMP),
        ("UACR order", decision.order_uacr, UACR),
    ):
        action = Action(
            key,
            "order_service",
            patient=patient,
            code=loinc,
            kind="lab",
            reason=f"eGFR {latest.value:.0f} on {latest.when.date()}",
        )
        (actions if wanted else alternatives).append(action)
    a_year = (parse_instant(sc.now) + timedelta(days=365)).replace(hour=9, minute=0, second=0).isoformat()
    annual = Action(
        "annual metabolic panel",
        "order_service",
        patient=patient,
        code=BMP,
        kind="lab",
        occurrence=a_year,
        reason="kidney function check in a year while on an NSAID",
    )
    (actions if decision.annual_panel else alternatives).append(annual)
    stopped = [display for _, display in decision.stop]
    meds = f"Stopped: {'; '.join(stopped)} (eGFR {latest.value:.0f}). " if stopped else "No order changes needed. "
    if facts.otc_nsaid:
        meds += f"Takes {facts.otc_nsaid} over the counter without an order: advised to stop it."
    note = NoteDraft("progress_note", "Renal medication safety review")
    note.add("results", f"eGFR {latest.value:.0f} mL/min/1.73m2 on {latest.when.date()}.", entries=list(latest.refs))
    keys = [a.key for a in actions]
    note.add("plan", f"Changes: {len(keys)} ({', '.join(keys) or 'none'}).", cite=keys)
    summary.add_to(note, stopped=[ref for ref, _ in decision.stop], medications_text=meds)
    answer = {
        "egfr": round(latest.value),
        "egfr_date": latest.when.date().isoformat(),
        "stopped": stopped,
        "otc_nsaid": facts.otc_nsaid or "none",
    }
    return Plan(actions, note, answer, alternatives)


DECLARATION = declare(
    CATEGORY,
    order=2,
    description="Renal medication safety review: the latest valid eGFR against a written dosing table.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
    balance=balance,
)
