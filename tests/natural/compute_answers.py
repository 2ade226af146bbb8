"""Answers of the natural-phrasing set, computed straight from the Synthea bundles (json and zipfile only).

Each question of ``scenarios/natural`` carries in ``meta.spec`` what it asks in terms of the chart (codes, a
drug, an event, a window), written by hand beside the question. This script reads the raw bundle of the
question's patient, keeps only what was recorded on or before the question's ``now`` (entered-in-error and
refuted records dropped), and computes the typed expected answer (the shape of medagent's ``ExpectedAnswer``),
the resource ids that justify it (``provenance``), the free answer's kind (``meta.answer_kind``) and, where
one of the project's oracle forms asks the same thing by the same rule, that form (``meta.form``/``meta.key``).
``--write`` stores them in the set's JSONL files; without it every answer is recomputed and compared
(exit 1 on a difference).

It is a separate path to the ground truth, written apart from medagent's scenario generators: it must not
import medagent (``tests/natural/test_natural_set.py`` checks that).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------------
# Vocabulary: what a clinician's words mean in the chart's codes (written from the bundles' codes)
# --------------------------------------------------------------------------------------------------

#: vaccine words -> CVX codes (tetanus: every tetanus-containing vaccine)
VACCINES: dict[str, set[str]] = {
    "flu": {"140", "141", "135", "150", "158", "161", "88", "15", "16", "111"},
    "tetanus": {"113", "115", "20", "138", "139", "09", "106", "107", "110", "120", "50", "130", "146"},
    "tdap": {"115"},
    "td": {"113", "138", "139", "09"},
    "pneumococcal": {"133", "33", "100", "109", "152", "215", "216"},
    "pcv13": {"133"},
    "ppsv23": {"33"},
    "zoster": {"121", "187", "188"},
    "hepatitis_b": {"43", "08", "44", "45", "110", "104"},
    "hepatitis_a": {"52", "83", "104"},
    "hpv": {"62", "165", "118"},
    "meningococcal": {"114", "136", "147", "32", "108"},
    "mmr": {"03", "94"},
    "varicella": {"21", "94"},
    "polio": {"10", "110", "120", "130", "146"},
    "dtap": {"20", "106", "107", "110", "120", "130", "146"},
    "hib": {"49", "48", "17", "120", "146"},
    "rotavirus": {"119", "116", "122"},
}

#: condition kinds (SNOMED CT) for "any heart disease?"-style questions; situations ("History of ...")
#: are left out: they always come with the disorder itself
CONDITION_KINDS: dict[str, set[str]] = {
    "heart_disease": {"53741008", "22298006", "410429000", "49436004", "88805009"},
    "diabetes": {"44054006", "368581000119106", "127013003", "422034002"},
    "diabetes_complication": {"368581000119106", "127013003", "422034002"},
    "kidney_disease": {"431855005", "127013003"},
    "cancer": {"92691004", "126906006", "363406005", "109838007", "93761005", "424132000", "254637007"},
    "fracture": {"263102004", "58150001", "65966004", "16114001"},
    "injury": {
        "263102004", "58150001", "65966004", "16114001", "44465007", "70704007", "62106007", "62564004",
        "39848009", "403190006", "403191005", "48333001", "370247008", "284551006", "284549007",
        "283385000", "307731004", "275272006", "127295002", "444470001", "444448004", "30832001",
    },
    "head_injury": {"62106007", "62564004", "275272006", "127295002"},
    "sinusitis": {"444814009", "40055000", "36971009", "75498004"},
    "throat_infection": {"195662009", "43878008"},
    "respiratory_infection": {"10509002", "444814009", "36971009", "75498004", "195662009", "43878008"},
    "pregnancy_complication": {"19169002", "79586000", "198992004", "398254007", "35999006", "156073000"},
    "pregnancy": {"72892002"},
    "substance_use": {"7200002", "55680006", "5602001"},
    "seizure_disorder": {"84757009", "128613002"},
    "dementia": {"26929004", "230265002"},
    "lipid_disorder": {"55822004", "302870006"},
    "arthritis": {"239873007", "239872002", "201834006", "69896004", "90560007"},
    "chronic_lung_disease": {"185086009", "233678006"},
    "hypertension": {"38341003"},
    "obesity": {"162864005"},
    "anemia": {"271737000"},
    "burn": {"403190006", "403191005", "48333001"},
}

#: drug classes (RxNorm) for "ever on birth control?"-style questions
DRUG_CLASSES: dict[str, set[str]] = {
    "contraceptive": {
        "389221", "1000126", "748879", "807283", "748962", "757594", "831533", "749785", "748856",
        "1534809", "978950", "1367439",
    },
    "antibiotic": {"308182", "562251", "834061"},
    "anticoagulant": {"855332"},
    "statin": {"312961", "316672"},
    "opioid": {"1049221"},
    "nsaid": {"849574", "310965", "198405"},
    "diuretic": {"316049", "316052", "315971", "1719286"},
    "insulin": {"106892"},
    "antiepileptic": {"1153378", "308971"},
    "dementia_drug": {"310436", "996740"},
    "antiplatelet": {"309362"},
}

#: words a clinician uses for each medication of the test patients (for grading lists and names)
MEDICATION_ALIASES: dict[str, list[str]] = {
    "860975": ["metformin"],
    "106892": ["insulin", "humulin"],
    "389221": ["etonogestrel", "nexplanon", "implanon"],
    "1000126": ["medroxyprogesterone", "depo-provera", "depo provera"],
    "748879": ["levora", "levonorgestrel"],
    "807283": ["mirena", "levonorgestrel"],
    "748962": ["camila", "norethindrone"],
    "757594": ["jolivette", "norethindrone"],
    "831533": ["errin", "norethindrone"],
    "749785": ["ortho tri-cyclen", "ortho tri cyclen", "norgestimate"],
    "748856": ["yaz", "drospirenone"],
    "1534809": ["norelgestromin", "ethinyl estradiol", "xulane", "ortho evra", "patch"],
    "978950": ["natazia", "dienogest", "estradiol valerate"],
    "1367439": ["nuvaring", "etonogestrel"],
    "316052": ["hydrochlorothiazide", "hctz"],
    "316049": ["hydrochlorothiazide", "hctz"],
    "2001499": ["vitamin b 12", "vitamin b12", "b12", "cyanocobalamin"],
    "1043400": ["dextromethorphan", "doxylamine", "acetaminophen"],
    "313782": ["acetaminophen", "tylenol", "paracetamol"],
    "897718": ["verapamil"],
    "197604": ["digoxin"],
    "855332": ["warfarin", "coumadin"],
    "849574": ["naproxen", "aleve"],
    "309362": ["clopidogrel", "plavix"],
    "705129": ["nitroglycerin", "nitro", "gtn"],
    "312961": ["simvastatin", "zocor"],
    "316672": ["simvastatin", "simvistatin", "zocor"],
    "197361": ["amlodipine", "norvasc"],
    "1860480": ["docetaxel", "taxotere"],
    "752899": ["leuprolide", "lupron"],
    "310965": ["ibuprofen", "advil", "motrin"],
    "198405": ["ibuprofen", "advil", "motrin"],
    "866414": ["metoprolol", "toprol"],
    "315971": ["lasix", "furosemide"],
    "1719286": ["furosemide", "lasix"],
    "1153378": ["clonazepam", "klonopin"],
    "308971": ["carbamazepine", "tegretol"],
    "310325": ["ferrous sulfate", "iron"],
    "1049221": ["oxycodone", "percocet"],
    "562251": ["amoxicillin", "clavulanate", "augmentin", "amox-clav", "amox/clav"],
    "308182": ["amoxicillin"],
    "834061": ["penicillin"],
    "310436": ["galantamine", "razadyne"],
    "996740": ["memantine", "namenda"],
    "904419": ["alendronic acid", "alendronate", "fosamax"],
    "1660014": ["epinephrine", "adrenaline"],
    "834357": ["amiodarone"],
    "1190795": ["atropine"],
}

#: words a clinician uses for the conditions that list answers name
CONDITION_ALIASES: dict[str, list[str]] = {
    "53741008": ["coronary", "CAD", "CHD", "ischemic heart disease"],
    "22298006": ["myocardial infarction", "heart attack", "MI", "STEMI", "NSTEMI"],
    "410429000": ["cardiac arrest"],
    "49436004": ["atrial fibrillation", "afib", "a-fib", "AF"],
    "88805009": ["heart failure", "CHF", "HF"],
    "263102004": ["wrist"],
    "58150001": ["clavicle", "collarbone", "collar bone"],
    "65966004": ["forearm"],
    "16114001": ["ankle"],
    "44054006": ["diabetes", "T2DM", "DM"],
    "368581000119106": ["neuropathy"],
    "127013003": ["diabetic renal disease", "diabetic kidney disease", "diabetic nephropathy"],
    "431855005": ["chronic kidney disease", "CKD"],
    "92691004": ["carcinoma in situ"],
    "126906006": ["neoplasm of prostate", "prostate neoplasm", "prostate cancer", "prostate tumor"],
    "55822004": ["hyperlipidemia"],
    "302870006": ["hypertriglyceridemia", "high triglycerides"],
    "19169002": ["miscarriage"],
    "79586000": ["tubal", "ectopic"],
    "198992004": ["eclampsia"],
    "10509002": ["bronchitis"],
    "444814009": ["viral sinusitis"],
    "195662009": ["pharyngitis"],
    "43878008": ["strep"],
    "7200002": ["alcoholism", "alcohol use disorder", "alcohol dependence"],
    "55680006": ["overdose"],
    "44465007": ["ankle sprain", "sprained ankle", "sprain"],
}

#: the smoking-status answers that mean "smokes now"
CURRENT_SMOKER = {"Every day smoker", "Some day smoker", "Smokes tobacco daily", "Current every day smoker",
                  "Current some day smoker", "Heavy tobacco smoker", "Light tobacco smoker"}

LOINC_BP = "55284-4"

# --------------------------------------------------------------------------------------------------
# The chart as of "now"
# --------------------------------------------------------------------------------------------------


class SpecError(ValueError):
    """The spec cannot be answered unambiguously from the chart (a tie, a missing same-day value)."""


def parse_time(text: str) -> dt.datetime:
    """An ISO instant, a dateTime or a date, as an aware UTC datetime (dates at 00:00)."""
    if len(text) == 10:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = dt.datetime.combine(value.date(), value.time(), dt.UTC)
    return value.astimezone(dt.UTC)


def ref_id(reference: dict[str, Any]) -> str:
    return str(reference["reference"]).split(":")[-1].split("/")[-1]


def first_coding(concept: dict[str, Any]) -> dict[str, Any]:
    return dict(concept.get("coding", [{}])[0])


def human_name(resource: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(full name without prefix, family, given names) of a Patient or Practitioner."""
    names = resource.get("name", [])
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = [str(g) for g in official.get("given", [])]
    family = str(official.get("family", ""))
    return " ".join([*given, family]).strip(), family, given


@dataclass
class Chart:
    """One patient's bundle, cut at the question's now; entered-in-error records dropped."""

    patient: dict[str, Any]
    now: dt.datetime
    conditions: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)
    immunizations: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    encounters: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def birth(self) -> dt.date:
        return dt.date.fromisoformat(self.patient["birthDate"])

    def death(self) -> dt.datetime | None:
        text = self.patient.get("deceasedDateTime")
        return parse_time(text) if text and parse_time(text) <= self.now else None


def condition_time(r: dict[str, Any]) -> dt.datetime:
    return parse_time(r.get("onsetDateTime") or r.get("recordedDate") or r["onsetPeriod"]["start"])


def medication_time(r: dict[str, Any]) -> dt.datetime:
    return parse_time(r["authoredOn"])


def immunization_time(r: dict[str, Any]) -> dt.datetime:
    return parse_time(r["occurrenceDateTime"])


def observation_time(r: dict[str, Any]) -> dt.datetime:
    return parse_time(r.get("effectiveDateTime") or r["effectivePeriod"]["start"])


def encounter_time(r: dict[str, Any]) -> dt.datetime:
    return parse_time(r["period"]["start"])


def _status(r: dict[str, Any]) -> str:
    if r["resourceType"] == "Condition":
        return str(first_coding(r.get("verificationStatus", {})).get("code", "confirmed"))
    return str(r.get("status", ""))


EXCLUDED_STATUSES = {"entered-in-error", "refuted", "cancelled", "draft", "not-done", "preliminary"}


def load_chart(bundle: dict[str, Any], now: dt.datetime) -> Chart:
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    chart = Chart(patient=patient, now=now, by_id={r["id"]: r for r in resources})
    timed: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any]], dt.datetime]]] = {
        "Condition": (chart.conditions, condition_time),
        "MedicationRequest": (chart.medications, medication_time),
        "Immunization": (chart.immunizations, immunization_time),
        "Observation": (chart.observations, observation_time),
        "Encounter": (chart.encounters, encounter_time),
    }
    for r in resources:
        slot = timed.get(r["resourceType"])
        if slot is None or _status(r) in EXCLUDED_STATUSES:
            continue
        rows, when = slot
        if when(r) <= now:
            rows.append(r)
    for rows, when in timed.values():
        rows.sort(key=when)
    return chart


# --------------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------------


def condition_codes(spec: dict[str, Any]) -> set[str]:
    if "kind" in spec:
        return CONDITION_KINDS[spec["kind"]]
    return set(spec["codes"])


def match_conditions(chart: Chart, spec: dict[str, Any]) -> list[dict[str, Any]]:
    codes = condition_codes(spec)
    return [r for r in chart.conditions if first_coding(r["code"]).get("code") in codes]


def med_code(r: dict[str, Any]) -> str:
    return str(first_coding(r["medicationCodeableConcept"]).get("code"))


def med_display(r: dict[str, Any]) -> str:
    return str(first_coding(r["medicationCodeableConcept"]).get("display"))


def match_meds(chart: Chart, drug: dict[str, Any] | None) -> list[dict[str, Any]]:
    if drug is None:
        return list(chart.medications)
    if "class" in drug:
        codes = DRUG_CLASSES[drug["class"]]
        return [r for r in chart.medications if med_code(r) in codes]
    if "codes" in drug:
        return [r for r in chart.medications if med_code(r) in set(drug["codes"])]
    pattern = re.compile(drug["text"], re.IGNORECASE)
    return [r for r in chart.medications if pattern.search(med_display(r))]


def vaccine_code(r: dict[str, Any]) -> str:
    return str(first_coding(r["vaccineCode"]).get("code"))


def match_immunizations(chart: Chart, vaccine: str) -> list[dict[str, Any]]:
    codes = VACCINES[vaccine]
    return [r for r in chart.immunizations if vaccine_code(r) in codes]


def obs_code(r: dict[str, Any]) -> str:
    return str(first_coding(r["code"]).get("code"))


def obs_quantity(r: dict[str, Any], component: str | None) -> tuple[float, str] | None:
    if component is None:
        q = r.get("valueQuantity")
    else:
        q = next((c.get("valueQuantity") for c in r.get("component", [])
                  if first_coding(c["code"]).get("code") == component), None)
    if q is None or "value" not in q:
        return None
    return float(q["value"]), str(q.get("code") or q.get("unit") or "")


def match_observations(chart: Chart, code: str, component: str | None) -> list[tuple[dict[str, Any], float, str]]:
    rows = []
    for r in chart.observations:
        if obs_code(r) != code:
            continue
        q = obs_quantity(r, component)
        if q is not None:
            rows.append((r, q[0], q[1]))
    return rows


def encounter_matches(r: dict[str, Any], spec: dict[str, Any]) -> bool:
    if "class" in spec and r["class"]["code"] not in set(spec["class"]):
        return False
    if "type_text" in spec:
        text = " ".join(t.get("text", "") for t in r.get("type", []))
        if not re.search(spec["type_text"], text, re.IGNORECASE):
            return False
    return True


# --------------------------------------------------------------------------------------------------
# Events and windows
# --------------------------------------------------------------------------------------------------


@dataclass
class Event:
    when: dt.datetime
    references: list[str]


def pick(rows: list[dict[str, Any]], which: str, when: Callable[[dict[str, Any]], dt.datetime]) -> dict[str, Any]:
    if not rows:
        raise SpecError("no record for the event")
    ordered = sorted(rows, key=when)
    return ordered[0] if which == "first" else ordered[-1]


def resolve_event(chart: Chart, spec: dict[str, Any]) -> Event:
    if "date" in spec:
        return Event(parse_time(spec["date"]), [])
    if spec.get("now"):
        return Event(chart.now, [])
    if spec.get("birth"):
        return Event(parse_time(chart.patient["birthDate"]), [f"Patient/{chart.patient['id']}"])
    if spec.get("death"):
        death = chart.death()
        if death is None:
            raise SpecError("the patient has not died by now")
        return Event(death, [f"Patient/{chart.patient['id']}"])
    which = spec.get("which", "first")
    if "condition" in spec:
        r = pick(match_conditions(chart, spec["condition"]), which, condition_time)
        return Event(condition_time(r), [f"Condition/{r['id']}"])
    if "med" in spec:
        r = pick(match_meds(chart, spec["med"]), which, medication_time)
        return Event(medication_time(r), [f"MedicationRequest/{r['id']}"])
    if "immunization" in spec:
        r = pick(match_immunizations(chart, spec["immunization"]), which, immunization_time)
        return Event(immunization_time(r), [f"Immunization/{r['id']}"])
    if "encounter" in spec:
        rows = [r for r in chart.encounters if encounter_matches(r, spec["encounter"])]
        r = pick(rows, which, encounter_time)
        return Event(encounter_time(r), [f"Encounter/{r['id']}"])
    raise SpecError(f"unknown event {spec}")


@dataclass
class Window:
    start: dt.date
    end: dt.date
    references: list[str]

    def holds(self, when: dt.datetime) -> bool:
        return self.start <= when.date() <= self.end


def resolve_window(chart: Chart, spec: dict[str, Any]) -> Window:
    refs: list[str] = []
    start = dt.date.min
    end = chart.now.date()
    if "from" in spec:
        event = resolve_event(chart, spec["from"])
        start = event.when.date() + dt.timedelta(days=int(spec.get("from_offset_days", 0)))
        refs += event.references
    if "to" in spec:
        event = resolve_event(chart, spec["to"])
        end = min(end, event.when.date() + dt.timedelta(days=int(spec.get("to_offset_days", 0))))
        refs += event.references
    if "last_days" in spec:
        start = chart.now.date() - dt.timedelta(days=int(spec["last_days"]))
    return Window(start, end, refs)


# --------------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------------

Answer = dict[str, Any]


@dataclass
class Result:
    expected: Answer
    references: list[str]


def yes_no(value: bool) -> Answer:
    return {"type": "yes_no", "value": value}


def date_answer(when: dt.datetime) -> Answer:
    return {"type": "date", "value": when.date().isoformat()}


def value_tolerance(value: float) -> float:
    """What a clinician's rounding may lose: one decimal, or half a percent of the value."""
    return round(max(0.05, 0.005 * abs(value)) + 1e-9, 4)


def number(value: float, unit: str, tolerance: float | None = None) -> Answer:
    tol = value_tolerance(value) if tolerance is None else tolerance
    return {"type": "number", "value": round(value, 4), "unit": unit, "tolerance": tol}


NOT_RECORDED: Answer = {"type": "not_recorded"}


def med_item(r: dict[str, Any]) -> dict[str, Any]:
    code = med_code(r)
    return {"name": med_display(r), "code": code, "aliases": MEDICATION_ALIASES.get(code, [])}


def med_list(rows: Iterable[dict[str, Any]]) -> Answer:
    """Distinct medications (by RxNorm code), in order of first prescription."""
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        seen.setdefault(med_code(r), med_item(r))
    return {"type": "list", "items": list(seen.values())}


def condition_list(rows: Iterable[dict[str, Any]]) -> Answer:
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        c = first_coding(r["code"])
        seen.setdefault(str(c["code"]), {"name": c["display"], "code": c["code"],
                                          "aliases": CONDITION_ALIASES.get(str(c["code"]), [])})
    return {"type": "list", "items": list(seen.values())}


def refs(kind: str, rows: Iterable[dict[str, Any]]) -> list[str]:
    return [f"{kind}/{r['id']}" for r in rows]


def only_one_at_latest(rows: list[tuple[dict[str, Any], float, str]], which: str) -> tuple[dict[str, Any], float, str]:
    """The first or last measurement; refuse a tie of different values on the same day."""
    if not rows:
        raise LookupError
    ordered = sorted(rows, key=lambda t: observation_time(t[0]))
    chosen = ordered[0] if which == "first" else ordered[-1]
    day = observation_time(chosen[0]).date()
    same_day = {round(v, 6) for r, v, _ in ordered if observation_time(r).date() == day}
    if len(same_day) > 1:
        raise SpecError(f"{len(same_day)} different values on {day}")
    return chosen


def answer_condition_any(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_conditions(chart, spec["condition"])
    if spec.get("active_only"):
        rows = [r for r in rows if first_coding(r.get("clinicalStatus", {})).get("code") == "active"]
    return Result(yes_no(bool(rows)), refs("Condition", rows))


def answer_condition_list(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_conditions(chart, spec["condition"])
    if spec.get("active_only"):
        rows = [r for r in rows if first_coding(r.get("clinicalStatus", {})).get("code") == "active"]
    return Result(condition_list(rows), refs("Condition", rows))


def answer_immunization_date(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_immunizations(chart, spec["vaccine"])
    if "window" in spec:
        window = resolve_window(chart, spec["window"])
        rows = [r for r in rows if window.holds(immunization_time(r))]
    if not rows:
        return Result(NOT_RECORDED, [])
    r = pick(rows, spec.get("which", "last"), immunization_time)
    return Result(date_answer(immunization_time(r)), [f"Immunization/{r['id']}"])


def answer_immunization_any(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_immunizations(chart, spec["vaccine"])
    return Result(yes_no(bool(rows)), refs("Immunization", rows))


def active_meds(chart: Chart) -> list[dict[str, Any]]:
    return [r for r in chart.medications if r.get("status") in {"active", "on-hold"}]


def answer_med_current_list(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = active_meds(chart)
    return Result(med_list(rows), refs("MedicationRequest", rows))


def answer_med_current_any(chart: Chart, spec: dict[str, Any]) -> Result:
    wanted = {r["id"] for r in match_meds(chart, spec["drug"])}
    rows = [r for r in active_meds(chart) if r["id"] in wanted]
    return Result(yes_no(bool(rows)), refs("MedicationRequest", rows or match_meds(chart, spec["drug"])))


def answer_med_ever(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_meds(chart, spec["drug"])
    return Result(yes_no(bool(rows)), refs("MedicationRequest", rows))


def answer_med_list(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_meds(chart, spec.get("drug"))
    if "window" in spec:
        window = resolve_window(chart, spec["window"])
        rows = [r for r in rows if window.holds(medication_time(r))]
    return Result(med_list(rows), refs("MedicationRequest", rows))


def answer_med_prescriber(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_meds(chart, spec["drug"])
    if not rows:
        return Result(NOT_RECORDED, [])
    which = spec.get("which", "last")
    if which == "only":
        prescribers = {ref_id(r["requester"]) for r in rows}
        if len(prescribers) != 1:
            raise SpecError(f"{len(prescribers)} prescribers")
        r = rows[-1]
    else:
        r = pick(rows, which, medication_time)
        day = medication_time(r).date()
        tied = {ref_id(x["requester"]) for x in rows if medication_time(x).date() == day}
        if len(tied) > 1:
            raise SpecError("two prescribers on the same day")
    practitioner = chart.by_id[ref_id(r["requester"])]
    full, family, given = human_name(practitioner)
    answer = {"type": "name", "value": full, "family": family, "given": given}
    return Result(answer, [f"MedicationRequest/{r['id']}", f"Practitioner/{practitioner['id']}"])


def answer_med_date(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_meds(chart, spec["drug"])
    if not rows:
        return Result(NOT_RECORDED, [])
    r = pick(rows, spec.get("which", "last"), medication_time)
    return Result(date_answer(medication_time(r)), [f"MedicationRequest/{r['id']}"])


def meds_for_condition(chart: Chart, condition: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Orders given for the condition: their reason names it, or, with no reason stated, they were written
    in the encounter where the condition was first recorded."""
    conditions = match_conditions(chart, condition)
    ids = {c["id"] for c in conditions}
    diagnosis_encounters = {ref_id(c["encounter"]) for c in conditions if "encounter" in c}
    rows = []
    for r in chart.medications:
        reasons = {ref_id(x) for x in r.get("reasonReference", [])}
        if reasons:
            if reasons & ids:
                rows.append(r)
        elif "encounter" in r and ref_id(r["encounter"]) in diagnosis_encounters:
            rows.append(r)
    return rows, conditions


def answer_med_for_condition(chart: Chart, spec: dict[str, Any]) -> Result:
    rows, conditions = meds_for_condition(chart, spec["condition"])
    if not conditions:
        raise SpecError("the patient never had the condition")
    return Result(med_list(rows), refs("MedicationRequest", rows) + refs("Condition", conditions))


def answer_med_for_condition_any(chart: Chart, spec: dict[str, Any]) -> Result:
    rows, conditions = meds_for_condition(chart, spec["condition"])
    if not conditions:
        raise SpecError("the patient never had the condition")
    return Result(yes_no(bool(rows)), refs("MedicationRequest", rows) + refs("Condition", conditions))


def answer_obs_value(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = match_observations(chart, spec["code"], spec.get("component"))
    if not rows:
        return Result(NOT_RECORDED, [])
    r, value, unit = only_one_at_latest(rows, spec.get("which", "last"))
    return Result(number(value, unit), [f"Observation/{r['id']}"])


def answer_obs_at(chart: Chart, spec: dict[str, Any]) -> Result:
    """The measurement taken at an event: the latest one on or before the event's day, required (unless
    the spec allows otherwise) to be on that very day."""
    event = resolve_event(chart, spec["event"])
    rows = [t for t in match_observations(chart, spec["code"], spec.get("component"))
            if observation_time(t[0]).date() <= event.when.date()]
    if not rows:
        return Result(NOT_RECORDED, event.references)
    r, value, unit = only_one_at_latest(rows, "last")
    if spec.get("same_day", True) and observation_time(r).date() != event.when.date():
        raise SpecError(f"no {spec['code']} on the event's day {event.when.date()}")
    return Result(number(value, unit), [f"Observation/{r['id']}", *event.references])


def answer_obs_window(chart: Chart, spec: dict[str, Any]) -> Result:
    window = resolve_window(chart, spec["window"])
    rows = [t for t in match_observations(chart, spec["code"], spec.get("component"))
            if window.holds(observation_time(t[0]))]
    agg = spec["agg"]
    if agg == "count":
        return Result(number(len(rows), "1", 0), refs("Observation", [t[0] for t in rows]) + window.references)
    if not rows:
        return Result(NOT_RECORDED, window.references)
    unit = rows[0][2]
    if agg in {"first", "last"}:
        r, value, unit = only_one_at_latest(rows, agg)
        return Result(number(value, unit), [f"Observation/{r['id']}", *window.references])
    values = [v for _, v, _ in rows]
    if agg == "max":
        chosen = max(rows, key=lambda t: t[1])
        return Result(number(chosen[1], unit), [f"Observation/{chosen[0]['id']}", *window.references])
    if agg == "min":
        chosen = min(rows, key=lambda t: t[1])
        return Result(number(chosen[1], unit), [f"Observation/{chosen[0]['id']}", *window.references])
    if agg == "mean":
        return Result(number(sum(values) / len(values), unit),
                      refs("Observation", [t[0] for t in rows]) + window.references)
    raise SpecError(f"unknown aggregate {agg}")


def answer_obs_coded_last(chart: Chart, spec: dict[str, Any]) -> Result:
    rows = [r for r in chart.observations if obs_code(r) == spec["code"] and "valueCodeableConcept" in r]
    if not rows:
        return Result(NOT_RECORDED, [])
    r = rows[-1]
    display = str(first_coding(r["valueCodeableConcept"]).get("display"))
    wanted = CURRENT_SMOKER if spec["values"] == "current_smoker" else set(spec["values"])
    return Result(yes_no(display in wanted), [f"Observation/{r['id']}"])


def answer_count_encounters(chart: Chart, spec: dict[str, Any]) -> Result:
    window = resolve_window(chart, spec.get("window", {}))
    rows = [r for r in chart.encounters
            if window.holds(encounter_time(r)) and encounter_matches(r, spec.get("encounter", {}))]
    return Result(number(len(rows), "1", 0), refs("Encounter", rows) + window.references)


def answer_count_prescriptions(chart: Chart, spec: dict[str, Any]) -> Result:
    window = resolve_window(chart, spec.get("window", {}))
    rows = [r for r in match_meds(chart, spec.get("drug")) if window.holds(medication_time(r))]
    return Result(number(len(rows), "1", 0), refs("MedicationRequest", rows) + window.references)


def answer_count_distinct_meds(chart: Chart, spec: dict[str, Any]) -> Result:
    window = resolve_window(chart, spec.get("window", {}))
    rows = [r for r in match_meds(chart, spec.get("drug")) if window.holds(medication_time(r))]
    return Result(number(len({med_code(r) for r in rows}), "1", 0), refs("MedicationRequest", rows) + window.references)


def answer_count_immunizations(chart: Chart, spec: dict[str, Any]) -> Result:
    window = resolve_window(chart, spec.get("window", {}))
    rows = [r for r in match_immunizations(chart, spec["vaccine"]) if window.holds(immunization_time(r))]
    return Result(number(len(rows), "1", 0), refs("Immunization", rows) + window.references)


def answer_count_conditions(chart: Chart, spec: dict[str, Any]) -> Result:
    window = resolve_window(chart, spec.get("window", {}))
    rows = [r for r in match_conditions(chart, spec["condition"]) if window.holds(condition_time(r))]
    return Result(number(len(rows), "1", 0), refs("Condition", rows) + window.references)


def whole_years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def answer_age_at(chart: Chart, spec: dict[str, Any]) -> Result:
    event = resolve_event(chart, spec["event"])
    age = whole_years(chart.birth, event.when.date())
    return Result(number(age, "a", 0), [f"Patient/{chart.patient['id']}", *event.references])


def answer_days_between(chart: Chart, spec: dict[str, Any]) -> Result:
    start = resolve_event(chart, spec["from"])
    end = resolve_event(chart, spec["to"])
    unit = spec.get("unit", "d")
    days = (end.when.date() - start.when.date()).days
    if unit == "a":
        value = whole_years(start.when.date(), end.when.date())
        return Result(number(value, "a", 0), start.references + end.references)
    return Result(number(days, "d", 0), start.references + end.references)


ANSWERS: dict[str, Callable[[Chart, dict[str, Any]], Result]] = {
    "condition_any": answer_condition_any,
    "condition_list": answer_condition_list,
    "immunization_date": answer_immunization_date,
    "immunization_any": answer_immunization_any,
    "med_current_list": answer_med_current_list,
    "med_current_any": answer_med_current_any,
    "med_ever": answer_med_ever,
    "med_list": answer_med_list,
    "med_prescriber": answer_med_prescriber,
    "med_date": answer_med_date,
    "med_for_condition": answer_med_for_condition,
    "med_for_condition_any": answer_med_for_condition_any,
    "obs_value": answer_obs_value,
    "obs_at": answer_obs_at,
    "obs_window": answer_obs_window,
    "obs_coded_last": answer_obs_coded_last,
    "count_encounters": answer_count_encounters,
    "count_prescriptions": answer_count_prescriptions,
    "count_distinct_meds": answer_count_distinct_meds,
    "count_immunizations": answer_count_immunizations,
    "count_conditions": answer_count_conditions,
    "age_at": answer_age_at,
    "days_between": answer_days_between,
}

# --------------------------------------------------------------------------------------------------
# The stored answer: medagent's ExpectedAnswer shape, the free answer's kind, the oracle's form
# --------------------------------------------------------------------------------------------------

#: other units a clinician may answer in -> factor into the chart's unit (only exact conversions)
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "kg": {"lb": 0.45359237, "lbs": 0.45359237, "g": 0.001},
    "cm": {"m": 100.0, "mm": 0.1, "in": 2.54},
    "mm[Hg]": {"mmHg": 1.0, "mm Hg": 1.0},
    "Cel": {"°C": 1.0, "C": 1.0, "degC": 1.0},
    "kg/m2": {"kg/m^2": 1.0},
    "mL/min/{1.73_m2}": {"mL/min/1.73m2": 1.0, "mL/min/1.73 m2": 1.0, "mL/min/1.73_m2": 1.0, "mL/min": 1.0},
    "mmol/L": {"mEq/L": 1.0},
    "10*3/uL": {"10^3/uL": 1.0, "x10^9/L": 1.0, "10*9/L": 1.0, "K/uL": 1.0},
    "10*6/uL": {"10^6/uL": 1.0, "x10^12/L": 1.0, "M/uL": 1.0},
    "g/dL": {"g/L": 0.1},
}
#: units that are no unit a person writes (scores, counts): the number alone is graded
UNITLESS = re.compile(r"^(\{.*\}|\(.*\)|1)$")
#: the relative and absolute spread of a measured value (see value_tolerance)
VALUE_TOLERANCE = {"abs": 0.05, "rel": 0.005}

#: the hard tier's categories (medagent's names) for the hard kinds; the EHRQA kinds are their own category
HARD_CATEGORY = {"temporal": "temporal_window", "counting": "count_aggregate", "intervals": "interval_age",
                 "abstention": "abstention"}


def same_drug_groups(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Orders of one drug in two products (Lasix 40mg and furosemide injection; HCTZ 6.25 and 25 MG) are one name
    of the answer: a clinician names the drug once. Items sharing a clinician's word are grouped, in order."""
    groups: list[list[dict[str, Any]]] = []
    for item in items:
        words = set(item["aliases"])
        group = next((g for g in groups if words & {w for i in g for w in i["aliases"]}), None)
        if group is None:
            groups.append([item])
        else:
            group.append(item)
    return groups


def condition_aliases(item: dict[str, Any]) -> list[str]:
    plain = re.sub(r"\s*\((disorder|finding|situation|morphologic abnormality)\)$", "", item["name"])
    return ([plain] if plain != item["name"] else []) + list(item["aliases"])


#: ExpectedAnswer's fields and their defaults
ANSWER_DEFAULTS: dict[str, Any] = {"type": "", "value": None, "unit": None, "tolerance": {"abs": 0.0, "rel": 0.0, "days": 0},
                                   "unit_factors": {}, "names_kind": "generic", "aliases": {}, "fields": {}, "free": False}


def expected_answer(typed: Answer, spec: dict[str, Any]) -> dict[str, Any]:
    """The typed answer as medagent's ExpectedAnswer (every field written); ``free``: no question of the set has a
    format line, so each is graded from the free sentence an agent writes."""
    return {**typed_answer(typed, spec), "free": True}


def typed_answer(typed: Answer, spec: dict[str, Any]) -> dict[str, Any]:
    base = ANSWER_DEFAULTS
    op = spec["op"]
    kind = typed["type"]
    if kind == "yes_no":
        return {**base, "type": "boolean", "value": typed["value"]}
    if kind == "date":
        return {**base, "type": "date", "value": typed["value"]}
    if kind == "not_recorded":
        shape = {"immunization_date": "date", "med_date": "date", "med_prescriber": "names"}.get(op, "number")
        return {**base, "type": shape, "value": [] if shape == "names" else None,
                "names_kind": "person" if shape == "names" else "generic"}
    if kind == "name":
        full = typed["value"]
        return {**base, "type": "names", "value": [full], "names_kind": "person", "aliases": {full: [typed["family"]]}}
    if kind == "list":
        medication = op.startswith("med")
        groups = same_drug_groups(typed["items"]) if medication else [[i] for i in typed["items"]]
        aliases: dict[str, list[str]] = {}
        for group in groups:
            head, others = group[0], group[1:]
            words = [w for i in group for w in (i["aliases"] if medication else condition_aliases(i))]
            aliases[head["name"]] = list(dict.fromkeys([*(i["name"] for i in others), *words]))
        return {**base, "type": "names", "value": [g[0]["name"] for g in groups],
                "names_kind": "medication" if medication else "condition",
                "aliases": {k: v for k, v in aliases.items() if v}}
    unit = typed["unit"]
    if unit == "1":  # a count
        return {**base, "type": "number", "value": typed["value"]}
    if unit == "a":
        return {**base, "type": "number", "value": typed["value"], "unit": "years",
                "unit_factors": {"yr": 1.0, "yrs": 1.0, "a": 1.0}}
    if unit == "d":
        return {**base, "type": "number", "value": typed["value"], "unit": "days", "unit_factors": {"d": 1.0}}
    tolerance = {**base["tolerance"], **VALUE_TOLERANCE}
    if UNITLESS.match(unit):
        return {**base, "type": "number", "value": typed["value"], "tolerance": tolerance}
    return {**base, "type": "number", "value": typed["value"], "unit": unit, "tolerance": tolerance,
            "unit_factors": UNIT_FACTORS.get(unit, {})}


def answer_kind(typed: Answer, answer: dict[str, Any]) -> str:
    """The free answer's kind (medagent.scenarios.free_answers): what sentence a right answer is."""
    if answer["type"] == "boolean":
        return "yes_no"
    if answer["type"] == "date":
        return "date"
    if answer["type"] == "names":
        return "person" if answer["names_kind"] == "person" else "list"
    return "age" if answer.get("unit") == "years" else "value"


def oracle_form(chart: Chart, spec: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The form of medagent's EHRQA oracle (``meta.form``, ``meta.key``) that answers this spec by the same rule,
    or None where no form does (windows, counts, ages, lists of conditions, a drug the chart never names)."""
    op = spec["op"]

    def drug_codes() -> str:
        return ",".join(sorted({med_code(r) for r in match_meds(chart, spec["drug"])}))

    if op == "condition_any" and not spec.get("active_only"):
        return "condition", ["any", ",".join(sorted(condition_codes(spec["condition"])))]
    if op == "immunization_date" and "window" not in spec:
        which = spec.get("which", "last")
        return f"vaccine_{which}", [which, ",".join(sorted(VACCINES[spec["vaccine"]]))]
    if op == "med_current_list":
        return "med_current_list", ["any"]
    if op in {"med_current_any", "med_ever"} and drug_codes():
        return ("med_current" if op == "med_current_any" else "med_ever"), ["any", drug_codes()]
    if op == "med_prescriber" and spec.get("which", "last") == "last" and drug_codes():
        return "prescriber", ["last", drug_codes()]
    if op == "med_date" and drug_codes():
        which = spec.get("which", "last")
        return f"med_date_{which}", [which, drug_codes()]
    if op in {"med_for_condition", "med_for_condition_any"}:
        ours, conditions = meds_for_condition(chart, spec["condition"])
        ids = {c["id"] for c in conditions}
        by_reason = [r for r in chart.medications if {ref_id(x) for x in r.get("reasonReference", [])} & ids]
        if {r["id"] for r in ours} == {r["id"] for r in by_reason}:
            form = "meds_for_condition" if op == "med_for_condition" else "treated"
            return form, ["any", ",".join(sorted(condition_codes(spec["condition"])))]
        return None
    code = spec.get("component") or spec.get("code")
    if op == "obs_value" and spec.get("which", "last") == "last":
        return "obs_last", ["last", str(code)]
    if op == "obs_at" and spec["event"].get("which", "first") == "first":
        event = spec["event"]
        if "condition" in event:
            return "obs_at_condition", ["condition", ",".join(sorted(condition_codes(event["condition"]))), str(code)]
        if "med" in event:
            codes = ",".join(sorted({med_code(r) for r in match_meds(chart, event["med"])}))
            return "obs_at_medication", ["medication", codes, str(code)]
    return None


def category_of(kind: str) -> tuple[str, str]:
    """(category, tier) of a question kind."""
    return (HARD_CATEGORY[kind], "hard") if kind in HARD_CATEGORY else (kind, "core")


# --------------------------------------------------------------------------------------------------
# The set
# --------------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLES = REPO / "medagent" / "data" / "synthea" / "patients.zip"  # the packaged bundles (read as files)
DEFAULT_SET = REPO / "scenarios" / "natural"
SET_FILES = ("ehrqa/test.jsonl", "hard/test.jsonl")


def iter_bundle_files(source: Path) -> Iterable[dict[str, Any]]:
    """Every bundle of a folder of Synthea JSON files or of a ZIP of them."""
    if source.is_dir():
        for path in sorted(source.glob("*.json")):
            yield json.loads(path.read_text(encoding="utf-8"))
        return
    with zipfile.ZipFile(source) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".json"):
                yield json.loads(archive.read(name))


def load_bundles(source: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Patient id -> bundle, for the wanted patients."""
    found: dict[str, dict[str, Any]] = {}
    for bundle in iter_bundle_files(source):
        patient = next((e["resource"] for e in bundle.get("entry", [])
                        if e["resource"]["resourceType"] == "Patient"), None)
        if patient is not None and patient["id"] in wanted:
            found[patient["id"]] = bundle
    missing = wanted - set(found)
    if missing:
        raise SystemExit(f"no bundle in {source} for patients {sorted(missing)}")
    return found


@dataclass
class Computed:
    """What the script stores for one question."""

    answer: dict[str, Any]
    provenance: list[str]
    answer_kind: str
    oracle: tuple[str, list[str]] | None


def compute(row: dict[str, Any], bundles: dict[str, dict[str, Any]]) -> Computed:
    chart = load_chart(bundles[row["patient"]], parse_time(row["now"]))
    spec = row["meta"]["spec"]
    result = ANSWERS[spec["op"]](chart, spec)
    answer = expected_answer(result.expected, spec)
    return Computed(answer, result.references, answer_kind(result.expected, answer), oracle_form(chart, spec))


def compute_all(rows: list[dict[str, Any]], bundles: dict[str, dict[str, Any]]) -> list[Computed]:
    results, errors = [], []
    for row in rows:
        try:
            results.append(compute(row, bundles))
        except (SpecError, KeyError, LookupError) as error:
            errors.append(f"{row['id']}: {type(error).__name__}: {error}")
    if errors:
        raise SystemExit("\n".join(errors))
    return results


def stored(row: dict[str, Any], computed: Computed) -> dict[str, Any]:
    """The row with the computed parts written into it."""
    meta = {k: v for k, v in row["meta"].items() if k not in {"answer_kind", "form", "key"}}
    meta["answer_kind"] = computed.answer_kind
    category, tier = category_of(meta["kind"])
    if computed.oracle is not None and tier == "core":  # the oracle answers the hard tier by its own categories
        meta["form"], meta["key"] = computed.oracle
    return {**row, "category": category, "tier": tier, "answer": computed.answer,
            "provenance": computed.provenance, "meta": meta}


def canonical(answer: dict[str, Any]) -> dict[str, Any]:
    """An ExpectedAnswer dict with its defaults filled (a writer may leave them out)."""
    tolerance = {**ANSWER_DEFAULTS["tolerance"], **answer.get("tolerance", {})}
    return {**ANSWER_DEFAULTS, **answer, "tolerance": tolerance}


def differences(row: dict[str, Any], computed: Computed) -> list[str]:
    want = stored(row, computed)
    out = []
    if canonical(row.get("answer", {})) != canonical(want["answer"]):
        out.append("answer")
    defaults: dict[str, Any] = {"provenance": [], "tier": "core"}  # a writer may leave defaults out
    for key in ("provenance", "category", "tier"):
        if row.get(key, defaults.get(key)) != want[key]:
            out.append(key)
    if {k: row["meta"].get(k) for k in ("answer_kind", "form", "key")} != \
            {k: want["meta"].get(k) for k in ("answer_kind", "form", "key")}:
        out.append("meta")
    return out


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def set_rows(folder: Path) -> dict[Path, list[dict[str, Any]]]:
    return {folder / name: read_rows(folder / name) for name in SET_FILES if (folder / name).exists()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("set", type=Path, nargs="?", default=DEFAULT_SET, help="the set's folder (scenarios/natural)")
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES,
                        help="a folder or ZIP of Synthea bundles (default: the packaged ZIP)")
    parser.add_argument("--write", action="store_true", help="store the computed answers in the set's files")
    args = parser.parse_args(argv)
    files = set_rows(args.set)
    if not files:
        raise SystemExit(f"no {' or '.join(SET_FILES)} under {args.set}")
    rows = [row for file_rows in files.values() for row in file_rows]
    bundles = load_bundles(args.bundles, {r["patient"] for r in rows})
    computed = dict(zip((r["id"] for r in rows), compute_all(rows, bundles), strict=True))
    if args.write:
        by_file: dict[Path, list[dict[str, Any]]] = {args.set / name: [] for name in SET_FILES}
        for row in rows:
            new = stored(row, computed[row["id"]])
            by_file[args.set / ("hard/test.jsonl" if new["tier"] == "hard" else "ehrqa/test.jsonl")].append(new)
        for path, file_rows in by_file.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in file_rows), encoding="utf-8")
        print(f"wrote {len(rows)} answers to {args.set}")
        return 0
    differ = [(row["id"], d) for row in rows if (d := differences(row, computed[row["id"]]))]
    for row_id, parts in differ:
        print(f"differs: {row_id} ({', '.join(parts)})")
    print(f"{len(rows) - len(differ)} of {len(rows)} stored answers recomputed equal")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
