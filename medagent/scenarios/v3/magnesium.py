"""Magnesium replacement (v3): IV magnesium for a low serum magnesium under a written protocol with a renal check.

v2's task decided on the setup's magnesium alone (Synthea charts hold no magnesium, so the setup was the whole
chart: the setup-only shortcut scored 100%). v3 keeps the dosing table and adds the renal check that electrolyte
replacement protocols carry (magnesium is cleared by the kidneys; in renal failure IV replacement risks
hypermagnesemia, so the protocol is not used and the physician decides): the protocol applies only with a serum
creatinine drawn in the 72 hours before now, the most recent of them 2.0 mg/dL or less, and the most recent eGFR of
those 72 hours (if any) 30 mL/min/1.73 m2 or more. The creatinine and eGFR are the chart's own Synthea results; the
setup adds only the magnesium, low in every item and drawn in the last 24 hours, so the setup never decides.

Kinds (``meta.variant``): act ``clear`` (a recent creatinine passes the check); no-action ``renal`` (the recent
creatinine is above 2.0 mg/dL or the recent eGFR below 30) and ``no-creatinine`` (the chart's latest creatinine is
older than 5 days). At most ``PER_KIND`` of each kind per chart; the core sampler takes the branches 1:1 per split.
The answer names the magnesium and the creatinine the check rests on (``"none"`` when there is none).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from medagent.scenarios.agentic.common import FUTURE_NOTE, AgenticBuilder, magnesium_order
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart import Chart, ObservationFact
from medagent.scenarios.chart_reads import RECENT_WINDOW
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.codes import (
    LABS,
    MAGNESIUM,
    MAGNESIUM_DISPLAY,
    MAGNESIUM_INFO,
    MAGNESIUM_THRESHOLD,
    NDC_MAGNESIUM_IV,
    magnesium_dose,
    magnesium_order_arguments,
)
from medagent.scenarios.fixtures import lab_observation
from medagent.scenarios.identity import scenario_id
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import numeric, utc_moment
from medagent.scenarios.v3.common import TAG, json_format, lab_number, none_field, number, record

NAME = "magnesium_replacement"
CREATININE = ("38483-4", "2160-0")
EGFR = "33914-3"
CREATININE_LIMIT = 2.0  # mg/dL: above it the protocol is not used
EGFR_LIMIT = 30.0  # mL/min/1.73 m2: below it the protocol is not used
RENAL_WINDOW = timedelta(hours=72)
RENAL_SINCE = "-72h"  # the tools' relative window for the same 72 hours
STALE = timedelta(days=5)  # a no-creatinine item's latest creatinine is at least this old
EDGE = timedelta(hours=6)  # no creatinine or eGFR within 6 hours of the window's start
CREATININE_MARGIN = 0.05  # no deciding creatinine within 0.05 mg/dL of the limit
EGFR_MARGIN = 1.0  # nor an eGFR within 1 of its limit
PER_KIND = {"clear": 3, "renal": 4, "no-creatinine": 1}
LEVELS = {"severe": (0.6, 0.9), "moderate": (1.1, 1.4), "mild": (1.5, 1.8)}
ANSWER_KEY = "magnesium"

PHRASINGS = [
    "Check the serum magnesium of {patient} from the last 24 hours. If it is low, order IV magnesium replacement "
    "under the replacement protocol below, which also checks kidney function; if the protocol does not apply, "
    "order nothing.",
    "Review the latest serum magnesium of {patient} (last 24 hours) and replace it intravenously per the "
    "electrolyte replacement protocol, including its renal check.",
    "Does {patient} need IV magnesium? Work through the magnesium replacement protocol below against the chart "
    "and order only if it allows it.",
    "For {patient}: a low magnesium was reported in the last 24 hours. Apply the replacement protocol (dose by "
    "level, renal check first) and place the IV magnesium order only if every condition holds.",
    "Magnesium replacement for {patient}: take the newest serum magnesium of the last 24 hours, check renal "
    "function as the protocol requires, and order IV magnesium sulfate by the dosing table if it applies.",
    "Please handle the low magnesium of {patient} by the standing replacement protocol: verify the kidney "
    "function it asks for, then order IV magnesium at the protocol dose, or nothing if the protocol excludes it.",
]
PROTOCOL = (
    f"Magnesium replacement protocol (adults). The LOINC code for serum magnesium is {MAGNESIUM}; low means 1.9 "
    "mg/dL or less (the most recent result of the last 24 hours). Renal check (magnesium is cleared by the kidneys): "
    "the protocol applies only if a serum creatinine (LOINC 38483-4 or 2160-0) was drawn in the 72 hours before now "
    "and the most recent of them is 2.0 mg/dL or less, and the most recent eGFR (LOINC 33914-3) drawn in those 72 "
    "hours, if there is one, is 30 mL/min/1.73 m2 or more. Otherwise order nothing: without a current creatinine, "
    "or with renal impairment, the physician decides. "
    f"Dose: the NDC for IV magnesium sulfate is {NDC_MAGNESIUM_IV}; mild deficiency (1.5 to 1.9 mg/dL): 1 g IV over "
    "1 hour; moderate (1.0 to less than 1.5 mg/dL): 2 g IV over 2 hours; severe (less than 1.0 mg/dL): 4 g IV over "
    "4 hours. Order it as a MedicationRequest (intent order, status active, authored now) with route IV, the dose "
    "as dosageInstruction.doseAndRate.doseQuantity in g and the infusion duration (for example as "
    f"dosageInstruction.timing.repeat.duration in h). {FUTURE_NOTE}"
)
ANSWER_FORMAT = json_format(
    [
        (ANSWER_KEY, "the most recent serum magnesium of the last 24 hours in mg/dL as recorded"),
        (
            "creatinine",
            "the most recent serum creatinine drawn in the 72 hours before now in mg/dL, rounded to 2 decimal "
            'places, or "none" if there is none',
        ),
    ],
    lead="After any order, answer as JSON",
)


@dataclass(frozen=True)
class Renal:
    """The renal check at one moment, from the chart (ground truth)."""

    creatinine: float | None  # the most recent creatinine of the 72 hours before now
    egfr: float | None  # the most recent eGFR of those 72 hours
    kind: str  # clear | renal | no-creatinine
    facts: tuple[str, ...] = ()  # the chart's Observations the check rests on (references)

    @property
    def applies(self) -> bool:
        return self.kind == "clear"


def renal_at(chart: Chart, now: datetime) -> Renal | None:
    """The check at ``now``, or None when a result sits near a limit or near the window's start (not asked)."""
    since = now - RENAL_WINDOW
    creatinine = sorted((f for code in CREATININE for f in chart.values(code) if f.when <= now), key=_order)
    egfr = sorted((f for f in chart.values(EGFR) if f.when <= now), key=_order)
    if any(abs(f.when - since) < EDGE for f in [*creatinine, *egfr]):
        return None
    recent = [f for f in creatinine if f.when > since]
    if not recent:
        if not creatinine or now - creatinine[-1].when < STALE:
            return None  # a chart with no creatinine at all is not asked: the check must have something to date
        return Renal(None, None, "no-creatinine")
    recent_egfr = [f for f in egfr if f.when > since]
    if _tied(recent) or _tied(recent_egfr):
        return None  # two results at the newest moment with different values: "the most recent" is not one value
    value = recent[-1].value
    latest_egfr = recent_egfr[-1].value if recent_egfr else None
    if abs(value - CREATININE_LIMIT) < CREATININE_MARGIN:
        return None
    if latest_egfr is not None and abs(latest_egfr - EGFR_LIMIT) < EGFR_MARGIN:
        return None
    poor = value > CREATININE_LIMIT or (latest_egfr is not None and latest_egfr < EGFR_LIMIT)
    facts = tuple(f"Observation/{f.id}" for f in [recent[-1], *recent_egfr[-1:]])
    return Renal(value, latest_egfr, "renal" if poor else "clear", facts)


def _tied(facts: list[ObservationFact]) -> bool:
    """The newest of these results shares its moment with another of another value."""
    return bool(facts) and len({f.value for f in facts if f.when == facts[-1].when}) > 1


def _order(fact: ObservationFact) -> tuple[datetime, str]:
    return (fact.when, fact.id)


class _Builder(AgenticBuilder):
    def id_for(self, category: str, *key: object) -> str:
        return scenario_id("agentic", category, self.chart.patient_id, *key, tag=TAG)


def _moments(b: AgenticBuilder, rng: random.Random) -> list[datetime]:
    """Twice after each of the chart's creatinine results (3-24 and 30-60 hours), and 1-6 hours after each encounter."""
    creatinine = sorted(f.when for code in CREATININE for f in b.chart.values(code))
    moments = [
        b.clock(t + timedelta(hours=rng.uniform(low, high))) for t in creatinine for low, high in ((3, 24), (30, 60))
    ]
    moments += [b.clock(t + timedelta(hours=rng.uniform(1, 6))) for t in sorted(b.chart.encounter_starts)]
    return sorted({m for m in moments if b.inside(m) and whole_years_between(b.chart.birth_date, day_of(m)) >= 18})


def generate(given: ChartInput) -> list[Scenario]:
    b = _Builder.of(given, PHRASINGS)
    rng = b.rng(NAME, "v3")
    start, _ = b.span
    by_kind: dict[str, list[tuple[datetime, Renal]]] = {kind: [] for kind in PER_KIND}
    for now in _moments(b, rng):
        renal = renal_at(b.chart, now) if now - start >= timedelta(days=3) else None
        if renal is not None:
            by_kind[renal.kind].append((now, renal))
    out = []
    for kind, found in by_kind.items():
        for now, renal in rng.sample(found, min(len(found), PER_KIND[kind])):
            out.append(_item(b, now, renal, b.rng(NAME, "v3", kind, now.isoformat())))
    return out


def _item(b: AgenticBuilder, now: datetime, renal: Renal, rng: random.Random) -> Scenario:
    level = rng.choice(sorted(LEVELS))
    value = round(rng.uniform(*LEVELS[level]), 1)
    when = now - timedelta(hours=rng.uniform(1.5, 20))
    key = ("v3", renal.kind, now.isoformat())
    sid = b.id_for(NAME, *key)
    fixture = lab_observation(sid, 0, b.chart.patient_id, MAGNESIUM, MAGNESIUM_DISPLAY, value, "mg/dL", when)
    instruction, phrasing = b.say(NAME, key)
    creatinine = (
        lab_number(renal.creatinine, LABS[CREATININE[0]], 2) if renal.creatinine is not None else none_field("mg/dL")
    )
    answer = record(magnesium=number(value, "mg/dL", 0.05, MAGNESIUM_INFO.unit_factors), creatinine=creatinine)
    grams = magnesium_dose(value)
    act = renal.applies
    return b.make(
        NAME,
        key,
        now=now,
        branch="act" if act else "no-action",
        variant=renal.kind,
        instruction=instruction,
        context=PROTOCOL,
        answer_format=ANSWER_FORMAT,
        answer=answer,
        writes=[magnesium_order(b.chart.patient_id, now, grams, grams)] if act else [],
        setup=[fixture],
        provenance=[f"Observation/{fixture['id']}", *renal.facts],
        meta={
            "magnesium": value,
            "level": level,
            "creatinine": None if renal.creatinine is None else round(renal.creatinine, 4),
            "egfr": None if renal.egfr is None else round(renal.egfr, 2),
            "phrasing": phrasing,
        },
    )


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    magnesium = await tools.reads.latest(patient, MAGNESIUM, since=RECENT_WINDOW)
    found = await tools.call("search_observations", patient=patient, code=",".join(CREATININE), since=RENAL_SINCE)
    creatinine = max(found.rows, key=lambda r: (utc_moment(r.get("date")), r["ref"]), default=None)
    egfr = await tools.reads.latest(patient, EGFR, since=RENAL_SINCE)
    value = numeric(magnesium) if magnesium else None
    renal_ok = (
        creatinine is not None
        and numeric(creatinine) <= CREATININE_LIMIT
        and (egfr is None or numeric(egfr) >= EGFR_LIMIT)
    )
    low = value is not None and value <= MAGNESIUM_THRESHOLD
    if (low and renal_ok) or tools.act_on_every_branch:
        grams = magnesium_dose(value if low and value is not None else MAGNESIUM_THRESHOLD)
        await tools.call(
            "order_medication",
            **magnesium_order_arguments(
                patient, grams, f"serum magnesium {value} mg/dL; creatinine within the protocol limit"
            ),
        )
    cited = [row["ref"] for row in (magnesium, creatinine, egfr) if row]
    answer = {
        ANSWER_KEY: value if value is not None else "none",
        "creatinine": round(numeric(creatinine), 2) if creatinine else "none",
    }
    return OracleAnswer(json.dumps(answer), cited)


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=150,
        since=3,
        generate=generate,
        solve=solve,
        conditional=True,
        description="IV magnesium for a low serum magnesium under a written protocol whose renal check (creatinine "
        "drawn in the last 72 hours, at most 2.0 mg/dL; eGFR of those hours at least 30) the chart decides.",
        phrasings={NAME: PHRASINGS},
    )
)
