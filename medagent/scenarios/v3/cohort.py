"""Cohort worklists (v3): measures over the whole population whose test items are far from every dev item.

Measures as in v2 (``hard.cohort``): uncontrolled hypertension (cf. CMS165), latest HbA1c above a threshold among
patients with prediabetes or diabetes (cf. CMS122), no influenza vaccination this season. What changes:

- Dates: dev items are dated in 2005-2013, test items in 2017-2020 (three years apart at least), on the first of
  a month; HbA1c thresholds 5.8/6.3/7.0/8.0% in dev, 6.0/6.5/7.5/8.5% in test; each item draws its own age band
  (5-14 years wide) and sex.
- No test answer set equals a dev answer set (such test items are dropped), so copying the nearest dev item's
  answer is never exactly right.
- Worklist sizes: each (measure, date) draws a size from 2 to 6 and a stratum of that size is searched for.
- Solvable within the agent's limits: at most 11 patients born in the band (one page of a Patient search sorted
  by birth date) and at most 7 of them with the diagnosis (one latest-result search each).

Answers: the patients' MRNs (or Patient ids) as a set. The item's ``patient`` is a patient of the split alive at
every date (the runner needs one); the question names none.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from medagent.scenarios.category import Category, register
from medagent.scenarios.chart import Chart
from medagent.scenarios.chart_reads import every_row, latest_observation
from medagent.scenarios.clock import iso
from medagent.scenarios.codes import (
    BP_PANEL_CODES,
    CVX_INFLUENZA,
    DIABETES,
    DIASTOLIC,
    HBA1C,
    HYPERTENSION,
    PREDIABETES,
    SYSTOLIC,
)
from medagent.scenarios.expect import names
from medagent.scenarios.hard.cohort import (
    PHRASINGS,
    Stratum,
    _Ambiguous,
    _diagnosed,
    members_of,
    season_start,
)
from medagent.scenarios.hard.common import pick_phrasing
from medagent.scenarios.identity import rng_for, short_hash
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller, ToolGap
from medagent.scenarios.tool_rows import numeric, task_text, utc_moment
from medagent.scenarios.v3.common import TAG

NAME = "cohort_measure"
DEV_YEARS = range(2005, 2014)
TEST_YEARS = range(2017, 2021)
THRESHOLDS = {"dev": [5.8, 6.3, 7.0, 8.0], "test": [6.0, 6.5, 7.5, 8.5]}
AGE_RANGES = {
    "hypertension_uncontrolled": (18, 85),
    "diabetes_hba1c_above": (18, 75),
    "influenza_unvaccinated": (50, 100),
}
SIZES = [2, 3, 4, 5, 6]
MAX_BORN_IN_BAND = 11
MAX_DIAGNOSED = 7
TRIES = 200
DIAGNOSES = {"hypertension_uncontrolled": {HYPERTENSION}, "diabetes_hba1c_above": {PREDIABETES, DIABETES}}
ANSWER_FORMAT = (
    "Ages are in completed years at now. Answer with the patients' MRNs (medical record numbers) or "
    "Patient ids, separated by semicolons, or 'none' if no patient qualifies."
)


def _born_in_band(charts: Sequence[Chart], now: datetime, who: Stratum) -> int:
    """Patients (living or not) whose birth date puts them in the band at now: the rows a sorted search lists."""
    return sum(
        1
        for c in charts
        if c.birth_date <= now.date()
        and (who.sex is None or c.gender == who.sex)
        and Stratum(who.age_min, who.age_max).holds(_ageless(c), now)
    )


def _ageless(chart: Chart) -> Chart:
    """The chart as if alive (the band counts every birth date in it)."""
    from dataclasses import replace

    return replace(chart, deceased=None)


def generate_cohort(charts: Sequence[Chart], seed: int, test_patients: set[str]) -> list[Scenario]:
    ordered = sorted(charts, key=lambda c: c.patient_id)
    living = [c for c in ordered if c.deceased is None and c.birth_date < date(2008, 1, 1)] or ordered
    anchor = {
        "test": next((c.patient_id for c in living if c.patient_id in test_patients), ordered[0].patient_id),
        "dev": next((c.patient_id for c in living if c.patient_id not in test_patients), ordered[0].patient_id),
    }
    made: list[tuple[Scenario, frozenset[str]]] = []
    for form in PHRASINGS:
        for split, years in (("dev", DEV_YEARS), ("test", TEST_YEARS)):
            for year in years:
                for month in range(1, 13):
                    now = datetime(year, month, 1, 9, 0, tzinfo=UTC)
                    rng = rng_for(seed, "v3", NAME, form, iso(now))
                    item = _draw(ordered, form, now, split, anchor[split], seed, rng)
                    if item is not None:
                        made.append(item)
    dev_answers = {answer for item, answer in made if item.split == "dev"}
    return [item for item, answer in made if item.split == "dev" or answer not in dev_answers]


def _draw(
    charts: Sequence[Chart], form: str, now: datetime, split: str, anchor: str, seed: int, rng: random.Random
) -> tuple[Scenario, frozenset[str]] | None:
    size = rng.choice(SIZES)
    lowest, highest = AGE_RANGES[form]
    for _ in range(TRIES):
        width = rng.randint(5, 14)
        age_min = rng.randint(lowest, highest - width)
        who = Stratum(age_min, age_min + width, rng.choice([None, "female", "male"]))
        threshold = rng.choice(THRESHOLDS[split]) if form == "diabetes_hba1c_above" else None
        if _born_in_band(charts, now, who) > MAX_BORN_IN_BAND:
            continue
        if (
            form in DIAGNOSES
            and sum(1 for c in charts if who.holds(c, now) and _diagnosed(c, DIAGNOSES[form], now)) > MAX_DIAGNOSED
        ):
            continue
        try:
            members = members_of(charts, form, now, who, threshold)
        except _Ambiguous:
            continue
        if len(members) != size:
            continue
        return _item(form, now, who, threshold, split, anchor, seed, members), frozenset(c.patient_id for c in members)
    return None


def _item(
    form: str,
    now: datetime,
    who: Stratum,
    threshold: float | None,
    split: str,
    anchor: str,
    seed: int,
    members: list[Chart],
) -> Scenario:
    key = (form, iso(now), who.age_min, who.age_max, who.sex, threshold)
    index, template = pick_phrasing(rng_for(seed, "v3", NAME, "phrasing", *key), PHRASINGS[form], split)
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
    text = (
        f"It is now {iso(now)}. This question is about the whole patient population on the server, not one "
        f"patient; results dated after now are not yet known.\nQuestion: {question}\nAnswer format: "
        f"{ANSWER_FORMAT}"
    )
    aliases = {c.mrn: [c.patient_id, f"Patient/{c.patient_id}"] for c in members}
    return Scenario(
        id=f"{TAG}-ehrqa-{NAME}-{form[:12]}-{short_hash(TAG, NAME, *key, length=8)}",
        suite="ehrqa",
        split=split,
        category=NAME,
        patient=anchor,
        now=iso(now),
        question=text,
        answer=names([c.mrn for c in members], "identifier", aliases),
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


# ---------- the oracle ----------

PAGE = 12


def _band(now: datetime, age_min: int, age_max: int) -> tuple[date, date]:
    """The birth dates of the ages in completed years at now: (earliest, latest), both included."""
    today = now.date()

    def years_before(years: int) -> date:
        try:
            return today.replace(year=today.year - years)
        except ValueError:  # 29 February
            return today.replace(year=today.year - years, day=28)

    return years_before(age_max + 1) + timedelta(days=1), years_before(age_min)


async def _stratum(tools: ToolCaller, meta: dict[str, Any]) -> list[str]:
    """Patient ids living at now with a birth date in the band (and the sex asked): a Patient search sorted by birth
    date from the band's first day, read page by page until a birth date passes the band."""
    earliest, latest = _band(tools.now, meta["age_min"], meta["age_max"])
    params = {"birthdate": f"ge{earliest.isoformat()}", "_sort": "birthdate"}
    if meta.get("sex"):
        params["gender"] = meta["sex"]
    members: list[str] = []
    offset = 0
    while True:
        result = await tools.call(
            "fhir_search",
            resource_type="Patient",
            params=params,
            limit=PAGE,
            offset=offset,
            fields=["birthDate", "deceasedDateTime"],
        )
        for row in result.rows:
            born = date.fromisoformat(str(row["birthDate"])[:10])
            if born > latest:
                return members
            died = row.get("deceasedDateTime")
            if not (isinstance(died, str) and utc_moment(died) <= tools.now):
                members.append(row["ref"].removeprefix("Patient/"))
        if not result.truncated or not result.rows:
            return members
        offset += len(result.rows)


async def _subjects(tools: ToolCaller, resource_type: str, params: dict[str, str], path: str) -> set[str]:
    rows = await every_row(tools, "fhir_search", resource_type=resource_type, params=params, fields=[path])
    return {str(row[path]).removeprefix("Patient/") for row in rows if row.get(path)}


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    """The stratum from one sorted Patient search, the diagnosis or the vaccination of its members in one search,
    then each diagnosed member's latest result."""
    form, meta = sc.meta["form"], sc.meta
    stratum = await _stratum(tools, meta)
    if not stratum:
        return OracleAnswer("none", [])
    ids = ",".join(stratum)
    members: list[str] = []
    if form == "influenza_unvaccinated":
        season = task_text(r"(\d{4}-08-01)(?!T)", sc.question, sc.id)  # the season's start the question states
        vaccinated = await _subjects(
            tools,
            "Immunization",
            {"patient": ids, "vaccine-code": CVX_INFLUENZA, "date": f"ge{season}"},
            "patient.reference",
        )
        members = [p for p in stratum if p not in vaccinated]
    else:
        codes = ",".join(sorted(DIAGNOSES[form]))
        diagnosed = await _subjects(tools, "Condition", {"patient": ids, "code": codes}, "subject.reference")
        for patient in [p for p in stratum if p in diagnosed]:
            if form == "hypertension_uncontrolled":
                result = await tools.call(
                    "search_observations", patient=patient, code=",".join(BP_PANEL_CODES), latest=1
                )
                panels = sorted(result.rows, key=lambda r: utc_moment(r.get("date")))
                if not panels:
                    continue
                parts = {c["code"]: c["value"] for c in panels[-1].get("components") or []}
                if SYSTOLIC not in parts or DIASTOLIC not in parts:
                    raise ToolGap(f"{panels[-1]['ref']}: a blood pressure without both components")
                if parts[SYSTOLIC] >= 140 or parts[DIASTOLIC] >= 90:
                    members.append(patient)
            else:
                row = await latest_observation(tools, patient, HBA1C)
                if row is not None and numeric(row) > float(meta["threshold"]):
                    members.append(patient)
    return OracleAnswer("; ".join(sorted(members)) or "none", [f"Patient/{p}" for p in members])


CATEGORY = register(
    Category(
        name=NAME,
        suite="ehrqa",
        tier="hard",
        order=90,
        since=3,
        solve=solve,
        generate_population=lambda given: generate_cohort(given.charts, given.seed, set(given.test_patients)),
        phrasings=PHRASINGS,
        description="Quality-measure worklists over the whole population at a date; test dates (2017-2020), strata and "
        "thresholds far from dev's, no test answer set equal to a dev one, worklists of 2 to 6.",
    )
)
