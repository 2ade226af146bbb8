"""Blood-pressure work-up (v3): record today's reading, then decide on the mean of the recent readings in the chart.

The task states today's reading and a window (the 90 days before now). Protocol: the mean systolic and the mean
diastolic of every reading in the window, today's included; if the mean systolic is 140 mmHg or more *or* the mean
diastolic 90 mmHg or more (stage 2 range), order a basic metabolic panel (LOINC 51990-0). Readings older than the
window do not count (Synthea's yearly readings lie outside it).

The window always holds at least one of the chart's own readings (``now`` is 3-60 days after a real one) and the
setup adds one or two recent readings inside it and one just outside. Values are drawn so that the means lie near
the thresholds (the deciding mean within 8 mmHg of its threshold, never within 0.5), the diastolic decides some
items, and, per patient, today's reading alone points the wrong way in half of the items (``meta.stated_agrees``)
and the setup's readings with today's point the wrong way in about half (``meta.setup_agrees``): neither the stated
number nor the setup decides. Answer: JSON with the number of readings and both means.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from statistics import mean

from medagent.scenarios.agentic.common import EFFECTIVE_PATHS, around, quantity, service_order
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import every_row
from medagent.scenarios.clock import whole_years_between
from medagent.scenarios.codes import BP_PANEL_CODES, DIASTOLIC, LOINC, OBSERVATION_CATEGORY, SYSTOLIC
from medagent.scenarios.hard.common import FUTURE_NOTE, HardBuilder
from medagent.scenarios.models import CodingSpec, FieldRule, Scenario, WriteSpec
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, refs, rows_of
from medagent.scenarios.v3.common import balanced, builder, json_format, number, record
from medagent.scenarios.v3.fixtures import blood_pressure

NAME = "bp_workup_workflow"
BMP = ("51990-0", "Basic metabolic panel - Blood")
WINDOW = timedelta(days=90)
SYSTOLIC_LIMIT, DIASTOLIC_LIMIT = 140.0, 90.0
NEAR = 8.0  # the deciding mean lies within this many mmHg of its threshold
ROUNDING = 0.5  # and never within half a mmHg of it (the answer is rounded)
EDGE = timedelta(days=2)  # no reading within 2 days of the window's start
TRIES = 1200

PHRASINGS = [
    "Blood pressure of the patient with MRN {mrn}, just measured: {sys}/{dia} mmHg. Record it, then apply the "
    "work-up rule below.",
    "I measured {sys}/{dia} mmHg for the patient with MRN {mrn} a moment ago. Please chart it and follow the "
    "hypertension work-up protocol.",
    "Record today's blood pressure for the patient with MRN {mrn}, {sys}/{dia} mmHg, and then decide on the "
    "metabolic panel as the protocol says.",
    "New reading for the patient with MRN {mrn}: {sys}/{dia} mmHg. Enter it in the chart and run the blood "
    "pressure work-up rule.",
    "The patient with MRN {mrn} has a blood pressure of {sys}/{dia} mmHg at this visit. File the reading, then "
    "check whether the work-up panel is needed.",
    "Please document {sys}/{dia} mmHg (measured now) for the patient with MRN {mrn} and act on the recent-readings "
    "rule below.",
]
CONTEXT = (
    f"Record the reading as an Observation with status final, category vital-signs ({OBSERVATION_CATEGORY}), "
    f"LOINC 85354-9 (blood pressure panel), effective now, with components systolic (LOINC {SYSTOLIC}) and "
    f"diastolic (LOINC {DIASTOLIC}) in mm[Hg]. Rule: take every blood pressure reading dated within the 90 days "
    "before now, the new one included, and compute the mean systolic and the mean diastolic. If the mean systolic "
    f"is {SYSTOLIC_LIMIT:.0f} mmHg or more, or the mean diastolic is {DIASTOLIC_LIMIT:.0f} mmHg or more, order a basic "
    f"metabolic panel (ServiceRequest, LOINC {BMP[0]}, intent order, status active, authored now); otherwise order "
    f"nothing else. Older readings do not count. {FUTURE_NOTE}"
)
ANSWER_FORMAT = json_format(
    [
        ("readings", "how many readings the means cover, the new one included"),
        ("mean_systolic", "in mmHg, rounded to the nearest whole number"),
        ("mean_diastolic", "in mmHg, rounded to the nearest whole number"),
    ],
    lead="After the writes, answer as JSON",
)


def decides(systolic: list[float], diastolic: list[float]) -> bool:
    return mean(systolic) >= SYSTOLIC_LIMIT or mean(diastolic) >= DIASTOLIC_LIMIT


def _near(systolic: list[float], diastolic: list[float], act: bool) -> bool:
    """The deciding mean (act: the one at or over its threshold; no-action: the closer one) is near, not on it."""
    gaps = [mean(systolic) - SYSTOLIC_LIMIT, mean(diastolic) - DIASTOLIC_LIMIT]
    if any(abs(g) < ROUNDING for g in gaps):
        return False
    deciding = max(gaps)
    return (0 < deciding <= NEAR) if act else (-NEAR <= deciding < 0)


def _readings(b: HardBuilder) -> list[tuple[datetime, float, float, str]]:
    """The chart's blood pressures (moment, systolic, diastolic, Observation id), one per panel."""
    dia = {(f.id, f.when): f.value for f in b.chart.values(DIASTOLIC)}
    return [(f.when, f.value, dia[(f.id, f.when)], f.id) for f in b.chart.values(SYSTOLIC) if (f.id, f.when) in dia]


def generate(given: ChartInput) -> list[Scenario]:
    b = builder(given)
    rng = b.rng(NAME)
    real = _readings(b)
    end = b.clock(b.end - timedelta(hours=1))
    anchors = [
        r
        for r in real
        if whole_years_between(b.chart.birth_date, r[0].date()) >= 18
        and r[0] + timedelta(days=3) <= end
        and (b.chart.deceased is None or r[0] + timedelta(days=61) < b.chart.deceased)
    ]
    if not anchors:
        return []
    out: list[Scenario] = []
    plan = [
        (branch, stated, setup)
        for branch in ("act", "no-action")
        for stated in (True, False)
        for setup in (True, False)
    ]
    for number_, (branch, stated_agrees, setup_agrees) in enumerate(plan):
        # act while the setup and today's reading point to no-action needs a high reading of the chart's own
        scarce = branch == "act" and not setup_agrees
        pool = [r for r in anchors if r[1] >= SYSTOLIC_LIMIT or r[2] >= DIASTOLIC_LIMIT] if scarce else anchors[-12:]
        made_here = 0
        for attempt in range(12 if scarce else 6):  # another anchor when no values fit this one
            if not pool or made_here >= (3 if scarce else 1):
                break
            anchor = rng.choice(pool)
            now = b.clock(anchor[0] + timedelta(days=rng.randint(3, 60), hours=rng.randint(1, 9)))
            if now > end:
                continue
            made = _item(b, rng, real, now, branch, stated_agrees, setup_agrees, number_ * 100 + attempt)
            if made is not None and all(m.now != made.now for m in out):
                out.append(made)
                made_here += 1
    return out


def select(items: list[Scenario], seed: int) -> list[Scenario]:
    """Per split, the same number of items for every (branch, stated reading agrees, setup agrees)."""
    return balanced(items, seed, NAME, lambda s: f"{s.branch}/{s.meta['stated_agrees']}/{s.meta['setup_agrees']}")


def _item(
    b: HardBuilder,
    rng: random.Random,
    real: list[tuple[datetime, float, float, str]],
    now: datetime,
    branch: str,
    stated_agrees: bool,
    setup_agrees: bool,
    number_: int,
) -> Scenario | None:
    start = now - WINDOW
    inside = [r for r in real if start <= r[0] <= now]
    if (
        not inside
        or any(abs(r[0] - start) < EDGE for r in real)
        or len({r[0] for r in inside}) != len(inside)
        or any(now - timedelta(days=1) < r[0] <= now for r in real)
    ):
        return None  # a reading at the window's edge, two at one moment, or one today besides the stated one
    act = branch == "act"
    for _ in range(TRIES):
        extra = [
            (
                now - timedelta(days=rng.uniform(1, 80), hours=rng.uniform(0, 12)),
                float(rng.randint(112, 176)),
                float(rng.randint(62, 108)),
            )
            for _ in range(rng.choice([0, 1, 2, 2]))
        ]
        if any(d >= s - 25 for _, s, d in extra):
            continue
        new = (float(rng.randint(108, 186)), float(rng.randint(60, 114)))
        if new[1] >= new[0] - 25:
            continue
        systolic = [r[1] for r in inside] + [s for _, s, _ in extra] + [new[0]]
        diastolic = [r[2] for r in inside] + [d for _, _, d in extra] + [new[1]]
        if decides(systolic, diastolic) != act or not _near(systolic, diastolic, act):
            continue
        if (new[0] >= SYSTOLIC_LIMIT or new[1] >= DIASTOLIC_LIMIT) != (act if stated_agrees else not act):
            continue
        setup_only = decides([s for _, s, _ in extra] + [new[0]], [d for _, _, d in extra] + [new[1]])
        if setup_only != (act if setup_agrees else not act):
            continue
        return _scenario(
            b, rng, now, branch, inside, extra, new, systolic, diastolic, number_, stated_agrees, setup_agrees
        )
    return None


def _scenario(
    b: HardBuilder,
    rng: random.Random,
    now: datetime,
    branch: str,
    inside: list[tuple[datetime, float, float, str]],
    extra: list[tuple[datetime, float, float]],
    new: tuple[float, float],
    systolic: list[float],
    diastolic: list[float],
    number_: int,
    stated_agrees: bool,
    setup_agrees: bool,
) -> Scenario:
    key = (branch, number_, now.isoformat())
    sid = b.id_for("agentic", NAME, *key)
    patient = b.chart.patient_id
    outside = now - WINDOW - timedelta(days=rng.randint(4, 60))  # a distractor just before the window
    setup = [blood_pressure(sid, i, patient, s, d, when) for i, (when, s, d) in enumerate(extra)]
    setup.append(
        blood_pressure(sid, len(extra), patient, float(rng.randint(120, 185)), float(rng.randint(70, 112)), outside)
    )
    record_bp = WriteSpec(
        name="blood pressure observation",
        resource_type="Observation",
        target=None,
        subject=b.chart.reference,
        code_path="code.coding",
        codes=[CodingSpec(system=LOINC, code=c) for c in BP_PANEL_CODES],
        status=["final"],
        fields=[FieldRule(name="vital-signs category", path="category.coding.code", any_of=["vital-signs"])],
        quantities=[
            quantity(
                name, f"component[code.coding.code={code}].valueQuantity", value, "mm[Hg]", {"mmHg": 1.0, "mm Hg": 1.0}
            )
            for name, code, value in (("systolic", SYSTOLIC, new[0]), ("diastolic", DIASTOLIC, new[1]))
        ],
        windows=[around(now, "effective now", EFFECTIVE_PATHS)],
    )
    writes = [record_bp]
    if branch == "act":
        writes.append(service_order("basic metabolic panel", patient, now, [CodingSpec(system=LOINC, code=BMP[0])]))
    answer = record(
        readings=number(float(len(systolic)), None, 0.0),
        mean_systolic=number(mean(systolic), "mm[Hg]", 0.5, {"mmHg": 1.0}),
        mean_diastolic=number(mean(diastolic), "mm[Hg]", 0.5, {"mmHg": 1.0}),
    )
    index, template = b.phrasing(NAME, key, PHRASINGS)
    instruction = template.format(mrn=b.chart.mrn, sys=f"{new[0]:.0f}", dia=f"{new[1]:.0f}")
    return b.agentic(
        NAME,
        key,
        now=now,
        instruction=instruction,
        context=CONTEXT,
        answer_format=ANSWER_FORMAT,
        answer=answer,
        phrasing=index,
        writes=writes,
        branch=branch,
        setup=setup,
        provenance=[*(f"Observation/{r[3]}" for r in inside), *(f"Observation/{r['id']}" for r in setup[:-1])],
        meta={
            "systolic": new[0],
            "diastolic": new[1],
            "stated_agrees": stated_agrees,
            "setup_agrees": setup_agrees,
            "window_days": WINDOW.days,
        },
    )


# ---------- the oracle ----------


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The readings of the window (both components), today's added; record it, order when a mean reaches its limit."""
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    since = (tools.now - timedelta(days=int(sc.meta["window_days"]))).isoformat()
    rows = {
        code: rows_of(await every_row(tools, "search_observations", patient=patient, code=code, since=since), code)
        for code in (SYSTOLIC, DIASTOLIC)
    }
    systolic = [numeric(r) for r in rows[SYSTOLIC]] + [float(sc.meta["systolic"])]
    diastolic = [numeric(r) for r in rows[DIASTOLIC]] + [float(sc.meta["diastolic"])]
    if len(systolic) != len(diastolic):
        raise ToolGap(f"{len(systolic)} systolic but {len(diastolic)} diastolic readings in the window")
    await tools.call(
        "record_vital_sign",
        patient=patient,
        vital="blood_pressure",
        systolic=sc.meta["systolic"],
        diastolic=sc.meta["diastolic"],
        reason="blood pressure measured at the visit",
    )
    if decides(systolic, diastolic) or tools.act_on_every_branch:
        await tools.call(
            "order_service",
            patient=patient,
            code=BMP[0],
            system="loinc",
            kind="lab",
            reason=f"mean blood pressure {mean(systolic):.0f}/{mean(diastolic):.0f} mmHg over {len(systolic)} readings",
        )
    answer = {
        "readings": len(systolic),
        "mean_systolic": round(mean(systolic)),
        "mean_diastolic": round(mean(diastolic)),
    }
    return OracleAnswer(json.dumps(answer), refs(rows[SYSTOLIC]))


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="hard",
        order=70,
        since=3,
        generate=generate,
        select=select,
        solve=solve,
        conditional=True,
        phrasings={NAME: PHRASINGS},
        description="Record today's blood pressure, then order a metabolic panel when the mean systolic or diastolic of "
        "the chart's readings in the last 90 days (today's included) is in the stage 2 range.",
    )
)
