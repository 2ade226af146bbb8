"""Ground truth recomputed by a second, deliberately simple path straight from the raw bundle JSON.

Nothing here uses ``medagent.scenarios.chart`` or the generators: plain dict walking and string
dates. For every frozen scenario (v1, v2 and v3's core) whose category this path knows, the independently
computed answer is fed to the grader and must pass; for conditional tasks the branch must agree too.
The v2 rules (``is_v2``) are coded here a second time: the influenza season from 1 August, same-moment
duplicates counted once in the glucose average, the latest magnesium however old, HbA1c only with
diabetes or prediabetes, "at the time of" within 90 days, prescriber questions only where the usual
prescriber does not answer them, "treated for" only about conditions the patient has.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from medagent.scenarios.codes import CONDITION_GROUPS
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario

ANSWER_KEYS = {"magnesium_replacement": "magnesium", "potassium_replacement": "potassium",  # v3's JSON field names
               "influenza_vaccine_due": "last_flu_shot", "discontinue_medication": "last_order_date"}

Raw = dict[str, list[dict[str, Any]]]


def code_of(concept: dict[str, Any]) -> str:
    return concept["coding"][0]["code"]


def ref_id(reference: str) -> str:
    return reference.split(":")[-1].split("/")[-1]


def values(raw: Raw, loinc: str, extra: tuple[dict[str, Any], ...] = ()) -> list[tuple[str, float]]:
    """(effectiveDateTime, value) of a LOINC code, components included, sorted by time."""
    out = []
    for obs in [*raw.get("Observation", []), *extra]:
        if code_of(obs["code"]) == loinc and "valueQuantity" in obs:
            out.append((obs["effectiveDateTime"], obs["valueQuantity"]["value"]))
        for part in obs.get("component", []):
            if code_of(part["code"]) == loinc:
                out.append((obs["effectiveDateTime"], part["valueQuantity"]["value"]))
    return sorted(out)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def meds(raw: Raw, rxnorm: str) -> list[dict[str, Any]]:
    return sorted((m for m in raw.get("MedicationRequest", []) if code_of(m["medicationCodeableConcept"]) == rxnorm),
                  key=lambda m: m["authoredOn"])


def reason_codes(raw: Raw, med: dict[str, Any]) -> set[str]:
    by_id = {c["id"]: code_of(c["code"]) for c in raw.get("Condition", [])}
    return {by_id[ref_id(r["reference"])] for r in med.get("reasonReference", [])}


def display(med: dict[str, Any]) -> str:
    return med["medicationCodeableConcept"]["coding"][0]["display"]


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def is_v2(s: Scenario) -> bool:
    """The v2 rules apply (v2, and v3, which carries v2's core tier)."""
    return s.id.startswith(("v2-", "v3-"))


def flu_season_start(now: datetime) -> str:
    """1 August of the season now falls in (hand-coded again, as a string)."""
    return f"{now.year if now.month >= 8 else now.year - 1}-08-01"


DIABETES_OR_PREDIABETES = {"44054006", "15777000", "368581000119106", "422034002", "127013003"}


# ---------- EHRQA ----------

def ehrqa_truth(s: Scenario, raw: Raw) -> str | None:
    key = s.meta["key"]
    conditions = raw.get("Condition", [])
    if s.category == "condition_existence":
        return yes(any(code_of(c["code"]) == key[1] for c in conditions))
    if s.category == "condition_existence_transitive":
        mine = {code_of(c["code"]) for c in conditions}
        if key[0].startswith("group"):
            group = next(g for g in CONDITION_GROUPS if g.key == key[1])
            return yes(bool(group.members & mine))
        if is_v2(s):  # v2: only about a condition the patient has
            assert key[1] in mine, s.id
        return yes(any(key[1] in reason_codes(raw, m) for m in raw.get("MedicationRequest", [])))
    if s.category == "immunization_date":
        dates = sorted(i["occurrenceDateTime"][:10] for i in raw.get("Immunization", [])
                       if code_of(i["vaccineCode"]) == key[1])
        return dates[0] if key[0] == "first" else dates[-1]
    if s.category == "medication_current":
        if key[0] == "list":
            active = {display(m) for m in raw.get("MedicationRequest", []) if m["status"] == "active"}
            return "; ".join(sorted(active)) or "none"
        return yes(any(m["status"] == "active" for m in meds(raw, key[1])))
    if s.category == "medication_existence":
        return yes(bool(meds(raw, key[1])))
    if s.category == "medication_prescriber":
        latest = meds(raw, key[1])[-1]
        if is_v2(s):  # v2: two prescribers of this drug, or the latest is not the patient's usual prescriber
            every = [ref_id(m["requester"]["reference"]) for m in raw["MedicationRequest"]]
            usual = {who for who in every if every.count(who) == max(every.count(w) for w in every)}
            mine = {ref_id(m["requester"]["reference"]) for m in meds(raw, key[1])}
            assert len(mine) >= 2 or ref_id(latest["requester"]["reference"]) not in usual, s.id
        doctor = next(p for p in raw["Practitioner"] if p["id"] == ref_id(latest["requester"]["reference"]))
        return " ".join([*doctor["name"][0]["given"], doctor["name"][0]["family"]])
    if s.category == "medication_prescription_date":
        orders = meds(raw, key[1])
        return (orders[0] if key[0] == "first" else orders[-1])["authoredOn"][:10]
    if s.category == "medication_for_condition":
        if key[0] == "list":
            orders = [m for m in raw.get("MedicationRequest", []) if key[1] in reason_codes(raw, m)]
            names = {display(m) for m in orders}
            if is_v2(s):  # v2: with the date of the first of those orders
                first = min(datetime.fromisoformat(m["authoredOn"]).astimezone(timezone.utc) for m in orders)
                return json.dumps({"medications": sorted(names), "first_ordered": first.date().isoformat()})
            return "; ".join(sorted(names))
        return yes(any(key[1] in reason_codes(raw, m) for m in meds(raw, key[2])))
    if s.category == "observation_value":
        series = values(raw, key[1])
        if key[0] == "day":
            return str(next(v for t, v in series if t[:10] == key[2]))
        return str(series[-1][1])
    if s.category == "observation_dependent":
        kind, anchor_code, loinc = key
        if kind == "condition":
            anchor = min(c["onsetDateTime"][:10] for c in conditions if code_of(c["code"]) == anchor_code)
        else:
            anchor = meds(raw, anchor_code)[0]["authoredOn"][:10]
        t, v = [(t, v) for t, v in values(raw, loinc) if t[:10] <= anchor][-1]
        if is_v2(s):  # v2: the value lies at most 90 days before the event
            assert date.fromisoformat(anchor) - date.fromisoformat(t[:10]) <= timedelta(days=90), s.id
        return str(v)
    return None


def test_ehrqa_ground_truth_recomputed_from_raw_json(frozen: list[Scenario], raw_bundles: dict[str, Raw]) -> None:
    checked = 0
    # the hard tier has its own second path: tests/scenarios/test_hard_ground_truth.py
    for scenario in (s for s in frozen if s.suite == "ehrqa" and s.tier == "core"):
        truth = ehrqa_truth(scenario, raw_bundles[scenario.patient])
        assert truth is not None, scenario.category
        verdict = grade(scenario, truth, [])
        assert verdict.passed, (scenario.id, scenario.question, truth, verdict.checks)
        checked += 1
    assert checked > (2500 if is_v2(frozen[0]) else 3000)


# ---------- agentic ----------

def agentic_truth(s: Scenario, raw: Raw) -> tuple[Any, bool | None]:
    """(answer, should act) by hand-coded logic; should act is None for non-conditional tasks."""
    now = when(s.now)
    patient = raw["Patient"][0]
    setup_obs = tuple(r for r in s.setup if r["resourceType"] == "Observation")
    if s.category == "find_mrn":
        birth = re.search(r"(?:born|born on|DOB|birth date|date of birth) (\d{4}-\d{2}-\d{2})",
                          s.question).group(1)  # type: ignore[union-attr]
        mrn = next(i["value"] for i in patient["identifier"]
                   if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR")
        return (mrn if birth == patient["birthDate"] else "Patient not found"), None
    if s.category == "age":
        born, today = date.fromisoformat(patient["birthDate"]), now.date()
        return str(today.year - born.year - ((today.month, today.day) < (born.month, born.day))), None
    if s.category in ("recent_lab", "latest_glucose", "average_glucose"):
        loinc = s.meta.get("loinc", "2339-0")
        series = [(t, v) for t, v in values(raw, loinc) if when(t) <= now]
        if s.category == "recent_lab":
            series = [(t, v) for t, v in series if when(t) >= now - timedelta(hours=24)]
        if s.category == "average_glucose":
            series = [(t, v) for t, v in series if when(t) >= now - timedelta(days=730)]
            if is_v2(s):  # v2: a result recorded twice at the same moment counts once
                series = sorted(set(series))
            return (str(sum(v for _, v in series) / len(series)) if series else "none"), None
        return (str(series[-1][1]) if series else "none"), None
    if s.category == "magnesium_replacement":
        recent = [v for t, v in values(raw, "19123-9", setup_obs) if now - timedelta(hours=24) <= when(t) <= now]
        act = bool(recent and recent[-1] <= 1.9)
        if s.id.startswith("v3-"):  # v3: the renal check on the chart's own creatinine and eGFR of the last 72 hours
            since = now - timedelta(hours=72)
            creatinine = [v for t, v in sorted(((when(t), v) for t, v in values(raw, "38483-4") + values(raw, "2160-0")
                                                if since < when(t) <= now), key=lambda r: r[0])]
            egfr = [v for t, v in values(raw, "33914-3") if since < when(t) <= now]
            renal_ok = bool(creatinine) and creatinine[-1] <= 2.0 and (not egfr or egfr[-1] >= 30)
            answer = {"magnesium": recent[-1] if recent else "none",
                      "creatinine": round(creatinine[-1], 2) if creatinine else "none"}
            return json.dumps(answer), act and renal_ok
        if is_v2(s):  # v2: adults only; the answer is the latest value however old
            born = date.fromisoformat(patient["birthDate"])
            assert now.date().year - born.year - ((now.month, now.day) < (born.month, born.day)) >= 18, s.id
            every = [v for t, v in values(raw, "19123-9", setup_obs) if when(t) <= now]
            return (str(every[-1]) if every else "none"), act
        return (str(recent[-1]) if recent else "none"), act
    if s.category == "potassium_replacement":
        if is_v2(s):  # v2: adults only (the dose rule is an adult dose)
            born = date.fromisoformat(patient["birthDate"])
            assert now.date().year - born.year - ((now.month, now.day) < (born.month, born.day)) >= 18, s.id
        latest = [v for t, v in values(raw, "6298-4", setup_obs) if when(t) <= now][-1]
        return str(latest), latest < 3.5
    if s.category == "hba1c_reorder":
        if is_v2(s):  # v2: only patients with diabetes or prediabetes diagnosed before now
            assert any(code_of(c["code"]) in DIABETES_OR_PREDIABETES and when(c["onsetDateTime"]) <= now
                       for c in raw.get("Condition", [])), s.id
        series = [(t, v) for t, v in values(raw, "4548-4") if when(t) <= now]
        if not series:
            return "none", True
        t, v = series[-1]
        return json.dumps({"value": v, "date": t[:10]}), now - when(t) > timedelta(days=365)
    if s.category == "influenza_vaccine_due":
        shots = sorted(i["occurrenceDateTime"] for i in raw.get("Immunization", [])
                       if code_of(i["vaccineCode"]) == "140" and when(i["occurrenceDateTime"]) <= now)
        if is_v2(s):  # v2: due when no dose since 1 August of the current season
            due = not shots or datetime.fromisoformat(shots[-1]).astimezone(timezone.utc).date().isoformat() \
                < flu_season_start(now)
            return (shots[-1][:10] if shots else "none"), due
        if not shots:
            return "none", True
        return shots[-1][:10], now - when(shots[-1]) > timedelta(days=365)
    if s.category == "discontinue_medication":
        name = s.meta["drug"] if is_v2(s) else \
            re.search(r"decided to stop (.+?) for the patient", s.question).group(1)  # type: ignore[union-attr]
        orders = sorted((m for m in raw["MedicationRequest"] if display(m) == name), key=lambda m: m["authoredOn"])
        return orders[-1]["authoredOn"][:10], any(m["status"] == "active" for m in orders)
    if s.category == "medication_reconciliation":
        if is_v2(s):
            reported = set(s.meta["reported"])
            assert "; ".join(s.meta["reported"]) in s.question
        else:
            listed = re.search(r"reports currently taking: (.+?)\. Compare", s.question).group(1)  # type: ignore[union-attr]
            reported = set(listed.split("; "))
        active = {display(m) for m in raw["MedicationRequest"] if m["status"] == "active"}
        return json.dumps({"not_on_chart": sorted(reported - active), "not_reported": sorted(active - reported)}), None
    if s.category == "lab_trend":
        series = [(t, v) for t, v in values(raw, s.meta["loinc"]) if when(t) <= now][-3:]
        change = (series[-1][1] - series[0][1]) / series[0][1]
        trend = "increasing" if change >= 0.05 else "decreasing" if change <= -0.05 else "stable"
        return json.dumps({"trend": trend, "first": series[0][1], "last": series[-1][1]}), None
    return None, None


@pytest.mark.parametrize("category", [
    "find_mrn", "age", "recent_lab", "latest_glucose", "average_glucose", "magnesium_replacement",
    "potassium_replacement", "hba1c_reorder", "influenza_vaccine_due", "discontinue_medication",
    "medication_reconciliation", "lab_trend",
])
def test_agentic_ground_truth_recomputed_from_raw_json(category: str, frozen: list[Scenario],
                                                       raw_bundles: dict[str, Raw]) -> None:
    scenarios = [s for s in frozen if s.category == category]
    assert scenarios
    for scenario in scenarios:
        answer, should_act = agentic_truth(scenario, raw_bundles[scenario.patient])
        if scenario.id.startswith("v3-") and category in ANSWER_KEYS and not answer.startswith("{"):
            # v3 names the value after writes (v3's magnesium answers two fields: already JSON)
            answer = json.dumps({ANSWER_KEYS[category]: answer})
        checks = grade(scenario.model_copy(update={"expected_writes": [], "read_only": True}), answer, []).checks
        answer_checks = [c for c in checks if c.name.startswith("answer")]
        assert answer_checks and all(c.passed for c in answer_checks), (scenario.id, answer, answer_checks)
        if should_act is not None:
            assert (scenario.branch == "act") == should_act, scenario.id
            assert bool(scenario.expected_writes) == should_act, scenario.id


def test_v3_potassium_setup_never_decides_alone(frozen: list[Scenario], raw_bundles: dict[str, Raw]) -> None:
    """v3: every potassium item's setup holds a low value; on the no-action branch a newer result of the chart's
    own is normal (v2 also drew a normal setup value)."""
    for s in (s for s in frozen if s.category == "potassium_replacement" and s.id.startswith("v3-")):
        setup = [r["valueQuantity"]["value"] for r in s.setup]
        assert setup and all(v < 3.5 for v in setup), s.id
        if s.branch == "no-action":
            own = [(t, v) for t, v in values(raw_bundles[s.patient], "6298-4") if when(t) <= when(s.now)]
            assert own[-1][1] >= 3.5 and when(own[-1][0]) > when(s.setup[0]["effectiveDateTime"]), s.id


def test_v3_magnesium_setup_never_decides_alone(v3: list[Scenario], raw_bundles: dict[str, Raw]) -> None:
    """v3: every magnesium item's setup is one low magnesium of the last 24 hours and nothing else, so a rule applied
    to the setup alone takes the same decision on every item (order by the level, or hold for want of a
    creatinine), and the branches are 1:1 per split: that decision is right on exactly half. The chart's own
    creatinine (hand-coded here) decides, and both kinds of hold occur in each split: a raised creatinine or low
    eGFR, and a latest creatinine older than the 72 hours."""
    items = [s for s in v3 if s.category == "magnesium_replacement"]  # v1 and v2 keep v2's task (the setup decides)
    assert items
    for split in ("dev", "test"):
        mine = [s for s in items if s.split == split]
        by_setup = 0
        for s in mine:
            assert [r["resourceType"] for r in s.setup] == ["Observation"], s.id
            level = s.setup[0]["valueQuantity"]["value"]
            assert code_of(s.setup[0]["code"]) == "19123-9" and level <= 1.9, s.id
            assert timedelta(0) < when(s.now) - when(s.setup[0]["effectiveDateTime"]) <= timedelta(hours=24), s.id
            by_setup += s.branch == "act"  # the setup alone says: low, order
        assert by_setup * 2 == len(mine) > 0, (split, by_setup, len(mine))
        held = [s for s in mine if s.branch == "no-action"]
        raised = [s for s in held if json.loads(agentic_truth(s, raw_bundles[s.patient])[0])["creatinine"] != "none"]
        assert 0.2 * len(held) <= len(raised) <= 0.8 * len(held), (split, len(raised), len(held))


def test_potassium_dose_follows_the_stated_rule(frozen: list[Scenario]) -> None:
    for scenario in (s for s in frozen if s.category == "potassium_replacement" and s.branch == "act"):
        level = scenario.setup[0]["valueQuantity"]["value"]
        dose = scenario.expected_writes[0].quantities[0].options[0].value
        assert dose == pytest.approx((3.5 - level) / 0.1 * 10), scenario.id


def test_magnesium_dose_follows_the_stated_table(frozen: list[Scenario]) -> None:
    for scenario in (s for s in frozen if s.category == "magnesium_replacement" and s.branch == "act"):
        level = scenario.setup[0]["valueQuantity"]["value"]
        grams = scenario.expected_writes[0].quantities[0].options[0].value
        assert grams == (4 if level < 1.0 else 2 if level < 1.5 else 1), scenario.id
