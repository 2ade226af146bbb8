"""Four more task types clinicians ask of an agent, each with a precise grader.

- medication_reconciliation: compare what the patient reports taking with the active orders.
- influenza_vaccine_due: report the last flu shot; order one when none since the current season began.
- lab_trend: direction of a lab over its last three results by a stated 5% rule, with a summary.
- discontinue_medication: stop every active order of a named drug, or change nothing if none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta

from medagent.scenarios.agentic_common import FUTURE_NOTE, AgenticBuilder, medication_order, pick_time
from medagent.scenarios.agentic_mab import TRIES
from medagent.scenarios.chart import MedicationFact
from medagent.scenarios.clock import day_of
from medagent.scenarios.codes import CVX, CVX_INFLUENZA, LABS, TREND_CODES
from medagent.scenarios.expect import names, number_answer, rounding_phrase
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance, WriteSpec

SEASON_START_MONTH = 8  # the influenza season (and its vaccine) starts on 1 August
VACCINATION_MONTHS = {9, 10, 11, 12, 1, 2, 3}  # clocks when a clinician would offer the season's vaccine
TREND_THRESHOLD = 0.05
TREND_MARGIN = 0.01  # no question when the change lies within 1 point of the 5% threshold


def _mrn(b: AgenticBuilder) -> str:
    return f"the patient with MRN {b.chart.mrn}"


def _orders_by_code(b: AgenticBuilder) -> dict[str, list[MedicationFact]]:
    grouped: dict[str, list[MedicationFact]] = defaultdict(list)
    for med in sorted(b.chart.medications, key=lambda m: (m.authored, m.id)):
        grouped[med.code.code].append(med)
    return dict(sorted(grouped.items()))


# ---------- medication reconciliation ----------

def medication_reconciliation(b: AgenticBuilder) -> list[Scenario]:
    category = "medication_reconciliation"
    if b.chart.deceased is not None:
        return []
    rng = b.rng(category)
    orders = _orders_by_code(b)
    active = {code: items[-1].code.display for code, items in orders.items()
              if any(m.status == "active" for m in items)}
    if not active:
        return []
    now = b.clock(b.span[1])
    reported = dict(active)
    omitted: list[str] = []
    if len(active) >= 2 and rng.random() < 0.7:
        code = rng.choice(sorted(active))
        omitted.append(active[code])
        del reported[code]
    extra: list[str] = []
    if rng.random() < 0.7:
        stopped = [items[-1].code.display for code, items in orders.items() if code not in active]
        pool = stopped or [d for c, d in b.population.medications.items() if c not in orders]
        extra.append(rng.choice(sorted(pool)))
    listed = sorted([*reported.values(), *extra], key=lambda s: rng.random())
    instruction, phrasing = b.say(category, listed="; ".join(listed))
    answer_format = ('Answer as JSON: {"not_on_chart": [reported medications without an active order], '
                     '"not_reported": [medications with an active order that the patient did not report]}, with '
                     "names exactly as written above or in the chart; use [] for an empty list.")
    answer = ExpectedAnswer(type="record", fields={"not_on_chart": names(extra, "medication"),
                                                   "not_reported": names(omitted, "medication")})
    refs = [f"MedicationRequest/{m.id}" for code in active for m in orders[code] if m.status == "active"]
    kind = "discrepancy" if (extra or omitted) else "match"  # not balanced: most visits have a discrepancy
    return [b.make(category, (), now=now, instruction=instruction, context="", answer_format=answer_format,
                   answer=answer, provenance=refs, meta={"kind": kind, "phrasing": phrasing, "reported": listed})]


# ---------- influenza vaccine due ----------

def season_start(now: datetime) -> date:
    """The first day of the influenza season that ``now`` falls in: 1 August (of this year, or of last year
    before August). One dose per season: a dose from last season does not count."""
    year = now.year if now.month >= SEASON_START_MONTH else now.year - 1
    return date(year, SEASON_START_MONTH, 1)


def influenza_vaccine_due(b: AgenticBuilder) -> list[Scenario]:
    """Season rule: due when no influenza dose was given since the current season began (1 August). Clocks lie in
    the vaccination months (September to March), never within 3 days of a dose's season boundary."""
    category = "influenza_vaccine_due"
    shots = sorted((s for s in b.chart.immunizations if s.code.code == CVX_INFLUENZA), key=lambda s: (s.when, s.id))
    context = (f"The CVX code of the seasonal influenza vaccine is {CVX_INFLUENZA} (system {CVX}). Order it as a "
               f"MedicationRequest with medicationCodeableConcept CVX {CVX_INFLUENZA} (intent order, status active, "
               f"authored now). {FUTURE_NOTE}")
    answer_format = ("Answer with the date of the last influenza vaccination as YYYY-MM-DD, or 'none' if the patient "
                     "never had one.")
    rng = b.rng(category, "season")
    start, end = b.span
    candidates: dict[str, list[datetime]] = {"act": [], "no-action": []}
    for _ in range(TRIES * 4):
        now = b.clock(pick_time(rng, start, end))
        if now.month not in VACCINATION_MONTHS or not b.inside(now) or (now.date() - b.chart.birth_date).days < 365:
            continue
        begun = season_start(now)
        before = [s for s in shots if s.when <= now]
        if any(abs((day_of(s.when) - begun).days) <= 3 for s in before) or (before and now - before[-1].when
                                                                              < timedelta(days=1)):
            continue  # no dose near the season's first day, none in the last day
        given = [s for s in before if day_of(s.when) >= begun]
        candidates["no-action" if given else "act"].append(now)
    out = []
    for branch, nows in candidates.items():
        if not nows:
            continue
        now = nows[0]
        before = [s for s in shots if s.when <= now]
        last = before[-1] if before else None
        begun = season_start(now)
        variant = "this-season" if branch == "no-action" else ("last-season" if last and day_of(last.when) >= date(
            begun.year - 1, SEASON_START_MONTH, 1) else "older" if last else "never")
        instruction, phrasing = b.say(category, (branch,), start=begun.isoformat())
        answer = ExpectedAnswer(type="date", value=day_of(last.when).isoformat() if last else None)
        writes = [medication_order("influenza vaccine order", b.chart.patient_id, now, CVX, CVX_INFLUENZA)] \
            if branch == "act" else []
        out.append(b.make(category, (branch,), now=now, branch=branch, variant=variant, instruction=instruction,
                          context=context, answer_format=answer_format, answer=answer, writes=writes,
                          provenance=[f"Immunization/{last.id}"] if last else [],
                          meta={"phrasing": phrasing, "season_start": begun.isoformat()}))
    return out


# ---------- lab trend ----------

def lab_trend(b: AgenticBuilder) -> list[Scenario]:
    category = "lab_trend"
    rng = b.rng(category)
    by_trend: dict[str, Scenario] = {}
    codes = [c for c in TREND_CODES if len(b.chart.values(c)) >= 3]
    for _ in range(TRIES * 2):
        if not codes:
            break
        code = rng.choice(codes)
        info = LABS[code]
        facts = b.chart.values(code)
        if len({f.when for f in facts}) != len(facts):
            codes.remove(code)  # same-time duplicates make "the last three" ambiguous
            continue
        k = rng.randrange(2, len(facts))
        upper = facts[k + 1].when if k + 1 < len(facts) else b.span[1]
        if upper - facts[k].when < timedelta(days=3):
            continue
        now = b.clock(facts[k].when + (upper - facts[k].when) * rng.uniform(0.1, 0.9))
        if not b.inside(now) or not facts[k].when + timedelta(hours=1) < now < upper:
            continue
        first, last = facts[k - 2], facts[k]
        change = (last.value - first.value) / first.value
        if abs(abs(change) - TREND_THRESHOLD) <= TREND_MARGIN:
            continue
        trend = "increasing" if change >= TREND_THRESHOLD else "decreasing" if change <= -TREND_THRESHOLD else "stable"
        if trend in by_trend:
            continue
        every = [f.value for f in facts]
        first_answer = number_answer(first.value, info, every)
        last_answer = number_answer(last.value, info, every)
        if first_answer is None or last_answer is None:
            continue
        decimals = max(first_answer[1], last_answer[1])
        tolerance = Tolerance(abs=10.0 ** -decimals)  # both values at the one stated rounding
        fields = {
            "trend": names([trend]),
            "first": first_answer[0].model_copy(update={"tolerance": tolerance}),
            "last": last_answer[0].model_copy(update={"tolerance": tolerance}),
        }
        instruction, phrasing = b.say(category, (trend,), label=info.label, code=code)
        context = ("Compare the newest of the three results with the oldest: the trend is 'increasing' if the newest "
                   "is at least 5% higher, 'decreasing' if it is at least 5% lower, and 'stable' otherwise. "
                   + FUTURE_NOTE)
        answer_format = ('Answer as JSON: {"trend": "increasing" | "decreasing" | "stable", "first": <oldest of the '
                         f'three, in {info.unit}>, "last": <newest, in {info.unit}>, "summary": "<one or two '
                         f'sentences>"}}, values {rounding_phrase(decimals)}.')
        by_trend[trend] = b.make(category, (trend,), now=now, variant=trend, instruction=instruction,
                                 context=context, answer_format=answer_format,
                                 answer=ExpectedAnswer(type="record", fields=fields),
                                 provenance=[f"Observation/{f.id}" for f in facts[k - 2:k + 1]],
                                 meta={"loinc": code, "change": round(change, 4), "phrasing": phrasing})
    return [by_trend[t] for t in sorted(by_trend)]


# ---------- discontinue a medication ----------

def discontinue_medication(b: AgenticBuilder) -> list[Scenario]:
    category = "discontinue_medication"
    if b.chart.deceased is not None:
        return []
    rng = b.rng(category)
    orders = _orders_by_code(b)
    active = sorted(code for code, items in orders.items() if any(m.status == "active" for m in items))
    stopped = sorted(code for code in orders if code not in active)
    now = b.clock(b.span[1])
    out = []
    for branch, pool in (("act", active), ("no-action", stopped)):
        if not pool:
            continue
        code = rng.choice(pool)
        items = orders[code]
        display = items[-1].code.display
        instruction, phrasing = b.say(category, (branch,), drug=display)
        context = "Update the existing MedicationRequest; do not create a new one or delete it."
        writes = [
            WriteSpec(name=f"stop MedicationRequest/{m.id}", resource_type="MedicationRequest", action="update",
                      target=f"MedicationRequest/{m.id}", status=["stopped", "cancelled"],
                      unchanged=["medicationCodeableConcept", "subject"])
            for m in items if m.status == "active"
        ] if branch == "act" else []
        out.append(b.make(category, (branch,), now=now, branch=branch, instruction=instruction, context=context,
                          answer_format=f"Answer with the date (YYYY-MM-DD) on which the most recent order for "
                                        f"{display} was written.",
                          answer=ExpectedAnswer(type="date", value=day_of(items[-1].authored).isoformat()),
                          writes=writes, provenance=[f"MedicationRequest/{m.id}" for m in items],
                          meta={"phrasing": phrasing, "drug": display}))
    return out


TASKS: dict[str, Callable[[AgenticBuilder], list[Scenario]]] = {
    "medication_reconciliation": medication_reconciliation,
    "influenza_vaccine_due": influenza_vaccine_due,
    "lab_trend": lab_trend,
    "discontinue_medication": discontinue_medication,
}
