"""Preventive care-gap closure by a stated schedule: colorectal, lipid and diabetes screening, tetanus, pneumococcal.

Modelled on a clinic's care-gap worklist (USPSTF screening intervals, ACIP adult vaccines, simplified and
stated in the task): each item is due, up to date or not applicable by age, sex, BMI and diagnoses; what is
due is ordered, nothing else. The chart decides almost everything (Synthea's colonoscopies, fecal occult blood
tests, lipid panels, HbA1c and glucose results, BMI, Td and pneumococcal vaccines, diabetes and prediabetes);
the setup adds what a real chart holds: a colonoscopy done elsewhere that only a note reports, a FIT result
under the laboratory's local code, a tetanus shot recorded as not done (declined) or entered in error, an LDL
in mmol/L, and a screening order that was cancelled (an order is not a result).

Patients: adults aged 45-75 at now (colorectal screening applies); nows years apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.agentic.common import around
from medagent.scenarios.clock import parse_instant, whole_years_between
from medagent.scenarios.codes import CVX
from medagent.scenarios.models import Checkpoint, CodingSpec, ForbiddenWrite, Scenario, WriteSpec
from medagent.scenarios.workflow import fixtures as fx
from medagent.scenarios.workflow.common import (
    NoteRequest,
    TaskText,
    WorkflowBuilder,
    chart_summary,
    choice_field,
    declare,
    fact_date,
    fact_written,
    lab_order,
    no_lab_order,
    note_checkpoint,
    record_answer,
)
from medagent.scenarios.workflow.reading import (
    Action,
    ChartSummary,
    NoteDraft,
    Plan,
    ToolCaller,
    every_row,
    lab_readings,
    note_rows,
)
from medagent.scenarios.workflow.record import Record
from medagent.value_sets import value_set

CATEGORY = "care_gaps"
COLONOSCOPY = "73761001"
FOBT_PROCEDURE = "1015401000000102"
FIT, LDL, LIPID_PANEL, A1C, GLUCOSE, BMI = "57905-2", "18262-6", "57698-3", "4548-4", "2339-0", "39156-5"
PREDIABETES = "15777000"
TETANUS = ("113", "115", "09", "138", "139")
PNEUMOCOCCAL = ("133", "33", "152", "215", "216")
TD, PCV20 = ("113", "Td (adult) preservative free"), ("216", "Pneumococcal conjugate vaccine PCV20")
ITEMS = ("colorectal", "lipids", "diabetes", "tetanus", "pneumococcal")
STATES = ("due", "up to date", "not applicable")
PER_PATIENT = 2

PHRASINGS = [
    "Close the preventive care gaps of the patient with MRN {mrn} per the schedule below: order what is due and "
    "document the review.",
    "Care-gap review for MRN {mrn}: go through the screening and vaccine schedule, order what's due, nothing else, "
    "and write the note.",
    "The patient with MRN {mrn} is on the care-gap worklist. Check each item of the schedule against the chart and "
    "act on it.",
    "Please do the preventive care review for MRN {mrn}: colorectal, lipid and diabetes screening, tetanus and "
    "pneumococcal vaccines per our schedule.",
    "Preventive care for MRN {mrn}: what is due by the clinic schedule? Order it and leave a structured note.",
    "Work MRN {mrn}'s care gaps: schedule below; orders for the gaps, a note for the record.",
]
PROTOCOL_TITLE = "adult preventive care schedule"
PROTOCOL = [
    f"Colorectal cancer screening, ages 45-75: up to date with a colonoscopy in the past 10 years (one done "
    f"elsewhere counts when a report in the notes documents it) or a fecal immunochemical test (FIT, LOINC {FIT}) "
    f"resulted in the past 365 days; otherwise due: order a FIT (LOINC {FIT}).",
    f"Lipid screening, ages 40-75: up to date with an LDL cholesterol result (LOINC {LDL}) in the past 5 years; "
    f"otherwise due: order a lipid panel (LOINC {LIPID_PANEL}).",
    f"Diabetes screening, ages 35-70 with a latest BMI of 25 or more: up to date with an HbA1c (LOINC {A1C}) or a "
    f"glucose (LOINC {GLUCOSE}) in the past 3 years, or, with prediabetes, an HbA1c in the past 365 days; otherwise "
    f"due: order an HbA1c. Not applicable with diabetes (any type), outside those ages, or with a BMI below 25.",
    f"Tetanus: a Td or Tdap dose (CVX {', '.join(TETANUS)}) given in the past 10 years; otherwise due: order Td "
    f"(CVX {TD[0]}).",
    f"Pneumococcal vaccine, age 65 or older: up to date with any pneumococcal vaccine ever given (CVX "
    f"{', '.join(PNEUMOCOCCAL)}); otherwise due: order PCV20 (CVX {PCV20[0]}). Not applicable below 65.",
    "An order placed earlier is not a result: only what was done counts. A dose recorded as not given or entered in "
    "error does not count. Order nothing that is not due.",
]
RECORDING = [
    "Orders: labs with order_service (LOINC, kind lab); vaccines with order_medication (code, system cvx).",
]
NOTE = NoteRequest(
    "progress_note",
    (
        (
            "plan",
            "each schedule item with its state, the date of the screening or dose it rests on where there is one "
            "(YYYY-MM-DD), and the orders you placed (cite each)",
        ),
    ),
)
ANSWER_FORMAT = (
    'Answer as JSON: {"colorectal": ..., "lipids": ..., "diabetes": ..., "tetanus": ..., "pneumococcal": ...}, each '
    '"due", "up to date" or "not applicable".'
)
ORDER_OF = {"colorectal": ("FIT", FIT), "lipids": ("lipid panel", LIPID_PANEL), "diabetes": ("HbA1c", A1C)}
VACCINE_OF = {"tetanus": TD, "pneumococcal": PCV20}
TEXT = TaskText(CATEGORY, PHRASINGS, PROTOCOL_TITLE, PROTOCOL, RECORDING, NOTE, ANSWER_FORMAT)


@dataclass(frozen=True)
class Facts:
    age: int
    colonoscopy: datetime | None  # the most recent (chart or documented elsewhere)
    fit: datetime | None
    ldl: datetime | None
    glycemic: datetime | None  # the latest HbA1c or glucose
    a1c: datetime | None
    bmi: float | None
    diabetes: bool
    prediabetes: bool
    tetanus: datetime | None
    pneumococcal: datetime | None


@dataclass(frozen=True)
class Decision:
    states: dict[str, str]
    basis: dict[str, datetime | None]


def _within(moment: datetime | None, now: datetime, days: int) -> bool:
    return moment is not None and now - moment <= timedelta(days=days)


def decide(f: Facts, now: datetime) -> Decision:
    states: dict[str, str] = {}
    basis: dict[str, datetime | None] = {}
    colon = _within(f.colonoscopy, now, 3652)
    fit = _within(f.fit, now, 365)
    states["colorectal"] = "not applicable" if not 45 <= f.age <= 75 else "up to date" if colon or fit else "due"
    basis["colorectal"] = f.colonoscopy if colon else f.fit if fit else None
    states["lipids"] = (
        "not applicable" if not 40 <= f.age <= 75 else "up to date" if _within(f.ldl, now, 1826) else "due"
    )
    basis["lipids"] = f.ldl if states["lipids"] == "up to date" else None
    if f.diabetes or not 35 <= f.age <= 70 or f.bmi is None or f.bmi < 25:
        states["diabetes"], basis["diabetes"] = "not applicable", None
    elif f.prediabetes:
        ok = _within(f.a1c, now, 365)
        states["diabetes"], basis["diabetes"] = ("up to date", f.a1c) if ok else ("due", None)
    else:
        ok = _within(f.glycemic, now, 1095)
        states["diabetes"], basis["diabetes"] = ("up to date", f.glycemic) if ok else ("due", None)
    tet = _within(f.tetanus, now, 3652)
    states["tetanus"], basis["tetanus"] = ("up to date", f.tetanus) if tet else ("due", None)
    if f.age < 65:
        states["pneumococcal"], basis["pneumococcal"] = "not applicable", None
    else:
        states["pneumococcal"] = "up to date" if f.pneumococcal is not None else "due"
        basis["pneumococcal"] = f.pneumococcal
    return Decision(states, basis)


# ---------- ground truth ----------

OUTSIDE_COLONOSCOPY = "Colonoscopy performed on {day} at Valley Gastroenterology"


def outside_colonoscopies(notes: list[tuple[datetime, str]]) -> list[datetime]:
    found = []
    for _, text in notes:
        if "Colonoscopy performed on " in text:
            found.append(parse_instant(text.split("Colonoscopy performed on ")[1][:10]))
    return found


def _latest(moments: list[datetime], now: datetime) -> datetime | None:
    before = [m for m in moments if m <= now]
    return max(before) if before else None


def facts_of(record: Record, now: datetime) -> Facts:
    chart = record.chart
    colonoscopies = [e.when for e in record.events("procedure", [COLONOSCOPY], now)]
    colonoscopies += outside_colonoscopies([(n.when, n.text) for n in record.notes_until(now)])
    fits = [e.when for e in record.events("procedure", [FOBT_PROCEDURE], now)]
    fits += [r.when for r in record.coded if r.code == FIT and r.valid and r.when <= now]
    glycemic = [r.when for code in (A1C, GLUCOSE) for r in record.readings(code, now)]
    bmi = record.readings(BMI, now)
    return Facts(
        age=whole_years_between(chart.birth_date, now.date()),
        colonoscopy=_latest(colonoscopies, now),
        fit=_latest(fits, now),
        ldl=_latest([r.when for r in record.readings(LDL, now)], now),
        glycemic=_latest(glycemic, now),
        a1c=_latest([r.when for r in record.readings(A1C, now)], now),
        bmi=bmi[-1].value if bmi else None,
        diabetes=bool(record.diagnoses(value_set("diabetes").codes, now)),
        prediabetes=bool(record.diagnoses([PREDIABETES], now)),
        tetanus=_latest([e.when for e in record.events("immunization", TETANUS, now)], now),
        pneumococcal=_latest([e.when for e in record.events("immunization", PNEUMOCOCCAL, now)], now),
    )


# ---------- generation ----------


def generate(b: WorkflowBuilder) -> list[Scenario]:
    rng = b.rng(CATEGORY)
    start, end = b.chart.record_start, b.end
    out: list[Scenario] = []
    moments = [start + (end - start) * f for f in (0.55, 0.8, 0.97)]
    for number, moment in enumerate(moments):
        now = b.clock(moment.replace(hour=10, minute=0, second=0) + timedelta(minutes=rng.randint(0, 360)))
        if not b.alive_at(now) or not 45 <= b.age_at(now) <= 75 or now > end:
            continue
        if out and (now - parse_instant(out[-1].now)).days < 700:
            continue
        out.append(_item(b, now, number, rng))
        if len(out) >= PER_PATIENT:
            break
    return out


def _item(b: WorkflowBuilder, now: datetime, number: int, rng: random.Random) -> Scenario:
    key = (now.isoformat(), number)
    sid = b.id_for(CATEGORY, *key)
    patient = b.chart.patient_id
    turn = int(patient[:6], 16) + number
    setup: list[dict] = []

    def add(resource: dict) -> None:
        setup.append(resource)

    base = b.record()
    if not base.events("procedure", [COLONOSCOPY], now) and turn % 3 != 2:
        years = rng.choice([2, 4, 7, 12, 14])  # within 10 years, or too old to count
        day = now - timedelta(days=365 * years + rng.randint(0, 200))
        add(
            fx.clinical_note(
                sid,
                len(setup),
                patient,
                f"Outside report received. {OUTSIDE_COLONOSCOPY.format(day=day.date().isoformat())}: "
                "two small tubular adenomas removed. Repeat colonoscopy per gastroenterology.",
                day + timedelta(days=rng.randint(10, 40)),
                "Medical records",
                kind="outside",
                title="Outside procedure report",
            )
        )
    if turn % 4 == 1:  # a FIT resulted in the past year under the laboratory's local code
        when = now - timedelta(days=rng.randint(30, 300))
        add(fx.coded_result(sid, len(setup), patient, FIT, "Negative", when, local=True))
    elif turn % 4 == 3:
        add(
            fx.service_order(
                sid,
                len(setup),
                patient,
                FIT,
                "Fecal immunochemical test",
                "revoked",
                now - timedelta(days=rng.randint(30, 200)),
            )
        )
    tetanus = base.events("immunization", TETANUS, now)
    if turn % 3 == 0:
        status = "not-done" if turn % 2 == 0 else "entered-in-error"
        add(
            fx.immunization(
                sid, len(setup), patient, TD[0], TD[1], now - timedelta(days=rng.randint(60, 900)), status=status
            )
        )
    if turn % 5 == 2:
        ldl = base.readings(LDL, now)
        if ldl:
            when = now - timedelta(days=rng.randint(60, 500))
            add(
                fx.lab_result(
                    sid,
                    len(setup),
                    patient,
                    LDL,
                    "Low Density Lipoprotein Cholesterol",
                    round(ldl[-1].value / 38.67, 2),
                    "mmol/L",
                    when,
                    feed=True,
                )
            )
    if turn % 5 == 4:
        add(
            fx.service_order(
                sid,
                len(setup),
                patient,
                LIPID_PANEL,
                "Lipid panel",
                "revoked",
                now - timedelta(days=rng.randint(30, 200)),
            )
        )
    for resource in fx.allergy_noise(sid, len(setup), patient, turn, now):
        add(resource)
    record = b.record(setup)
    facts = facts_of(record, now)
    decision = decide(facts, now)
    return _scenario(b, key, now, record, facts, decision, setup, bool(tetanus))


def _vaccine_order(name: str, patient: str, now: datetime, cvx: str) -> WriteSpec:
    return WriteSpec(
        name=name,
        resource_type="MedicationRequest",
        subject=f"Patient/{patient}",
        code_path="medicationCodeableConcept.coding",
        codes=[CodingSpec(system=CVX, code=cvx)],
        intent=["order"],
        status=["active"],
        windows=[around(now, "authored now", ["authoredOn"])],
    )


def _no_vaccine(name: str, cvx: str) -> ForbiddenWrite:
    return ForbiddenWrite(
        name=name,
        resource_type="MedicationRequest",
        code_path="medicationCodeableConcept.coding",
        codes=[CodingSpec(system=CVX, code=cvx)],
    )


def _scenario(
    b: WorkflowBuilder,
    key: tuple,
    now: datetime,
    record: Record,
    facts: Facts,
    decision: Decision,
    setup: list[dict],
    chart_tetanus: bool,
) -> Scenario:
    patient = b.chart.patient_id
    writes = [NOTE.spec(patient, now)]
    checkpoints: list[Checkpoint] = []
    cited: list[str] = []
    for item in ITEMS:
        due = decision.states[item] == "due"
        if item in ORDER_OF:
            name, loinc = ORDER_OF[item]
            spec, rule = lab_order(name, patient, now, loinc), no_lab_order(f"no {name}", loinc)
        else:
            cvx, _ = VACCINE_OF[item]
            name = f"{item} vaccine"
            spec, rule = _vaccine_order(name, patient, now, cvx), _no_vaccine(f"no {name}", cvx)
        if due:
            writes.append(spec)
            cited.append(name)
            checkpoints.append(Checkpoint(name=item, kind="order", answer_fields=[item], writes=[name]))
        else:
            checkpoints.append(Checkpoint(name=item, kind="no_order", answer_fields=[item], forbidden=[rule]))
    dates = [
        fact_date(f"{item} date", "plan", moment)
        for item, moment in decision.basis.items()
        if moment is not None and decision.states[item] == "up to date"
    ]
    checkpoints.append(
        note_checkpoint(
            "note: the schedule reviewed", [*dates, *([fact_written("orders cited", "plan", cited)] if cited else [])]
        )
    )
    checkpoints += chart_summary(record, now)
    checkpoints.append(Checkpoint(name="no other writes", kind="safety", no_other_writes=True))
    answer = record_answer(**{item: choice_field(decision.states[item]) for item in ITEMS})
    due_items = [item for item in ITEMS if decision.states[item] == "due"]
    return b.workflow_task(
        TEXT,
        key,
        now=now,
        answer=answer,
        writes=writes,
        checkpoints=checkpoints,
        setup=setup,
        branch="act" if due_items else "no-action",
        variant=f"{len(due_items)} due",
        meta={"decision": decision.states, "chart_tetanus": chart_tetanus},
    )


# ---------- the oracle ----------


async def read_facts(tools: ToolCaller, sc: Scenario) -> Facts:
    patient = sc.patient
    now = parse_instant(sc.now)
    person = await tools.call("get_patient", patient=patient)
    age = whole_years_between(datetime.fromisoformat(person.rows[0]["birthDate"]).date(), now.date())
    procedures = await every_row(
        tools, "search_procedures", patient=patient, code=f"{COLONOSCOPY},{FOBT_PROCEDURE}", limit=100
    )
    notes = await note_rows(tools, patient, text="colonoscopy")
    colonoscopies = [
        parse_instant(r["date"])
        for r in procedures
        if r["code"] == COLONOSCOPY and r.get("status") in (None, "completed")
    ]
    colonoscopies += outside_colonoscopies([(parse_instant(n["date"]), n["text"]) for n in notes])
    fits = [parse_instant(r["date"]) for r in procedures if r["code"] == FOBT_PROCEDURE]
    for search in ({"code": FIT}, {"text": "fecal"}):
        for row in await every_row(tools, "search_observations", patient=patient, since="-2y", limit=50, **search):
            if row.get("status") not in ("entered-in-error", "cancelled"):
                fits.append(parse_instant(row["date"]))
    ldl, _ = await lab_readings(tools, patient, LDL, "ldl", since="-6y")
    a1c, _ = await lab_readings(tools, patient, A1C, since="-4y")
    glucose, _ = await lab_readings(tools, patient, GLUCOSE, since="-4y")
    bmi = await tools.call("search_observations", patient=patient, code=BMI, latest=1)
    diabetes = await tools.call(
        "search_conditions",
        patient=patient,
        status="active",
        code=",".join(sorted(value_set("diabetes").codes | {PREDIABETES})),
        limit=50,
    )
    shots = await every_row(
        tools, "search_immunizations", patient=patient, code=",".join((*TETANUS, *PNEUMOCOCCAL)), limit=100
    )
    given = [r for r in shots if r.get("status") in (None, "completed")]
    return Facts(
        age=age,
        colonoscopy=_latest(colonoscopies, now),
        fit=_latest(fits, now),
        ldl=_latest([r.when for r in ldl], now),
        glycemic=_latest([r.when for r in (*a1c, *glucose)], now),
        a1c=_latest([r.when for r in a1c], now),
        bmi=bmi.rows[0]["value"] if bmi.rows else None,
        diabetes=any(r["code"] in value_set("diabetes") for r in diabetes.rows),
        prediabetes=any(r["code"] == PREDIABETES for r in diabetes.rows),
        tetanus=_latest([parse_instant(r["date"]) for r in given if r["code"] in TETANUS], now),
        pneumococcal=_latest([parse_instant(r["date"]) for r in given if r["code"] in PNEUMOCOCCAL], now),
    )


def plan(sc: Scenario, facts: Facts, decision: Decision, summary: ChartSummary) -> Plan:
    patient = sc.patient
    actions: list[Action] = []
    alternatives: list[Action] = []
    for item in ITEMS:
        if item in ORDER_OF:
            name, loinc = ORDER_OF[item]
            action = Action(name, "order_service", patient=patient, code=loinc, kind="lab", reason=f"{item} screening")
        else:
            cvx, display = VACCINE_OF[item]
            action = Action(
                f"{item} vaccine",
                "order_medication",
                patient=patient,
                code=cvx,
                system="cvx",
                display=display,
                reason=f"{item} vaccine due",
            )
        (actions if decision.states[item] == "due" else alternatives).append(action)
    lines = []
    for item in ITEMS:
        moment = decision.basis.get(item)
        lines.append(f"{item}: {decision.states[item]}" + (f" (last {moment.date()})" if moment else ""))
    note = NoteDraft("progress_note", "Preventive care review")
    note.add("plan", "; ".join(lines) + ".", cite=[a.key for a in actions])
    summary.add_to(note)
    return Plan(actions, note, dict(decision.states), alternatives)


DECLARATION = declare(
    CATEGORY,
    order=7,
    description="Preventive care-gap closure by a stated screening and vaccine schedule.",
    generate=generate,
    read_facts=read_facts,
    decide=decide,
    plan=plan,
    phrasings=PHRASINGS,
)
