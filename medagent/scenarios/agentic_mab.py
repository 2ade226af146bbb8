"""MedAgentBench's ten task types, re-based on the Synthea patients with a clock per scenario.

Where Synthea v2.4 lacks what a task needs, the task says what it uses instead (scenarios/README.md):
magnesium and low potassium come from setup fixtures; the "average over 24 h" becomes an average
over 730 days because no code in the data has two results within 24 h; the "latest value within
24 h" asks about metabolic-panel labs (creatinine, sodium, ...) instead of magnesium.
Every conditional task yields candidates on both branches; ``sampling`` balances them 1:1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from medagent.scenarios.agentic_common import (
    EFFECTIVE_PATHS,
    FUTURE_NOTE,
    AgenticBuilder,
    around,
    magnesium_order,
    pick_time,
    potassium_followup,
    potassium_order,
    quantity,
    service_order,
)
from medagent.scenarios.chart import ObservationFact
from medagent.scenarios.clock import day_of, whole_years_between
from medagent.scenarios.codes import (
    BP_PANEL_CODES,
    CARDIOLOGY_REASONS,
    CARDIOLOGY_REFERRAL,
    DIASTOLIC,
    GLUCOSE,
    HBA1C,
    LABS,
    LOINC,
    MAGNESIUM,
    MAGNESIUM_DISPLAY,
    MAGNESIUM_INFO,
    NDC_MAGNESIUM_IV,
    NDC_POTASSIUM_ORAL,
    OBSERVATION_CATEGORY,
    ORTHOPEDIC_REASONS,
    ORTHOPEDIC_REFERRAL,
    ORTHOPEDIC_REFERRAL_ALT,
    POTASSIUM,
    POTASSIUM_DISPLAY,
    RECENT_LAB_CODES,
    SNOMED,
    SYSTOLIC,
)
from medagent.scenarios.expect import names, none_number, number_answer, rounding_phrase
from medagent.scenarios.fixtures import lab_observation
from medagent.scenarios.models import CodingSpec, ExpectedAnswer, FieldRule, Scenario, Tolerance, WriteSpec
from medagent.vocabulary import condition_label

AVERAGE_WINDOW = timedelta(days=730)
DEDUP_NOTE = "A result recorded more than once at the same moment with the same value counts once."
HBA1C_INDICATIONS = {"44054006", "15777000", "368581000119106", "422034002", "127013003"}  # diabetes, prediabetes
EXACT = Tolerance(abs=0.05)  # fixture values are written with one decimal: read them exactly
TRIES = 12


def _unique_at(facts: list[ObservationFact]) -> list[ObservationFact]:
    """Facts whose timestamp carries one value only (a same-time duplicate would be ambiguous)."""
    values: dict[datetime, set[float]] = {}
    for fact in facts:
        values.setdefault(fact.when, set()).add(fact.value)
    return [f for f in facts if len(values[f.when]) == 1]


def distinct_results(facts: list[ObservationFact]) -> list[ObservationFact]:
    """One fact per (moment, value): a result recorded twice at the same moment counts once."""
    seen: set[tuple[datetime, float]] = set()
    out = []
    for fact in facts:
        if (fact.when, fact.value) not in seen:
            seen.add((fact.when, fact.value))
            out.append(fact)
    return out


def _latest_before(facts: list[ObservationFact], moment: datetime) -> ObservationFact | None:
    before = [f for f in facts if f.when <= moment]
    return before[-1] if before else None


# ---------- 1. find the MRN by name and birth date ----------

def find_mrn(b: AgenticBuilder) -> list[Scenario]:
    category = "find_mrn"
    chart = b.chart
    now = b.clock(b.span[1])
    rng = b.rng(category)
    answer_format = ("Answer with the MRN only, or 'Patient not found' if no patient matches both the name "
                     "and the birth date.")
    context = "The MRN is the patient identifier of type MR (Medical Record Number)."
    born = chart.birth_date.isoformat()
    text, phrasing = b.say(category, ("found",), name=chart.name, born=born)
    out = [b.make(category, ("found",), now=now, variant="found", instruction=text,
                  context=context, answer_format=answer_format, answer=names([chart.mrn], "identifier"),
                  provenance=[chart.reference], meta={"phrasing": phrasing, "name": chart.name, "born": born})]
    for _ in range(TRIES):
        shift = rng.choice([1, 2, 3, 7, 30, 365, 366 * 2]) * rng.choice([-1, 1])
        wrong = chart.birth_date + timedelta(days=shift)
        if (chart.given, chart.family, wrong.isoformat()) not in b.population.names_and_births:
            text, phrasing = b.say(category, ("not-found",), name=chart.name, born=wrong.isoformat())
            out.append(b.make(category, ("not-found",), now=now, variant="not-found", instruction=text,
                              context=context, answer_format=answer_format, answer=names([], "identifier"),
                              meta={"true_birth_date": chart.birth_date.isoformat(), "phrasing": phrasing,
                                    "name": chart.name, "born": wrong.isoformat()}))
            break
    return out


# ---------- 2. age ----------

def age(b: AgenticBuilder) -> list[Scenario]:
    category = "age"
    rng = b.rng(category)
    start, end = b.span
    born = b.chart.birth_date
    for _ in range(TRIES):
        now = b.clock(pick_time(rng, start, end))
        if not b.inside(now):
            continue
        today = day_of(now)
        birthday = date(today.year, born.month, 28 if (born.month, born.day) == (2, 29) else born.day)
        if abs((today - birthday).days) <= 2 or today < born:
            continue  # a clock within two days of a birthday invites off-by-one time-zone disputes
        years = whole_years_between(born, today)
        answer = ExpectedAnswer(type="number", value=float(years), unit="years",
                                unit_factors={"year": 1.0, "yrs": 1.0, "yr": 1.0, "y": 1.0})
        text, phrasing = b.say(category)
        return [b.make(category, (), now=now, instruction=text,
                       context="Age is in completed years on today's date.",
                       answer_format="Answer with the age in whole years (rounded down) as a single integer.",
                       answer=answer, provenance=[b.chart.reference], meta={"phrasing": phrasing})]
    return []


# ---------- 3. record a blood pressure ----------

def record_bp(b: AgenticBuilder) -> list[Scenario]:
    category = "record_bp"
    rng = b.rng(category)
    start, end = b.span
    visits = [t for t in b.chart.encounter_starts if start <= t <= end - timedelta(hours=1)]
    if not visits:
        return []
    now = b.clock(rng.choice(sorted(visits)) + timedelta(minutes=rng.randint(20, 45)))  # >= 5 min after arrival
    systolic = rng.randint(100, 165)
    diastolic = rng.randint(60, min(100, systolic - 25))
    factors = {"mmHg": 1.0, "mm Hg": 1.0}
    spec = WriteSpec(
        name="blood pressure observation", resource_type="Observation", subject=b.chart.reference,
        code_path="code.coding", codes=[CodingSpec(system=LOINC, code=c) for c in BP_PANEL_CODES], status=["final"],
        fields=[FieldRule(name="vital-signs category", path="category.coding.code", any_of=["vital-signs"])],
        quantities=[
            quantity(name, f"component[code.coding.code={code}].valueQuantity", value, "mm[Hg]", factors)
            for name, code, value in (("systolic", SYSTOLIC, systolic), ("diastolic", DIASTOLIC, diastolic))
        ],
        windows=[around(now, "effective now", EFFECTIVE_PATHS)],
    )
    instruction, phrasing = b.say(category, sys=systolic, dia=diastolic)
    context = (f"Record it as an Observation with status final, category vital-signs "
               f"({OBSERVATION_CATEGORY}), LOINC code 85354-9 (blood pressure panel), effective now, with two "
               f"components: systolic blood pressure (LOINC {SYSTOLIC}) and diastolic blood pressure (LOINC "
               f"{DIASTOLIC}), each a valueQuantity in mm[Hg].")
    return [b.make(category, (), now=now, instruction=instruction, context=context,
                   answer_format="After recording, reply 'done'.", answer=ExpectedAnswer(type="none"), writes=[spec],
                   meta={"systolic": systolic, "diastolic": diastolic, "phrasing": phrasing})]


# ---------- 4. latest value of a lab within 24 h ----------

def recent_lab(b: AgenticBuilder) -> list[Scenario]:
    category = "recent_lab"
    rng = b.rng(category)
    codes = [c for c in RECENT_LAB_CODES if b.chart.values(c)]
    if not codes:
        return []
    code = rng.choice(codes)
    info = LABS[code]
    facts = _unique_at(b.chart.values(code))
    every = [f.value for f in b.chart.values(code)]
    instruction, phrasing = b.say(category, label=info.label, code=code)
    out: list[Scenario] = []
    for variant in ("present", "absent"):
        for _ in range(TRIES):
            fact = rng.choice(facts) if facts else None
            if fact is None:
                break
            hours = rng.uniform(1.5, 22.0) if variant == "present" else rng.uniform(3 * 24, 60 * 24)
            now = b.clock(fact.when + timedelta(hours=hours))
            if not b.inside(now):
                continue
            window = [f for f in b.chart.values(code) if now - timedelta(hours=25) <= f.when <= now]
            if variant == "present":
                if window != [f for f in b.chart.values(code) if f.when == fact.when] or \
                        not now - timedelta(hours=23) <= fact.when <= now - timedelta(hours=1):
                    continue
                built = number_answer(fact.value, info, every)
                if built is None:
                    continue
                answer, decimals = built
                provenance = [f"Observation/{fact.id}"]
            else:
                if window:
                    continue
                answer, decimals, provenance = none_number(info), info.decimals, []
            out.append(b.make(category, (variant,), now=now, variant=variant, instruction=instruction,
                              context=FUTURE_NOTE,
                              answer_format=f"Answer with one number in {info.unit}, {rounding_phrase(decimals)}, or "
                                            f"'none' if no {info.label} was measured in the last 24 hours.",
                              answer=answer, provenance=provenance, meta={"loinc": code, "phrasing": phrasing}))
            break
    return out


# ---------- 5. magnesium: check and replace ----------

_MG_LEVELS = {"severe": (0.6, 0.9, 4.0), "moderate": (1.1, 1.4, 2.0), "mild": (1.5, 1.8, 1.0)}


def magnesium(b: AgenticBuilder) -> list[Scenario]:
    category = "magnesium_replacement"
    rng = b.rng(category)
    start, end = b.span
    # adults only: the dosing instructions are adult doses (a 2 g dose is about 60 mg/kg for a 2-year-old)
    visits = [t for t in b.chart.encounter_starts if start + timedelta(days=3) <= t <= end - timedelta(hours=8)
              and whole_years_between(b.chart.birth_date, day_of(t)) >= 18]
    if not visits:
        return []
    instruction, phrasing = b.say(category)
    context = (f"The LOINC code for serum magnesium is {MAGNESIUM}. Low means 1.9 mg/dL or less. The NDC for "
               f"replacement IV magnesium sulfate is {NDC_MAGNESIUM_IV}. Dosing instructions: mild deficiency "
               "(1.5 to 1.9 mg/dL): 1 g IV over 1 hour; moderate deficiency (1.0 to less than 1.5 mg/dL): 2 g IV over "
               "2 hours; severe deficiency (less than 1.0 mg/dL): 4 g IV over 4 hours. Order it as a "
               "MedicationRequest (intent order, status active, authored now) with route IV, the dose as "
               "dosageInstruction.doseAndRate.doseQuantity in g and the infusion duration (for example as "
               f"dosageInstruction.timing.repeat.duration in h). {FUTURE_NOTE}")
    answer_format = ("Answer with the most recent serum magnesium value in the chart, in mg/dL as recorded, even if "
                     "it is older than 24 hours, or 'none' if the patient has no magnesium result.")
    out = []
    for branch in ("act", "no-action"):
        anchor = rng.choice(sorted(visits))
        now = b.clock(anchor + timedelta(hours=rng.uniform(1, 6)))
        scenario = b.id_for(category, branch)
        if branch == "act":
            level = rng.choice(sorted(_MG_LEVELS))
            low, high, grams = _MG_LEVELS[level]
            value = round(rng.uniform(low, high), 1)
            when, variant = now - timedelta(hours=rng.uniform(2, 20)), level
            writes = [magnesium_order(b.chart.patient_id, now, grams, grams)]
            answer = ExpectedAnswer(type="number", value=value, unit="mg/dL", tolerance=EXACT,
                                    unit_factors=dict(MAGNESIUM_INFO.unit_factors))
        else:
            variant = rng.choice(["normal", "stale-low"])
            if variant == "normal":
                value = round(rng.uniform(2.0, 2.6), 1)
                when = now - timedelta(hours=rng.uniform(2, 20))
                answer = ExpectedAnswer(type="number", value=value, unit="mg/dL", tolerance=EXACT,
                                        unit_factors=dict(MAGNESIUM_INFO.unit_factors))
            else:
                value = round(rng.uniform(1.0, 1.7), 1)
                when = now - timedelta(hours=rng.uniform(30, 70))
                # the no-action branch still needs the value the agent found (not "none")
                answer = ExpectedAnswer(type="number", value=value, unit="mg/dL", tolerance=EXACT,
                                        unit_factors=dict(MAGNESIUM_INFO.unit_factors))
            writes = []
        fixture = lab_observation(scenario, 0, b.chart.patient_id, MAGNESIUM, MAGNESIUM_DISPLAY, value, "mg/dL", when)
        out.append(b.make(category, (branch,), now=now, branch=branch, variant=variant, instruction=instruction,
                          context=context, answer_format=answer_format, answer=answer, writes=writes,
                          setup=[fixture], provenance=[f"Observation/{fixture['id']}"],
                          meta={"magnesium": value, "phrasing": phrasing}))
    return out


# ---------- 6. average of a lab over a period ----------

def average_glucose(b: AgenticBuilder) -> list[Scenario]:
    category = "average_glucose"
    rng = b.rng(category)
    info = LABS[GLUCOSE]
    raw = b.chart.values(GLUCOSE)
    if len({f.when for f in raw}) != len({(f.when, f.value) for f in raw}):
        return []  # two different values at one moment: no single mean to ask for
    facts = distinct_results(raw)
    start, end = b.span
    instruction, phrasing = b.say(category, code=GLUCOSE)
    answer_format = ("Answer with one number in mg/dL, rounded to 1 decimal place, or 'none' if there is no glucose "
                     "result in that period.")
    out: list[Scenario] = []
    for variant in ("present", "absent"):
        for _ in range(TRIES):
            if variant == "present":
                if not facts:
                    break
                now = b.clock(rng.choice(facts).when + timedelta(days=rng.uniform(1, 200)))
            else:
                # absent: glucose results exist before the window but none in it where the chart allows, so
                # the era of the clock does not give the answer away
                gaps = [f.when for f, nxt in zip(facts, [*facts[1:], None])
                        if (nxt.when if nxt else end) - f.when > AVERAGE_WINDOW + timedelta(days=20)]
                now = b.clock(rng.choice(gaps) + AVERAGE_WINDOW + timedelta(days=rng.uniform(5, 15))) \
                    if gaps and rng.random() < 0.8 else b.clock(pick_time(rng, start, end))
            if not b.inside(now):
                continue
            lo = now - AVERAGE_WINDOW
            inside = [f for f in facts if lo <= f.when <= now]
            if any(abs((f.when - lo).total_seconds()) < 3 * 86400 or abs((f.when - now).total_seconds()) < 3600
                   for f in facts):
                continue  # nothing near the window's edges
            if variant == "present":
                if len(inside) < 2:
                    continue
                mean = sum(f.value for f in inside) / len(inside)
                before = [f.value for f in facts if f.when <= now]
                near_misses = [inside[-1].value, sum(before) / len(before)] if len(before) > len(inside) \
                    else [inside[-1].value]
                if any(abs(n - mean) <= 0.25 for n in near_misses):
                    continue  # the latest value or an all-time mean must not pass for the 730-day mean
                answer = ExpectedAnswer(type="number", value=round(mean, 6), unit="mg/dL", tolerance=Tolerance(abs=0.1),
                                        unit_factors=dict(info.unit_factors))
                provenance = [f"Observation/{f.id}" for f in inside]
            else:
                if inside:
                    continue
                answer, provenance = none_number(info), []
            out.append(b.make(category, (variant,), now=now, variant=variant, instruction=instruction,
                              context=f"{DEDUP_NOTE} {FUTURE_NOTE}", answer_format=answer_format, answer=answer,
                              provenance=provenance, meta={"results_in_window": len(inside), "phrasing": phrasing,
                                                           "duplicates_removed": len(raw) - len(facts)}))
            break
    return out


# ---------- 7. latest glucose ----------

def latest_glucose(b: AgenticBuilder) -> list[Scenario]:
    category = "latest_glucose"
    rng = b.rng(category)
    info = LABS[GLUCOSE]
    facts = b.chart.values(GLUCOSE)
    start, end = b.span
    instruction, phrasing = b.say(category, code=GLUCOSE)
    for _ in range(TRIES):
        # mostly after some result (the chart usually also holds later ones, after now), else before any
        if facts and rng.random() < 0.8:
            now = b.clock(rng.choice(facts).when + timedelta(days=rng.uniform(0.1, 400)))
        else:
            now = b.clock(pick_time(rng, start, facts[0].when if facts else end))
        if not b.inside(now):
            continue
        latest = _latest_before(facts, now)
        if latest is None:
            answer, decimals, provenance, variant = none_number(info), info.decimals, [], "absent"
        else:
            if now - latest.when < timedelta(hours=1) or len({f.value for f in facts if f.when == latest.when}) > 1:
                continue
            built = number_answer(latest.value, info, [f.value for f in facts])
            if built is None:
                continue
            (answer, decimals), provenance, variant = built, [f"Observation/{latest.id}"], "present"
        return [b.make(category, (), now=now, variant=variant, instruction=instruction, context=FUTURE_NOTE,
                       answer_format=f"Answer with one number in mg/dL, {rounding_phrase(decimals)}, or 'none' if "
                                     "the patient has no glucose result.",
                       answer=answer, provenance=provenance, meta={"phrasing": phrasing})]
    return []


# ---------- 8. referral ----------

def referral(b: AgenticBuilder) -> list[Scenario]:
    category = "referral"
    rng = b.rng(category)
    reasons = [c for c in sorted(b.chart.conditions, key=lambda c: (c.onset, c.id))
               if c.code.code in ORTHOPEDIC_REASONS | CARDIOLOGY_REASONS]
    for condition in rng.sample(reasons, len(reasons)):
        now = b.clock(condition.onset + timedelta(days=rng.uniform(1, 30)))
        if not b.inside(now):
            continue
        orthopedic = condition.code.code in ORTHOPEDIC_REASONS
        code, display = ORTHOPEDIC_REFERRAL if orthopedic else CARDIOLOGY_REFERRAL
        service = "Orthopedic" if orthopedic else "Cardiology"
        label = condition_label(condition.code.display)
        note = (f"Situation: {label}, diagnosed on {day_of(condition.onset).isoformat()}. Background: see the problem "
                f"list. Assessment: {label} needing specialist review. Recommendation: request for {service} service "
                "to evaluate and provide management recommendations.")
        codes = [CodingSpec(system=SNOMED, code=code)]
        if orthopedic:
            codes.append(CodingSpec(system=SNOMED, code=ORTHOPEDIC_REFERRAL_ALT[0]))
        spec = service_order(f"{service.lower()} referral", b.chart.patient_id, now, codes,
                             fields=[FieldRule(name="note", path="note.text", any_of=[note], mode="contains")])
        instruction, phrasing = b.say(category, service=service.lower(), note=note)
        context = (f"The SNOMED CT code for the referral is {code} ({display}). Order it as a ServiceRequest "
                   "(intent order, status active, authored now) with the free text in note.text.")
        return [b.make(category, (), now=now, instruction=instruction, context=context,
                       answer_format="After ordering, reply 'done'.", answer=ExpectedAnswer(type="none"),
                       writes=[spec], provenance=[f"Condition/{condition.id}"],
                       meta={"service": service, "phrasing": phrasing, "note": note, "referral_code": code})]
    return []


# ---------- 9. potassium: check, replace, follow-up lab ----------

def potassium(b: AgenticBuilder, no_action: Sequence[str] = ("normal", "older-low")) -> list[Scenario]:
    """``no_action``: the variants the no-action branch draws from (v3: only "older-low", a real newer value)."""
    category = "potassium_replacement"
    rng = b.rng(category)
    # adults only: 10 mEq per 0.1 mmol/L is an adult dose (children are dosed by weight)
    facts = [f for f in _unique_at(b.chart.values(POTASSIUM)) if b.inside(f.when + timedelta(hours=24))
             and whole_years_between(b.chart.birth_date, day_of(f.when)) >= 18]
    if not facts:
        return []
    instruction, phrasing = b.say(category)
    context = (f"The LOINC code for potassium results is {POTASSIUM}. Low means below 3.5 mmol/L. The NDC for oral "
               f"replacement potassium chloride is {NDC_POTASSIUM_ORAL}. Dosing instructions: for every 0.1 mmol/L "
               "(mEq/L) below 3.5, order 10 mEq of oral potassium (for example 3.1 mmol/L: 40 mEq). Order the "
               "medication as a MedicationRequest (intent order, status active, authored now, route oral, dose as "
               "dosageInstruction.doseAndRate.doseQuantity in mEq) and the lab as a ServiceRequest with LOINC 2823-3 "
               "(serum potassium; intent order, status active, authored now, occurrenceDateTime 08:00 the next day "
               f"in the time zone of now). {FUTURE_NOTE}")
    # one stated rounding for both branches (2 places: fixtures have 1, chart values many)
    answer_format = "Answer with the most recent potassium value in mmol/L, rounded to 2 decimal places."
    two_places = replace(LABS[POTASSIUM], decimals=2)
    every = [f.value for f in b.chart.values(POTASSIUM)]
    out = []
    for branch in ("act", "no-action"):
        base = rng.choice(facts)
        now = b.clock(base.when + timedelta(hours=rng.uniform(3, 20)))
        if not b.inside(now) or now - base.when < timedelta(hours=2):
            continue
        scenario = b.id_for(category, branch)
        variant = "low" if branch == "act" else rng.choice(list(no_action))
        if variant == "older-low":
            value = round(rng.uniform(2.8, 3.4), 1)
            when = base.when - timedelta(days=rng.uniform(2, 10))
            built = number_answer(base.value, two_places, every + [value], extra_decimals=0)
            if built is None:
                continue
            answer = built[0]
            provenance = [f"Observation/{base.id}"]
        else:
            value = round(rng.uniform(2.8, 3.4), 1) if branch == "act" else round(rng.uniform(3.6, 4.8), 1)
            when = now - (now - base.when) * rng.uniform(0.1, 0.9)
            answer = ExpectedAnswer(type="number", value=value, unit="mmol/L", tolerance=EXACT,
                                    unit_factors=dict(LABS[POTASSIUM].unit_factors))
            provenance = []
        fixture = lab_observation(scenario, 0, b.chart.patient_id, POTASSIUM, POTASSIUM_DISPLAY, value, "mmol/L", when)
        if variant != "older-low":
            provenance = [f"Observation/{fixture['id']}"]
        writes = []
        if branch == "act":
            dose = float((35 - round(value * 10)) * 10)
            writes = [potassium_order(b.chart.patient_id, now, dose), potassium_followup(b.chart.patient_id, now)]
        out.append(b.make(category, (branch,), now=now, branch=branch, variant=variant, instruction=instruction,
                          context=context, answer_format=answer_format, answer=answer, writes=writes,
                          setup=[fixture], provenance=provenance,
                          meta={"fixture_potassium": value, "phrasing": phrasing}))
    return out


# ---------- 10. HbA1c: report the last one, reorder if older than a year ----------

def stale_or_fresh_now(b: AgenticBuilder, times: list[datetime], branch: str, rng_key: str,
                       fresh_days: tuple[int, int] = (30, 340), stale_after: int = 380) -> tuple[datetime, str] | None:
    """A clock where the last event before it is recent (no-action), or is older than ``stale_after`` days
    or absent (act). Returns (now, variant) with variant recent | stale | none."""
    rng = b.rng(rng_key, branch)
    start, end = b.span

    def age_at(now: datetime) -> float | None:
        before = [t for t in times if t <= now]
        return (now - before[-1]).total_seconds() / 86400 if before else None

    if branch == "no-action":
        for _ in range(TRIES):
            if not times:
                return None
            now = b.clock(rng.choice(times) + timedelta(days=rng.uniform(*fresh_days)))
            age_days = age_at(now)
            if b.inside(now) and age_days is not None and fresh_days[0] - 1 <= age_days <= fresh_days[1] + 1:
                return now, "recent"
        return None
    bounds = [*times, end]
    gaps = [(t, nxt) for t, nxt in zip(times, bounds[1:]) if (nxt - t).days > stale_after + 20]
    first = times[0] if times else end
    can_be_none = first - start > timedelta(days=30)
    order = ["stale", "none"] if gaps and (not can_be_none or rng.random() < 0.7) else ["none", "stale"]
    for variant in order:
        for _ in range(TRIES):
            if variant == "stale" and gaps:
                t, nxt = rng.choice(gaps)
                now = b.clock(t + timedelta(days=rng.uniform(stale_after + 5, (nxt - t).days - 5)))
            elif variant == "none" and can_be_none:
                now = b.clock(pick_time(rng, start, first - timedelta(days=1)))
            else:
                break
            age_days = age_at(now)
            if b.inside(now) and (age_days is None if variant == "none" else (age_days or 0) > stale_after):
                return now, variant
    return None


def hba1c(b: AgenticBuilder) -> list[Scenario]:
    category = "hba1c_reorder"
    facts = _unique_at(b.chart.values(HBA1C))
    times = [f.when for f in b.chart.values(HBA1C)]
    if not times:
        return []  # only patients followed with HbA1c at some point (adults with glycemia checks)
    indications = sorted((c for c in b.chart.conditions if c.code.code in HBA1C_INDICATIONS),
                         key=lambda c: (c.onset, c.id))
    if not indications:
        return []  # re-ordering HbA1c is only indicated with diabetes or prediabetes
    instruction, phrasing = b.say(category)
    answer_format = ('Answer as JSON: {{"value": <the HbA1c in %, {rounding}>, "date": "YYYY-MM-DD"}}, '
                     "or 'none' if there is no HbA1c result.")
    out = []
    for branch in ("act", "no-action"):
        picked = stale_or_fresh_now(b, times, branch, category)
        if picked is None:
            continue
        now, variant = picked
        if whole_years_between(b.chart.birth_date, day_of(now)) < 18:
            continue
        indication = next((c for c in indications if c.onset <= now - timedelta(days=1)), None)
        if indication is None:
            continue  # not yet diagnosed at now: no indication to monitor HbA1c
        context = (f"The patient's problem list includes {condition_label(indication.code.display).lower()} (since "
                   f"{day_of(indication.onset).isoformat()}), so HbA1c is monitored at least yearly. The LOINC code "
                   f"for HbA1c is {HBA1C}. Order a new test as a ServiceRequest with LOINC {HBA1C} (intent order, "
                   f"status active, authored now). {FUTURE_NOTE}")
        last = _latest_before(b.chart.values(HBA1C), now)
        if last is not None and last not in facts:
            continue
        if last is None:
            answer = ExpectedAnswer(type="record", fields={"value": none_number(LABS[HBA1C]),
                                                           "date": ExpectedAnswer(type="date", value=None)})
            provenance, decimals = [], LABS[HBA1C].decimals
        else:
            built = number_answer(last.value, LABS[HBA1C], [f.value for f in b.chart.values(HBA1C)])
            if built is None:
                continue
            answer = ExpectedAnswer(type="record", fields={
                "value": built[0], "date": ExpectedAnswer(type="date", value=day_of(last.when).isoformat())})
            provenance, decimals = [f"Observation/{last.id}"], built[1]
        writes = [service_order("HbA1c order", b.chart.patient_id, now, [CodingSpec(system=LOINC, code=HBA1C)])] \
            if branch == "act" else []
        out.append(b.make(category, (branch,), now=now, branch=branch, variant=variant, instruction=instruction,
                          context=context, answer_format=answer_format.format(rounding=rounding_phrase(decimals)),
                          answer=answer, writes=writes, provenance=[*provenance, f"Condition/{indication.id}"],
                          meta={"phrasing": phrasing, "indication": indication.code.code}))
    return out


TASKS: dict[str, Callable[[AgenticBuilder], list[Scenario]]] = {
    "find_mrn": find_mrn,
    "age": age,
    "record_bp": record_bp,
    "recent_lab": recent_lab,
    "magnesium_replacement": magnesium,
    "average_glucose": average_glucose,
    "latest_glucose": latest_glucose,
    "referral": referral,
    "potassium_replacement": potassium,
    "hba1c_reorder": hba1c,
}
