"""A second, hand-coded path to the workflow tier's ground truth: the raw bundle JSON plus each item's setup.

Plain dict walking, written apart from ``medagent.scenarios.workflow`` (no record, no value sets, no protocol
code): drugs are recognised by their names, local codes by their text, units converted by hand. For every item
it recomputes the facts the answer asks for and compares them with the generator's expected answer.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

import pytest

from medagent.data import iter_bundles
from medagent.scenarios import sampling
from medagent.scenarios.build import load_charts
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import population_of
from medagent.scenarios.workflow import generate_workflow

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def tier() -> list[Scenario]:
    charts = load_charts()
    return generate_workflow(charts, population_of(charts), 2026, sampling.test_patients(c.patient_id for c in charts))


_RECORDS: dict[str, list[dict[str, Any]]] = {}


def records() -> dict[str, list[dict[str, Any]]]:
    """Patient id -> every resource of that patient's bundle (read once)."""
    if not _RECORDS:
        for _, bundle in iter_bundles():
            resources = [entry["resource"] for entry in bundle["entry"]]
            _RECORDS[next(r for r in resources if r["resourceType"] == "Patient")["id"]] = resources
    return _RECORDS


def when(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def everything(s: Scenario) -> list[dict[str, Any]]:
    return [*records()[s.patient], *s.setup]


def is_test(obs: dict[str, Any], loinc: str, words: tuple[str, ...]) -> bool:
    """The test by its LOINC, or (a laboratory's local code) by the words of its text."""
    codings = obs.get("code", {}).get("coding", [])
    if any(c.get("system") == LOINC and c.get("code") == loinc for c in codings):
        return True
    text = (obs.get("code", {}).get("text") or "").lower()
    return any(c.get("system", "").startswith("urn:oid") for c in codings) and all(w in text for w in words)


def values(
    s: Scenario, loinc: str, words: tuple[str, ...], factor: dict[str, float] | None = None, component: bool = False
) -> list[tuple[datetime, float, str]]:
    """(time, value, id) of valid results up to now, converted, one per (time, value), oldest first."""
    now = when(s.now)
    seen: dict[tuple[datetime, float], str] = {}
    for r in everything(s):
        if r["resourceType"] != "Observation" or r.get("status") == "entered-in-error":
            continue
        quantity = None
        if component:
            for part in r.get("component", []):
                if any(c.get("code") == loinc for c in part["code"]["coding"]):
                    quantity = part.get("valueQuantity")
        elif is_test(r, loinc, words):
            quantity = r.get("valueQuantity")
        if not quantity or "effectiveDateTime" not in r or when(r["effectiveDateTime"]) > now:
            continue
        value = quantity["value"] * (factor or {}).get(quantity.get("unit", ""), 1.0)
        seen.setdefault((when(r["effectiveDateTime"]), round(value, 3)), r["id"])
    return [(t, v, i) for (t, v), i in sorted(seen.items())]


def field(s: Scenario, name: str) -> Any:
    return s.answer.fields[name].value


def active_orders(s: Scenario) -> list[dict[str, Any]]:
    now = when(s.now)
    return [
        r
        for r in everything(s)
        if r["resourceType"] == "MedicationRequest" and r["status"] == "active" and when(r["authoredOn"]) <= now
    ]


def name_of(order: dict[str, Any]) -> str:
    return order["medicationCodeableConcept"]["coding"][0].get("display", "").lower()


def test_diabetes_previsit(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "diabetes_previsit"]:
        a1c = values(s, "4548-4", ("a1c",))
        assert field(s, "latest_a1c") == pytest.approx(round(a1c[-1][1] + 1e-9, 1))
        assert field(s, "latest_a1c_date") == a1c[-1][0].date().isoformat()
        assert field(s, "previous_a1c_date") == a1c[-2][0].date().isoformat()
        creatinine = values(s, "38483-4", ("creatinine",), {"umol/L": 1 / 88.42})
        assert field(s, "creatinine") == pytest.approx(creatinine[-1][1], abs=1e-3)


def test_renal_dose_review(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "renal_dose_review"]:
        egfr = values(s, "33914-3", ("egfr",))
        assert (
            field(s, "egfr") == pytest.approx(egfr[-1][1], abs=1e-3)
            and field(s, "egfr_date") == egfr[-1][0].date().isoformat()
        )
        nsaid = [o for o in active_orders(s) if "naproxen" in name_of(o) or "ibuprofen" in name_of(o)]
        expected = {name_of(o) for o in nsaid} if egfr[-1][1] < 60 else set()
        if egfr[-1][1] < 30:
            expected |= {
                name_of(o) for o in active_orders(s) if "metformin" in name_of(o) or "nitrofurantoin" in name_of(o)
            }
        assert {v.lower() for v in field(s, "stopped")} == expected, s.id


def test_anticoagulation_review(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "anticoagulation_review"]:
        inr = values(s, "6301-6", ("inr",))
        assert field(s, "inr") == pytest.approx(round(inr[-1][1], 1))
        notes = sorted(
            (when(r["date"]), base64.b64decode(r["content"][0]["attachment"]["data"]).decode())
            for r in s.setup
            if r["resourceType"] == "DocumentReference"
        )
        dose = float(
            re.findall(r"warfarin ([\d.]+) mg per week", notes[-1][1])[0]
            if "per week" in notes[-1][1]
            else re.findall(r"warfarin ([\d.]+) mg per week", " ".join(t for _, t in notes))[-1]
        )
        value = round(inr[-1][1], 1)
        factor = 1.15 if value < 1.5 else 1.10 if value < 2.0 else 1.0 if value <= 3.0 else 0.9 if value < 4 else 0.85
        assert field(s, "new_weekly_dose_mg") == round(dose * factor / 2.5) * 2.5, s.id
        assert field(s, "recheck_in_days") == (28 if round(dose * factor / 2.5) * 2.5 == dose else 7)


def test_hypertension_protocol(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "hypertension_protocol"]:
        day = when(s.now).date()
        systolic = [v for t, v, _ in values(s, "8480-6", (), component=True) if t.date() == day]
        diastolic = [v for t, v, _ in values(s, "8462-4", (), component=True) if t.date() == day]
        assert field(s, "mean_systolic") == int(mean(systolic) + 0.5) and field(s, "mean_diastolic") == int(
            mean(diastolic) + 0.5
        ), s.id


def test_discharge_reconciliation(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "discharge_reconciliation"]:
        summary = next(r for r in s.setup if r["resourceType"] == "DocumentReference" and r["status"] == "current")
        text = base64.b64decode(summary["content"][0]["attachment"]["data"]).decode()
        assert field(s, "discharge_date") == re.search(r"discharged (\d{4}-\d{2}-\d{2})", text).group(1)
        stop_codes = set(re.findall(r"^- STOP: .*\[RxNorm (\d+)\]", text, re.M))
        stopped = {o["medicationCodeableConcept"]["coding"][0]["code"] for o in active_orders(s)} & stop_codes
        aliases = s.answer.fields["stopped"].aliases
        assert {aliases[name][0] for name in field(s, "stopped")} == stopped, s.id
        listed = {code: (kind, name.lower()) for kind, name, code in re.findall(LINE, text, re.M)}
        clinic = {
            o["medicationCodeableConcept"]["coding"][0]["code"]: name_of(o)
            for o in active_orders(s)
            if not any(word in name_of(o) for word in NOT_A_CLINIC_DRUG)
        }
        kept = {code: name for code, name in clinic.items() if code not in stop_codes}
        started, clarify = set(), set()
        for code, (kind, name) in listed.items():
            duplicate = any(
                other != code and drug_class(other_name) is not None and drug_class(other_name) == drug_class(name)
                for other, other_name in kept.items()
            )
            if kind == "NEW" and duplicate:
                clarify.add(code)
            elif kind in ("NEW", "CONTINUE") and code not in clinic:
                started.add(code)
        clarify |= {code for code in clinic if code not in listed}
        for name, expected in (("started", started), ("to_clarify", clarify)):
            aliases = s.answer.fields[name].aliases
            assert {aliases[n][0] for n in field(s, name)} == expected, (s.id, name)
        assert started and clarify, "every item starts a drug and withholds one"


LINE = r"^- (STOP|NEW|CONTINUE): (.+?) \[RxNorm (\d+)\]"
NOT_A_CLINIC_DRUG = ("pack", "intrauterine", "implant", "ring", "injection", "medroxyprogesterone", "auto-injector")
NOT_A_CLINIC_DRUG += ("transdermal system", "inhaler", "alteplase")
DRUG_CLASSES = {  # by the ingredient's name, as a pharmacist reads the list
    "thiazide-type diuretic": ("hydrochlorothiazide", "chlorthalidone", "indapamide", "metolazone"),
    "loop diuretic": ("furosemide", "lasix", "bumetanide", "torsemide"),
    "beta blocker": ("metoprolol", "atenolol", "carvedilol", "bisoprolol", "propranolol"),
    "statin": ("simvastatin", "simvistatin", "atorvastatin", "rosuvastatin", "pravastatin"),
    "NSAID": ("naproxen", "ibuprofen", "diclofenac"),
    "anticoagulant": ("warfarin", "apixaban", "rivaroxaban"),
    "antiplatelet": ("clopidogrel", "aspirin"),
    "ACE inhibitor or ARB": ("lisinopril", "captopril", "losartan"),
}


def drug_class(name: str) -> str | None:
    return next((k for k, words in DRUG_CLASSES.items() if any(w in name.lower() for w in words)), None)


def test_hemoglobin_followup(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "hemoglobin_followup"]:
        hb = values(s, "718-7", ("hemoglobin",), {"g/L": 0.1})
        today = [v for t, v, _ in hb if t.date() == when(s.now).date()]
        before = [(t, v) for t, v, _ in hb if t.date() < when(s.now).date() and when(s.now) - t <= timedelta(days=730)]
        assert field(s, "new_hb") == pytest.approx(round(today[0], 1))
        assert field(s, "baseline_date") == before[-1][0].date().isoformat()
        significant = before[-1][1] - today[0] >= 2.0 - 1e-9 or round(today[0], 1) < 8.0
        assert field(s, "significant") is significant


def test_care_gaps_tetanus(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "care_gaps"]:
        now = when(s.now)
        shots = [
            when(r["occurrenceDateTime"])
            for r in everything(s)
            if r["resourceType"] == "Immunization"
            and r.get("status") == "completed"
            and r["vaccineCode"]["coding"][0]["code"] in ("113", "115", "09", "138", "139")
            and when(r["occurrenceDateTime"]) <= now
        ]
        recent = any(now - t <= timedelta(days=3652) for t in shots)
        assert field(s, "tetanus") == ["up to date" if recent else "due"], s.id


def test_cardiology_referral(tier: list[Scenario]) -> None:
    for s in [x for x in tier if x.category == "cardiology_referral"]:
        ldl = values(s, "18262-6", ("ldl",), {"mmol/L": 38.67})
        assert (field(s, "ldl") is None) == (not ldl)
        if ldl:
            assert field(s, "ldl") == pytest.approx(ldl[-1][1], abs=1e-3), s.id
        efs = [(t, v) for t, v, _ in values(s, "10230-1", ())]
        for r in s.setup:
            if r["resourceType"] == "DocumentReference":
                text = base64.b64decode(r["content"][0]["attachment"]["data"]).decode()
                found = re.search(r"echocardiogram on (\d{4}-\d{2}-\d{2}): .*ejection fraction (\d+)%", text)
                if found:
                    efs.append((when(found.group(1)), float(found.group(2))))
        bnp = [(t, v) for t, v, _ in values(s, "33762-6", ()) if when(s.now) - t <= timedelta(days=90)]
        urgent = (bool(efs) and max(efs)[1] < 40) or any(v > 900 for _, v in bnp)
        assert field(s, "priority") == ["urgent" if urgent else "routine"], s.id
