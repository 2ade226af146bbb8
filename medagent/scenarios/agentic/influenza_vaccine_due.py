"""Report the last flu shot; order one when none was given since the current season began."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from medagent.scenarios.agentic.common import FUTURE_NOTE, TRIES, AgenticBuilder, medication_order, pick_time
from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.clock import SEASON_START_MONTH, day_of, season_start
from medagent.scenarios.codes import CVX, CVX_INFLUENZA
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import oldest_first, parse_time, utc_day

NAME = "influenza_vaccine_due"
PHRASINGS = [
    "Is {patient} due for the seasonal influenza vaccine? The patient is due if no influenza vaccination was "
    "given since the current influenza season began on {start}. If due, order the vaccine; if not, order "
    "nothing.",
    "Check whether {patient} has had this season's influenza vaccine (the current season began on {start}). If "
    "no influenza vaccination was given since then, order the vaccine; otherwise order nothing.",
    "Does {patient} need an influenza vaccine this season? The season began on {start}: without an influenza "
    "vaccination on or after that date the patient is due and you should order it; if vaccinated since, order "
    "nothing.",
    "Influenza vaccine check for {patient}: if there is no influenza vaccination since the start of the current "
    "season ({start}), order one; if there is, do not order.",
    "Review the influenza immunizations of {patient}. The current season started on {start}; order the seasonal "
    "influenza vaccine only if none was given since then.",
    "Has {patient} been vaccinated against influenza since this season began on {start}? If not, order the "
    "seasonal influenza vaccine; if so, order nothing.",
]
VACCINATION_MONTHS = {9, 10, 11, 12, 1, 2, 3}  # clocks when a clinician would offer the season's vaccine


def generate(given: ChartInput) -> list[Scenario]:
    b = AgenticBuilder.of(given, PHRASINGS)
    """Season rule: due when no influenza dose was given since the current season began (1 August). Clocks lie in
    the vaccination months (September to March), never within 3 days of a dose's season boundary."""
    category = NAME
    shots = sorted((s for s in b.chart.immunizations if s.code.code == CVX_INFLUENZA), key=lambda s: (s.when, s.id))
    context = (
        f"The CVX code of the seasonal influenza vaccine is {CVX_INFLUENZA} (system {CVX}). Order it as a "
        f"MedicationRequest with medicationCodeableConcept CVX {CVX_INFLUENZA} (intent order, status active, "
        f"authored now). {FUTURE_NOTE}"
    )
    answer_format = (
        "Answer with the date of the last influenza vaccination as YYYY-MM-DD, or 'none' if the patient never had one."
    )
    rng = b.rng(category, "season")
    start, end = b.span
    candidates: dict[str, list[datetime]] = {"act": [], "no-action": []}
    for _ in range(TRIES * 4):
        now = b.clock(pick_time(rng, start, end))
        if now.month not in VACCINATION_MONTHS or not b.inside(now) or (now.date() - b.chart.birth_date).days < 365:
            continue
        begun = season_start(now)
        before = [s for s in shots if s.when <= now]
        if any(abs((day_of(s.when) - begun).days) <= 3 for s in before) or (
            before and now - before[-1].when < timedelta(days=1)
        ):
            continue  # no dose near the season's first day, none in the last day
        this_season = [s for s in before if day_of(s.when) >= begun]
        candidates["no-action" if this_season else "act"].append(now)
    out = []
    for branch, nows in candidates.items():
        if not nows:
            continue
        now = nows[0]
        before = [s for s in shots if s.when <= now]
        last = before[-1] if before else None
        begun = season_start(now)
        variant = (
            "this-season"
            if branch == "no-action"
            else (
                "last-season"
                if last and day_of(last.when) >= date(begun.year - 1, SEASON_START_MONTH, 1)
                else "older"
                if last
                else "never"
            )
        )
        instruction, phrasing = b.say(category, (branch,), start=begun.isoformat())
        answer = ExpectedAnswer(type="date", value=day_of(last.when).isoformat() if last else None)
        writes = (
            [medication_order("influenza vaccine order", b.chart.patient_id, now, CVX, CVX_INFLUENZA)]
            if branch == "act"
            else []
        )
        out.append(
            b.make(
                category,
                (branch,),
                now=now,
                branch=branch,
                variant=variant,
                instruction=instruction,
                context=context,
                answer_format=answer_format,
                answer=answer,
                writes=writes,
                provenance=[f"Immunization/{last.id}"] if last else [],
                meta={"phrasing": phrasing, "season_start": begun.isoformat()},
            )
        )
    return out


FLU_WINDOW = timedelta(days=365)  # v1: "no influenza vaccination ... in the 365 days before now"
SEASON = re.compile(
    r"season (?:began|started) on (\d{4}-\d{2}-\d{2})|start of the current season \((\d{4}-\d{2}-"
    r"\d{2})\)"
)


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    rows = oldest_first(await tools.reads.immunizations(patient, CVX_INFLUENZA), "date")
    last = rows[-1] if rows else None
    when = parse_time(last["date"]) if last else None
    season = SEASON.search(sc.question)
    if season:  # v2: one dose per season; due when none since the season began
        begun = season.group(1) or season.group(2)
        due = last is None or utc_day(last["date"]) < begun
    else:  # v1: due when none in the 365 days before now
        due = when is None or tools.now - when > FLU_WINDOW
    if due or tools.act_on_every_branch:
        await tools.call(
            "order_medication",
            patient=patient,
            code=CVX_INFLUENZA,
            system="cvx",
            reason="no influenza vaccination in the last 365 days" if when else "never vaccinated",
        )
    if last is None:
        return OracleAnswer("none", [])
    return OracleAnswer(utc_day(last["date"]), [last["ref"]])


CATEGORY = register(
    Category(
        name=NAME,
        suite="agentic",
        tier="core",
        order=220,
        generate=generate,
        solve=solve,
        conditional=True,
        description="Report the last flu shot; order one when none was given since the current season began.",
        phrasings={NAME: PHRASINGS},
    )
)
