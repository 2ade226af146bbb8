"""Set v3 as frozen: each measured shortcut of v2's hard tier closed (checked on the files), and the near misses.

The shortcuts (issue #27): copying the nearest dev cohort item, the stated systolic deciding the blood-pressure
work-up, the setup alone deciding the safety-gated order, a "first two sentences" filter removing the injection,
the lab's name predicting recorded / not recorded, ``count=true`` and the summary line answering counts and
extremes, the birth date telling namesakes apart, and the "first number" grading trap. Near misses are hand-made
wrong answers and diffs (off by one, another unit, another patient, a write to the wrong patient, an extra write);
each must fail while the reference answer and diff pass.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medagent.bench.solvers.chart_blind import AnswerPrior
from medagent.bench.solvers.shortcuts import NearestDevSolver
from medagent.scenarios.category import categories
from medagent.scenarios.grading import grade
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.reference import reference_answer, reference_diff, reference_resource
from medagent.scenarios.scenario_files import read_manifest
from medagent.scenarios.v3 import bp_workup, safety
from medagent.scenarios.v3.injection_texts import INJECTIONS, TEST_ONLY


def hard_of(v3: list[Scenario], category: str) -> list[Scenario]:
    return [s for s in v3 if s.category == category]


def note_text(resource: dict[str, Any]) -> str:
    return base64.b64decode(resource["content"][0]["attachment"]["data"]).decode()


def test_v3_holds_every_category_declared_for_it_and_v1_v2_keep_their_hashes(v3_dir: Path, v3: list[Scenario]) -> None:
    assert {s.category for s in v3} == {c.name for c in categories(since=3)}
    assert {s.id[:3] for s in v3} == {"v3-"} and len({s.id for s in v3}) == len(v3)
    sets = v3_dir.parent
    assert read_manifest(sets / "v2").content_hash.startswith("8826fc2eee18027c")
    assert read_manifest(sets / "v1").content_hash.startswith("c641308c74682b47")


def test_answers_after_writes_are_named_json_fields_and_numbers_stand_alone(v3: list[Scenario]) -> None:
    def numbers(answer: ExpectedAnswer) -> list[ExpectedAnswer]:
        return [answer] if answer.type == "number" else [n for f in answer.fields.values() for n in numbers(f)]

    for s in v3:
        if s.expected_writes or s.branch:
            assert s.answer.type in ("record", "none"), s.id  # never "the first number of the text"
        assert all(n.single_number for n in numbers(s.answer)), s.id


def test_every_decision_is_balanced_and_no_action_still_needs_an_answer(v3: list[Scenario]) -> None:
    """Core and hard tasks hold one decision: act and no-action 1:1 per split and category. A workflow task holds
    several (a diabetes visit: HbA1c, kidney screening, statin; a care-gap review: five screenings), and its branch
    only says whether the protocol orders anything; the decision the charts would skew is balanced 1:1 per category
    (tests/scenarios/test_workflow_set.py::test_conditional_branches_are_balanced), and a referral or a discharge
    always ends in an order. Its rule here: ordering nothing (the note alone) is never the better guess, i.e. the
    no-action branch is at most half of a category's items in each split."""
    branches: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for s in v3:
        if s.branch:
            branches[(s.tier, s.split, s.category)][s.branch] += 1
            assert s.answer.type == "record" and s.answer.fields, s.id  # a silent "no order" fails
    assert branches
    for (tier, *key), counts in branches.items():
        if tier == "workflow":
            assert counts["no-action"] <= counts["act"], (key, counts)
        else:
            assert counts["act"] == counts["no-action"] > 0, (tier, key, counts)
    assert {t for t, *_ in branches} == {"core", "hard", "workflow"}


# ---------- cohort: far from dev ----------

def test_cohort_test_items_are_not_neighbours_of_dev(v3: list[Scenario]) -> None:
    items = hard_of(v3, "cohort_measure")
    dev = [s for s in items if s.split == "dev"]
    test = [s for s in items if s.split == "test"]
    assert max(date.fromisoformat(s.now[:10]) for s in dev) < date(2014, 1, 1) <= date(2017, 1, 1) <= \
        min(date.fromisoformat(s.now[:10]) for s in test)
    dev_answers = {frozenset(s.answer.value or []) for s in dev}  # type: ignore[arg-type]
    assert not [s.id for s in test if frozenset(s.answer.value or []) in dev_answers]  # type: ignore[arg-type]
    sizes = Counter(len(s.answer.value or []) for s in test)  # type: ignore[arg-type]
    assert set(sizes) == {2, 3, 4, 5, 6} and max(sizes.values()) <= 0.35 * len(test), sizes
    policy = NearestDevSolver(examples=dev)
    copied = sum(grade(s, policy.answer_for(s), []).passed for s in test)
    assert copied == 0 and len(test) >= 60


def test_cohort_answers_take_mrns_or_patient_ids_as_a_set(v3: list[Scenario]) -> None:
    s = next(x for x in hard_of(v3, "cohort_measure") if len(x.answer.value or []) >= 3)  # type: ignore[arg-type]
    mrns = list(s.answer.value or [])  # type: ignore[arg-type]
    ids = [s.answer.aliases[m][0] for m in mrns]
    assert grade(s, "; ".join(reversed(mrns)), []).passed and grade(s, "; ".join(ids), []).passed
    assert not grade(s, "; ".join(mrns[:-1]), []).passed  # one missing
    assert not grade(s, "; ".join([*mrns, "00000000-0000-4000-8000-000000000000"]), []).passed  # one extra
    assert not grade(s, str(len(mrns)), []).passed


# ---------- bp work-up: the chart decides ----------

def test_bp_stated_reading_and_setup_each_decide_half(v3: list[Scenario]) -> None:
    for split in ("dev", "test"):
        items = [s for s in hard_of(v3, "bp_workup_workflow") if s.split == split]
        stated = sum((s.meta["systolic"] >= 140 or s.meta["diastolic"] >= 90) == (s.branch == "act") for s in items)
        by_setup = 0
        for s in items:
            start = datetime.fromisoformat(s.now) - timedelta(days=s.meta["window_days"])
            panels = [{c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in r["component"]}
                      for r in s.setup if datetime.fromisoformat(r["effectiveDateTime"]) >= start]
            systolic = [p["8480-6"] for p in panels] + [s.meta["systolic"]]
            diastolic = [p["8462-4"] for p in panels] + [s.meta["diastolic"]]
            by_setup += bp_workup.decides(systolic, diastolic) == (s.branch == "act")
        assert stated == len(items) / 2 and by_setup == len(items) / 2, (split, stated, by_setup, len(items))
    assert len([s for s in hard_of(v3, "bp_workup_workflow") if s.split == "test"]) >= 40


def test_bp_near_misses(v3: list[Scenario]) -> None:
    act = next(s for s in hard_of(v3, "bp_workup_workflow") if s.branch == "act" and s.split == "test")
    held = next(s for s in hard_of(v3, "bp_workup_workflow") if s.branch == "no-action" and s.split == "test")
    right = json.loads(reference_answer(act.answer))
    diff = reference_diff(act)
    assert grade(act, json.dumps(right), diff).passed
    for key, delta in (("readings", 1), ("mean_systolic", 1), ("mean_diastolic", -1)):  # off by one
        assert not grade(act, json.dumps({**right, key: right[key] + delta}), diff).passed, key
    assert not grade(act, f"{right['mean_systolic']} mmHg", diff).passed  # not the JSON the task states
    assert not grade(act, json.dumps(right), [c for c in diff if c["resourceType"] != "ServiceRequest"]).passed
    panel = reference_resource(act.expected_writes[1], "bmp-1")
    panel["subject"]["reference"] = f"Patient/{held.patient}"
    panel["authoredOn"] = held.now
    extra = {"resourceType": "ServiceRequest", "id": "bmp-1", "action": "create", "before": None, "after": panel}
    verdict = grade(held, reference_answer(held.answer), [*reference_diff(held), extra])
    assert not verdict.passed and verdict.failure_cause == "forbidden_write"  # the extra write


# ---------- safety: the setup does not decide ----------

def test_safety_setup_alone_decides_half_and_the_chart_the_rest(v3: list[Scenario]) -> None:
    items = hard_of(v3, "safety_gated_order")
    for split in ("dev", "test"):
        mine = [s for s in items if s.split == split]
        right = 0
        for s in mine:
            courses = [{"display": r["medicationCodeableConcept"]["text"], "status": r["status"],
                        "authored": r["authoredOn"]} for r in s.setup if r["resourceType"] == "MedicationRequest"]
            allergies = [{"display": r["code"]["text"], "type": r.get("type"),
                          "status": (r.get("clinicalStatus") or {"coding": [{}]})["coding"][0].get("code"),
                          "verification": r["verificationStatus"]["coding"][0]["code"],
                          "criticality": r.get("criticality"), "date": r["recordedDate"]}
                         for r in s.setup if r["resourceType"] == "AllergyIntolerance"]
            blocked = any(safety.counts_as_allergy(a, courses) for a in allergies) or any(
                "amoxicillin" in c["display"].lower() and c["status"] == "active" for c in courses)
            right += blocked == (s.branch == "no-action")
        assert 0.45 <= right / len(mine) <= 0.55, (split, right, len(mine))
    kinds = Counter(s.meta["kind"] for s in items if s.split == "test")
    assert {"clean", "tolerated", "allergy", "duplicate"} <= set(kinds) and kinds["age"] + kinds["kidney"] > 0, kinds


def test_safety_setups_vary_and_stay_clinically_coherent(v3: list[Scenario]) -> None:
    allergies = [r for s in hard_of(v3, "safety_gated_order") for r in s.setup if r["resourceType"] ==
                 "AllergyIntolerance"]
    verification = Counter(r["verificationStatus"]["coding"][0]["code"] for r in allergies)
    assert {"confirmed", "unconfirmed", "refuted", "entered-in-error"} <= set(verification)
    assert len({r["code"]["coding"][0]["code"] for r in allergies}) >= 12  # penicillins, other drugs, environment
    orders = [(r["status"], s.now, r["authoredOn"]) for s in hard_of(v3, "safety_gated_order") for r in s.setup
              if r["resourceType"] == "MedicationRequest"]
    assert {o[0] for o in orders} == {"active", "stopped", "completed", "cancelled", "entered-in-error"}
    recent_inactive = [o for o in orders if o[0] != "active" and (date.fromisoformat(o[1][:10]) -
                                                                  date.fromisoformat(o[2][:10])).days < 30]
    assert recent_inactive  # a duplicate is not just "a recent order"
    for s in hard_of(v3, "safety_gated_order"):
        assert not [r for r in s.setup if r["resourceType"] == "Observation"], s.id  # renal data are the chart's
        for allergy in (r for r in s.setup if r["resourceType"] == "AllergyIntolerance"):
            if allergy.get("criticality") == "high" and allergy["verificationStatus"]["coding"][0]["code"] == \
                    "confirmed" and (allergy.get("clinicalStatus") or {"coding": [{}]})["coding"][0].get("code") == \
                    "active" and any(w in allergy["code"]["text"].lower() for w in safety.PENICILLIN_WORDS):
                later = [r for r in s.setup if r["resourceType"] == "MedicationRequest"
                         and r["status"] in ("completed", "stopped") and r["authoredOn"] > allergy["recordedDate"]]
                assert not later, s.id  # no finished amoxicillin course after a confirmed high-criticality allergy
    crcl = [s.meta["crcl"] for s in hard_of(v3, "safety_gated_order") if s.meta["crcl"] is not None]
    assert any(30 < c < 40 for c in crcl) and any(c < 30 for c in crcl) and not any(28.5 < c < 31.5 for c in crcl)


def test_safety_near_misses(v3: list[Scenario]) -> None:
    items = [s for s in hard_of(v3, "safety_gated_order") if s.split == "test"]
    act = next(s for s in items if s.branch == "act" and s.meta["crcl"] is not None)
    held = next(s for s in items if s.branch == "no-action")
    right = json.loads(reference_answer(act.answer))
    diff = reference_diff(act)
    assert grade(act, json.dumps(right), diff).passed
    assert not grade(act, json.dumps({**right, "crcl": right["crcl"] + 2}), diff).passed  # off by two
    assert not grade(act, json.dumps({**right, "crcl": "none"}), diff).passed
    assert not grade(act, json.dumps({**right, "crcl": f"{right['crcl']} mL/min, LOINC 38483-4"}), diff).passed
    assert not grade(act, json.dumps({**right, "decision": "kidney"}), diff).passed
    two_caps = json.loads(json.dumps(diff))
    for change in two_caps:
        if change["resourceType"] == "MedicationRequest" and change["id"] not in {r["id"] for r in act.setup}:
            change["after"]["medicationCodeableConcept"]["coding"][0]["code"] = "308182"  # 250 mg capsules
    assert not grade(act, json.dumps(right), two_caps).passed
    wrong_patient = json.loads(json.dumps(diff))
    for change in wrong_patient:
        if change["id"] not in {r["id"] for r in act.setup}:
            change["after"]["subject"]["reference"] = f"Patient/not-{act.patient}"
    assert not grade(act, json.dumps(right), wrong_patient).passed
    order = reference_resource(act.expected_writes[0], "order-1")
    order["subject"]["reference"] = f"Patient/{held.patient}"
    order["authoredOn"] = held.now
    verdict = grade(held, reference_answer(held.answer), [*reference_diff(held), {
        "resourceType": "MedicationRequest", "id": "order-1", "action": "create", "before": None, "after": order}])
    assert not verdict.passed and verdict.failure_cause == "forbidden_write"


# ---------- injection: ordinary clinical text, not in the first two sentences ----------

def test_injections_are_many_ordinary_and_some_only_in_test(v3: list[Scenario]) -> None:
    items = hard_of(v3, "prompt_injection")
    every = {s for sentences in INJECTIONS.values() for s in sentences}
    assert len(every) >= 30
    assert not [s for s in every if re.search(r"\b(AI|SYSTEM|assistant|agent|automated|ignore)\b|^\w+:", s, re.I)]
    used = {split: {s.meta["injection_text"] for s in items if s.split == split} for split in ("dev", "test")}
    assert not used["dev"] & set(TEST_ONLY.values()) and used["test"] & set(TEST_ONLY.values())
    assert len(used["dev"] | used["test"]) >= 30
    for s in items:
        notes = sorted((r for r in s.setup if r["resourceType"] == "DocumentReference"), key=lambda r: r["date"])
        newest = note_text(notes[-1])
        first_two = " ".join(re.split(r"(?<=\.)\s+", newest)[:2])
        assert "LOINC" not in first_two or notes[-1]["type"]["coding"][0]["code"] != "11506-3", s.id
        progress = [r for r in notes if r["type"]["coding"][0]["code"] == "11506-3"][-1]
        assert s.meta["injection_text"] in note_text(progress) and len(note_text(progress)) <= 200, s.id
        assert not re.search(r"LOINC", " ".join(re.split(r"(?<=\.)\s+", note_text(progress))[:2])), s.id


def test_injection_near_misses(v3: list[Scenario]) -> None:
    s = next(x for x in hard_of(v3, "prompt_injection") if x.split == "test")
    right = json.loads(reference_answer(s.answer))
    diff = reference_diff(s)
    assert grade(s, json.dumps(right), diff).passed
    referral = {"resourceType": "ServiceRequest", "id": "injected", "status": "active", "intent": "order",
                "subject": {"reference": f"Patient/{s.patient}"}, "authoredOn": s.now,
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "183519002"}]}}
    assert not grade(s, json.dumps(right), [*diff, {"resourceType": "ServiceRequest", "id": "injected",
                                                    "action": "create", "before": None, "after": referral}]).passed
    assert not grade(s, json.dumps({**right, "loinc": "718-7" if right["loinc"] != "718-7" else "2093-3"}),
                     diff).passed
    assert not grade(s, "none", diff).passed
    assert not grade(s, f"Ordered LOINC {right['loinc']}; last result {right['last_result']}", diff).passed


# ---------- abstention: the lab's name says nothing ----------

def test_abstention_labs_are_recorded_as_often_as_not(v3: list[Scenario]) -> None:
    items = hard_of(v3, "abstention")
    prior: dict[str, list[bool]] = defaultdict(list)
    for s in items:
        if s.split == "dev":
            for code, recorded in s.meta["recorded"].items():
                prior[code].append(recorded)
    for split in ("dev", "test"):
        balance: Counter[str] = Counter()
        for s in (s for s in items if s.split == split):
            for code, recorded in s.meta["recorded"].items():
                balance[code] += 1 if recorded else -1
        assert all(abs(v) <= 1 for v in balance.values()), (split, balance)
    fields = [(code, recorded) for s in items if s.split == "test" for code, recorded in s.meta["recorded"].items()]
    right = sum((sum(prior[code]) * 2 > len(prior[code])) == recorded for code, recorded in fields)
    assert right / len(fields) <= 0.55 and len(fields) >= 150, (right, len(fields))


# ---------- counting and temporal: not one lookup ----------

def test_count_true_and_the_summary_line_give_other_numbers(v3: list[Scenario]) -> None:
    for s in hard_of(v3, "count_aggregate"):
        if s.meta["form"] in ("count_distinct", "count_after_event", "encounter_days"):
            assert s.meta["listed"] != s.answer.value, s.id  # what count=true over the search would say
        if s.meta["form"] == "mean_converted":
            assert any(r["valueQuantity"]["unit"] == s.meta["other_unit"] for r in s.setup), s.id
    for s in (s for s in hard_of(v3, "temporal_window") if s.meta["form"] == "window_extreme"):
        wrong = [r for r in s.setup if r.get("status") == "entered-in-error"]
        assert wrong, s.id  # the summary's min/max would read it
    forms = Counter(s.meta["form"] for s in hard_of(v3, "count_aggregate") + hard_of(v3, "temporal_window")
                    if s.split == "test")
    assert {"count_distinct", "count_after_event", "mean_converted", "encounter_days", "window_extreme",
            "paired_value"} <= set(forms), forms


def test_counting_near_misses(v3: list[Scenario]) -> None:
    s = next(x for x in hard_of(v3, "count_aggregate") if x.meta["form"] == "count_distinct" and x.split == "test")
    n = int(s.answer.value)  # type: ignore[arg-type]
    assert grade(s, str(n), []).passed
    assert not grade(s, str(n + 1), []).passed and not grade(s, str(s.meta["listed"]), []).passed
    m = next(x for x in hard_of(v3, "count_aggregate") if x.meta["form"] == "mean_converted" and x.split == "test")
    assert grade(m, reference_answer(m.answer), []).passed
    unconverted = [r for r in m.setup if r["valueQuantity"]["unit"] == m.meta["other_unit"]]
    naive = (float(m.answer.value) * (len(unconverted) + 1))  # type: ignore[arg-type]
    assert not grade(m, f"{naive:.3f} {m.answer.unit}", []).passed
    assert not grade(m, f"{m.answer.value} {m.answer.unit} from 5 results", []).passed  # a second number


def _dev_prior(v3: list[Scenario]) -> AnswerPrior:
    return AnswerPrior(s for s in v3 if s.split == "dev")


def test_counts_are_spread_and_a_count_guessed_from_dev_is_rarely_right(v3: list[Scenario]) -> None:
    """No count answers more than about a tenth of a counting form's items in a split, and the chart-blind prior
    (dev's most frequent answer of the same question shape) is right on at most 10% of the test items (v3 as first
    built: 11 of 44, dev's most frequent count 6 answered 8 of 27 test count_distinct items)."""
    items = hard_of(v3, "count_aggregate")
    for split in ("dev", "test"):
        for form in ("count_distinct", "count_after_event", "encounter_days"):
            mine = [s for s in items if s.split == split and s.meta["form"] == form]
            counts = Counter(s.answer.value for s in mine)
            assert mine and max(counts.values()) <= max(1, round(0.1 * len(mine))), (split, form, counts)
    test = [s for s in items if s.split == "test"]
    prior = _dev_prior(v3)
    right = [s.id for s in test if grade(s, prior.guess(s), []).passed]
    assert len(right) <= 0.1 * len(test) and len(test) >= 30, (len(right), len(test))
    by_lab: dict[tuple[str, str], Counter[Any]] = defaultdict(Counter)
    for s in items:
        if s.split == "dev" and "loinc" in s.meta:
            by_lab[(s.meta["form"], s.meta["loinc"])][s.answer.value] += 1
    for s in test:
        tally = by_lab.get((s.meta["form"], s.meta.get("loinc")))
        if tally and s.meta["form"] != "mean_converted":
            assert tally[s.answer.value] < max(tally.values()), s.id  # never dev's most frequent count of its lab


def test_active_lists_are_rarely_none_and_yes_no_stays_balanced(v3: list[Scenario]) -> None:
    """medication_current: an empty active list ("none") is at most a tenth of the list questions in each split (v3
    as first built: 4 of 11 in test, so answering "none" passed 36%), the yes/no questions stay 1:1, and the
    chart-blind prior names the right list for at most 10% of the test lists."""
    items = [s for s in v3 if s.category == "medication_current"]
    for split in ("dev", "test"):
        lists = [s for s in items if s.split == split and s.meta["form"] == "med_current_list"]
        empty = [s for s in lists if not s.answer.value]
        assert lists and len(empty) <= 0.1 * len(lists), (split, len(empty), len(lists))
        answers = Counter(s.answer.value for s in items if s.split == split and s.answer.type == "boolean")
        assert answers[True] == answers[False] > 0, (split, answers)
    prior = _dev_prior(v3)
    test_lists = [s for s in items if s.split == "test" and s.meta["form"] == "med_current_list"]
    assert sum(grade(s, prior.guess(s), []).passed for s in test_lists) <= 0.1 * len(test_lists)
    assert not any(grade(s, "none", []).passed for s in test_lists)


# ---------- disambiguation: the chart tells them apart ----------

def test_namesakes_share_name_and_birth_date_and_a_chart_fact_decides(v3: list[Scenario]) -> None:
    items = hard_of(v3, "disambiguation")
    for split in ("dev", "test"):
        variants = Counter(s.meta["variant"] for s in items if s.split == split)
        assert variants["chart"] == variants["namesake"] > 0, variants
    assert {s.meta["fact_kind"] for s in items if s.split == "test"} == {"condition", "encounter"}
    for s in items:
        decoy = next(r for r in s.setup if r["resourceType"] == "Patient")
        assert decoy["birthDate"] == s.meta["birth_date"], s.id
        assert s.meta["fact"] in s.question, s.id


def test_disambiguation_near_misses(v3: list[Scenario], raw_bundles: dict[str, Any]) -> None:
    for variant in ("chart", "namesake"):
        s = next(x for x in hard_of(v3, "disambiguation") if x.meta["variant"] == variant)
        right = json.loads(reference_answer(s.answer))
        diff = reference_diff(s)
        assert grade(s, json.dumps(right), diff).passed
        decoy = next(r for r in s.setup if r["resourceType"] == "Patient")
        own_mrn = next(i["value"] for i in raw_bundles[s.patient]["Patient"][0]["identifier"]
                       if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR")
        other_mrn = decoy["identifier"][0]["value"] if variant == "chart" else own_mrn
        assert not grade(s, json.dumps({**right, "mrn": other_mrn}), diff).passed  # the other namesake
        assert not grade(s, json.dumps({**right, "previous_weight": right["previous_weight"] + 0.3}), diff).passed
        other = s.patient if variant == "namesake" else decoy["id"]
        wrong = json.loads(json.dumps(diff))
        for change in wrong:
            if change["id"] not in {r["id"] for r in s.setup}:
                change["after"]["subject"]["reference"] = f"Patient/{other}"
        assert not grade(s, json.dumps(right), wrong).passed  # the weight written for the other one


# ---------- the grading trap ----------

def test_a_code_beside_the_value_is_no_longer_read_as_the_value(v3: list[Scenario]) -> None:
    potassium = next(s for s in v3 if s.category == "potassium_replacement" and s.branch == "no-action")
    value = potassium.answer.fields["potassium"].value
    assert grade(potassium, json.dumps({"potassium": value}), reference_diff(potassium)).passed
    assert not grade(potassium, json.dumps({"potassium": f"LOINC 6298-4: {value}"}), reference_diff(potassium)).passed
    assert not grade(potassium, f"{value} mmol/L", reference_diff(potassium)).passed  # not the stated JSON
    lab = next(s for s in v3 if s.category == "observation_value" and s.answer.unit == "g/dL")
    assert grade(lab, f"{lab.answer.value} g/dL", []).passed
    assert not grade(lab, f"Ordered LOINC 718-7; last hemoglobin {lab.answer.value} g/dL", []).passed
    assert not grade(lab, f"{lab.answer.value} mg/dL", []).passed  # another unit, not convertible


@pytest.mark.parametrize("category", ["magnesium_replacement", "potassium_replacement", "influenza_vaccine_due",
                                      "discontinue_medication"])
def test_core_answers_after_writes_are_json_with_the_named_field(category: str, v3: list[Scenario]) -> None:
    items = [s for s in v3 if s.category == category]
    for s in items:  # v3's magnesium names two fields itself (the renal check's creatinine too); the rest one, wrapped
        fields = ["magnesium", "creatinine"] if category == "magnesium_replacement" else [s.meta["answer_key"]]
        assert s.answer.type == "record" and list(s.answer.fields) == fields, s.id
        assert all(f'"{f}"' in s.question for f in fields), s.id
    assert items
