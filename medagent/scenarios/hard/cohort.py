"""Cohort questions across the whole population, in the style of clinical quality measures.

The agent must search the population (every patient on the server), not one chart:

Every answer is a worklist: the MRNs of the patients in a stratum (an age band, optionally one sex, drawn per
item) who meet the measure's criterion at now, graded as a set.

- ``hypertension_uncontrolled`` (cf. CMS165): living patients with hypertension (SNOMED 38341003) diagnosed by
  now whose most recent blood pressure by now is >= 140 systolic or >= 90 diastolic (ages within 18-85).
- ``diabetes_hba1c_above`` (cf. CMS122): living patients with prediabetes or diabetes (15777000, 44054006)
  by now whose most recent HbA1c by now is above a stated threshold (7.0-9.0%; ages within 18-75).
- ``influenza_unvaccinated``: living patients with no influenza vaccination (CVX 140) since the current
  season began (1 August; ages within 50-100).

Split: the population is shared, so these items cannot be split by patient. They are split by the year of
``now``: test items are dated in ``TEST_YEARS``, dev items in the other years, so no test question (measure,
date) appears in dev. A "patient" is still set on each item (the first patient of the split, sorted by id, alive
through every date asked) because the runner and the solvers expect one; the question names no patient. Items with fewer than two patients
or whose cohort has an ambiguous latest result (two at the same moment) are not asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from medagent.scenarios.category import Category, PopulationInput, register
from medagent.scenarios.chart import Chart, ObservationFact
from medagent.scenarios.chart_reads import MAX_ROWS, latest_observation
from medagent.scenarios.clock import iso, season_start, whole_years_between
from medagent.scenarios.codes import (
    CVX_INFLUENZA,
    DIABETES,
    DIASTOLIC,
    HBA1C,
    HYPERTENSION,
    PREDIABETES,
    SNOMED,
    SYSTOLIC,
)
from medagent.scenarios.expect import names
from medagent.scenarios.hard.common import pick_phrasing
from medagent.scenarios.identity import rng_for, short_hash
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, task_text, utc_moment

NAME = "cohort_measure"
YEARS = list(range(2008, 2021))
TEST_YEARS = {2011, 2015, 2019}
MONTHS = list(range(1, 13))
STRATUM_TRIES = 6
MIN_MEMBERS = 2  # a one-patient worklist repeats across dates: too easy to guess

PHRASINGS: dict[str, list[str]] = {
    "hypertension_uncontrolled": [
        "Which living {who} with hypertension (SNOMED {htn}) diagnosed by now have a most recent blood pressure of "
        "140 mmHg systolic or more, or 90 mmHg diastolic or more?",
        "For the controlling-high-blood-pressure measure: which living {who} with hypertension (SNOMED {htn}) have "
        "their latest blood pressure at or above 140/90 (systolic >= 140 or diastolic >= 90)?",
        "List the living hypertensive {who} (SNOMED {htn}) whose last recorded blood pressure is not controlled "
        "(systolic >= 140 mmHg or diastolic >= 90 mmHg).",
        "Which {who}, alive now and diagnosed with hypertension (SNOMED {htn}), had a latest systolic of at least "
        "140 or a latest diastolic of at least 90 mmHg?",
        "Across the whole population, which living {who} with hypertension (SNOMED {htn}) have an uncontrolled most "
        "recent blood pressure (>= 140 systolic or >= 90 diastolic)?",
    ],
    "diabetes_hba1c_above": [
        "Which living {who} with prediabetes or diabetes (SNOMED {pre} or {dm}) diagnosed by now have a most recent "
        "HbA1c (LOINC {hba1c}) above {threshold}%?",
        "Among living {who} with a diagnosis of prediabetes or diabetes (SNOMED {pre}, {dm}), who has a latest "
        "hemoglobin A1c (LOINC {hba1c}) greater than {threshold}%?",
        "List the living {who} with prediabetes or diabetes (SNOMED {pre} or {dm}) whose last HbA1c (LOINC {hba1c}) "
        "is above {threshold}%.",
        "For a glycaemic-control report: which of the living {who} with prediabetes or diabetes (SNOMED {pre}/{dm}) "
        "had their latest HbA1c (LOINC {hba1c}) over {threshold}%?",
        "In the population, which living {who} with prediabetes or diabetes (SNOMED {pre} or {dm}) have a most "
        "recent HbA1c (LOINC {hba1c}) strictly above {threshold}%?",
    ],
    "influenza_unvaccinated": [
        "Which living {who} have had no influenza vaccination (CVX {cvx}) since the current season began on {season}?",
        "List the living {who} with no seasonal influenza vaccine (CVX {cvx}) given since {season}, the start of "
        "this season.",
        "For the flu campaign: which {who}, alive now, have not received an influenza vaccination (CVX {cvx}) since "
        "{season}?",
        "Across the population, which living {who} still lack an influenza vaccine (CVX {cvx}) this season (since "
        "{season})?",
        "Who among the living {who} is unvaccinated against influenza (CVX {cvx}) since the season started on "
        "{season}?",
    ],
}
FORMS = list(PHRASINGS)


# measure -> (youngest lower bound, oldest upper bound) of the age bands drawn for its items
AGE_RANGES = {
    "hypertension_uncontrolled": (18, 85),
    "diabetes_hba1c_above": (18, 75),
    "influenza_unvaccinated": (50, 100),
}
MIN_BAND = 15
SEXES = [None, "female", "male"]


@dataclass(frozen=True)
class Stratum:
    """Who is counted: an age band (completed years at now, both ends included) and optionally one sex."""

    age_min: int
    age_max: int
    sex: str | None = None

    @property
    def who(self) -> str:
        people = {"female": "women", "male": "men"}.get(self.sex or "", "patients")
        return f"{people} aged {self.age_min} to {self.age_max}"

    def holds(self, chart: Chart, now: datetime) -> bool:
        alive = chart.birth_date <= now.date() and (chart.deceased is None or chart.deceased > now)
        age = whole_years_between(chart.birth_date, now.date())
        return alive and self.age_min <= age <= self.age_max and (self.sex is None or chart.gender == self.sex)


def _diagnosed(chart: Chart, codes: set[str], now: datetime) -> bool:
    return any(c.code.code in codes and c.onset <= now for c in chart.conditions)


class _Ambiguous(Exception):
    pass


def _latest(chart: Chart, code: str, now: datetime) -> ObservationFact | None:
    """The most recent result of a code by now; two at the latest moment make the item ambiguous."""
    facts = [f for f in chart.values(code) if f.when <= now]
    if not facts:
        return None
    if len([f for f in facts if f.when == facts[-1].when]) != 1:
        raise _Ambiguous
    return facts[-1]


def hypertension_uncontrolled(charts: Sequence[Chart], now: datetime, who: Stratum) -> list[Chart]:
    out = []
    for chart in charts:
        if who.holds(chart, now) and _diagnosed(chart, {HYPERTENSION}, now):
            systolic, diastolic = _latest(chart, SYSTOLIC, now), _latest(chart, DIASTOLIC, now)
            if systolic is None or diastolic is None:
                continue
            if systolic.when != diastolic.when:
                raise _Ambiguous
            if systolic.value >= 140 or diastolic.value >= 90:
                out.append(chart)
    return out


def diabetes_hba1c_above(charts: Sequence[Chart], now: datetime, who: Stratum, threshold: float) -> list[Chart]:
    out = []
    for chart in charts:
        if who.holds(chart, now) and _diagnosed(chart, {PREDIABETES, DIABETES}, now):
            last = _latest(chart, HBA1C, now)
            if last is not None and last.value > threshold:
                out.append(chart)
    return out


def influenza_unvaccinated(charts: Sequence[Chart], now: datetime, who: Stratum) -> list[Chart]:
    start = datetime.combine(season_start(now), datetime.min.time(), tzinfo=UTC)
    return [
        chart
        for chart in charts
        if who.holds(chart, now)
        and not any(s.code.code == CVX_INFLUENZA and start <= s.when <= now for s in chart.immunizations)
    ]


def members_of(
    charts: Sequence[Chart], form: str, now: datetime, who: Stratum, threshold: float | None = None
) -> list[Chart]:
    """The patients a cohort item is about (raises _Ambiguous when a latest result is not unique)."""
    if form == "hypertension_uncontrolled":
        return hypertension_uncontrolled(charts, now, who)
    if form == "diabetes_hba1c_above":
        assert threshold is not None
        return diabetes_hba1c_above(charts, now, who, threshold)
    return influenza_unvaccinated(charts, now, who)


def generate_cohort(given: PopulationInput) -> list[Scenario]:
    """Every (form, now) item with a non-empty, unambiguous answer; split by the year of now."""
    charts, seed, test_patients = given.charts, given.seed, given.test_patients
    ordered = sorted(charts, key=lambda c: c.patient_id)
    living = [c for c in ordered if c.deceased is None and c.birth_date < date(YEARS[0], 1, 1)] or ordered
    anchor = {
        "test": next((c.patient_id for c in living if c.patient_id in test_patients), ordered[0].patient_id),
        "dev": next((c.patient_id for c in living if c.patient_id not in test_patients), ordered[0].patient_id),
    }
    out: list[Scenario] = []
    for form in FORMS:
        for year in YEARS:
            split = "test" if year in TEST_YEARS else "dev"
            for month in MONTHS:
                now = datetime(year, month, 1, 9, 0, tzinfo=UTC)
                rng = rng_for(seed, "hard", NAME, form, iso(now))
                for _ in range(STRATUM_TRIES):  # the first stratum whose answer is not empty
                    lowest, highest = AGE_RANGES[form]
                    age_min = rng.randint(lowest, highest - MIN_BAND)
                    who = Stratum(age_min, rng.randint(age_min + MIN_BAND, highest), rng.choice(SEXES))
                    threshold = rng.choice([7.0, 7.5, 8.0, 9.0]) if form == "diabetes_hba1c_above" else None
                    made = _item(ordered, form, now, who, threshold, split, anchor[split], seed)
                    if made is not None:
                        out.append(made)
                        break
    return out


def _item(
    charts: Sequence[Chart],
    form: str,
    now: datetime,
    who: Stratum,
    threshold: float | None,
    split: str,
    anchor: str,
    seed: int,
) -> Scenario | None:
    try:
        members = members_of(charts, form, now, who, threshold)
    except _Ambiguous:
        return None
    if len(members) < MIN_MEMBERS:
        return None
    key = (form, iso(now), who.age_min, who.age_max, who.sex, threshold)
    index, template = pick_phrasing(rng_for(seed, "hard", NAME, "phrasing", *key), PHRASINGS[form], split)
    question = template.format(
        who=who.who,
        pre=PREDIABETES,
        dm=DIABETES,
        htn=HYPERTENSION,
        hba1c=HBA1C,
        cvx=CVX_INFLUENZA,
        threshold=f"{threshold:.1f}" if threshold else "",
        season=season_start(now).isoformat(),
    )
    fmt = (
        "Ages are in completed years at now. Answer with the patients' MRNs (medical record numbers) separated "
        "by semicolons, or 'none' if no patient qualifies."
    )
    text = (
        f"It is now {iso(now)}. This question is about the whole patient population on the server, not one "
        f"patient; results dated after now are not yet known.\nQuestion: {question}\nAnswer format: {fmt}"
    )
    return Scenario(
        id=f"ehrqa-{NAME}-{form[:12]}-{short_hash(NAME, *key, length=8)}",
        suite="ehrqa",
        split=split,
        category=NAME,
        patient=anchor,
        now=iso(now),
        question=text,
        answer=names([c.mrn for c in members], "identifier"),
        provenance=sorted(f"Patient/{c.patient_id}" for c in members),
        tier="hard",
        meta={
            "form": form,
            "scope": "population",
            "threshold": threshold,
            "age_min": who.age_min,
            "age_max": who.age_max,
            "sex": who.sex,
            "phrasing": index,
            "key": [str(k) for k in key],
        },
    )


# ---------- the oracle: the stratum from every patient's row, then each member's records ----------


async def _patient_rows(tools: ToolCaller) -> list[dict[str, Any]]:
    result = await tools.call(
        "fhir_search",
        complete=True,
        resource_type="Patient",
        params={},
        fields=["birthDate", "gender", "deceasedDateTime"],
        limit=MAX_ROWS,
    )
    return result.rows


def _in_stratum(row: dict[str, Any], now: datetime, meta: dict[str, Any]) -> bool:
    died = row.get("deceasedDateTime")
    if isinstance(died, str) and utc_moment(died) <= now:
        return False
    born = row.get("birthDate")
    if not isinstance(born, str):
        return False
    age = whole_years_between(date.fromisoformat(born[:10]), now.date())
    sex = meta.get("sex")
    return bool(meta["age_min"] <= age <= meta["age_max"] and (sex is None or row.get("gender") == sex))


async def _diagnosed_patients(tools: ToolCaller, snomed: str) -> set[str]:
    result = await tools.call(
        "fhir_search",
        complete=True,
        resource_type="Condition",
        params={"code": f"{SNOMED}|{snomed}"},
        fields=["subject.reference"],
        limit=MAX_ROWS,
    )
    return {
        str(row["subject.reference"]).removeprefix("Patient/") for row in result.rows if row.get("subject.reference")
    }


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    form = sc.meta["form"]
    stratum = {
        row["ref"].removeprefix("Patient/")
        for row in await _patient_rows(tools)
        if _in_stratum(row, tools.now, sc.meta)
    }
    members: list[str] = []
    if form == "influenza_unvaccinated":
        season = task_text(r"(\d{4}-08-01)", sc.question, sc.id)
        for patient in sorted(stratum):
            result = await tools.call(
                "search_immunizations", patient=patient, code=CVX_INFLUENZA, since=season, limit=1
            )
            if not result.rows:
                members.append(patient)
    elif form == "hypertension_uncontrolled":
        for patient in sorted(stratum & await _diagnosed_patients(tools, HYPERTENSION)):
            systolic = await latest_observation(tools, patient, SYSTOLIC)
            diastolic = await latest_observation(tools, patient, DIASTOLIC)
            if systolic is None or diastolic is None:
                continue
            if systolic["ref"] != diastolic["ref"]:
                raise ToolGap(f"Patient/{patient}: the latest systolic and diastolic are in different panels")
            if numeric(systolic) >= 140 or numeric(diastolic) >= 90:
                members.append(patient)
    elif form == "diabetes_hba1c_above":
        threshold = float(sc.meta["threshold"])
        diagnosed = await _diagnosed_patients(tools, PREDIABETES) | await _diagnosed_patients(tools, DIABETES)
        for patient in sorted(stratum & diagnosed):
            row = await latest_observation(tools, patient, HBA1C)
            if row is not None and numeric(row) > threshold:
                members.append(patient)
    else:
        raise ToolGap(f"no cohort handler for form {form!r}")
    mrns = []
    for patient in members:
        result = await tools.call("get_patient", patient=patient)
        mrns.append(result.rows[0]["mrn"])
    return OracleAnswer("; ".join(sorted(mrns)) if mrns else "none", [f"Patient/{m}" for m in members])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=90,
        until=2,
        generate_population=generate_cohort,
        solve=solve,
        description="Quality-measure worklists over the whole population at a date: the MRNs of a stratum's patients "
        "who meet the measure.",
        phrasings=PHRASINGS,
    )
)
