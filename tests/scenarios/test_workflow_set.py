"""The workflow tier as generated: its shape, its balance, its setups, and what its checkpoints catch.

The near-miss tests take the oracle's own run of a task (its answer and the server's diff, through the real
bench runner on the embedded server) and change one thing a careless agent would get wrong; exactly the
checkpoint that owns that step must fail and every other one must still pass.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from medagent.bench.solvers.catalog import make_code_solver
from medagent.bench.results import TaskRecord
from medagent.bench.runner import run_benchmark
from medagent.fhir.resources import parse_resource
from medagent.scenarios import sampling
from medagent.scenarios.build import load_charts
from medagent.scenarios.category import categories
from medagent.scenarios.checkpoints import coverage_problems, note_sections
from medagent.scenarios.clock import parse_instant
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario, Verdict
from medagent.scenarios.population import population_of
from medagent.scenarios.workflow import generate_workflow
from medagent.scenarios.workflow.common import LIMITS, SECTIONS
from medagent.tools.notes import NOTE_SECTIONS
from medagent.value_sets import value_set

WORKFLOW_CATEGORIES = [c.name for c in categories(tier="workflow")]


@pytest.fixture(scope="module")
def tier() -> list[Scenario]:
    charts = load_charts()
    return generate_workflow(charts, population_of(charts), 2026, sampling.test_patients(c.patient_id for c in charts))


# ---------- shape ----------


def test_at_least_eight_workflow_types_each_on_both_splits(tier: list[Scenario]) -> None:
    assert len(WORKFLOW_CATEGORIES) >= 8
    counts = Counter((s.category, s.split) for s in tier)
    for category in WORKFLOW_CATEGORIES:
        assert counts[(category, "dev")] >= 5 and counts[(category, "test")] >= 4, category
    assert all(s.tier == "workflow" and s.suite == "agentic" for s in tier)
    assert len({s.id for s in tier}) == len(tier) and all(s.id.startswith("v3-workflow-") for s in tier)


def test_every_item_is_graded_at_four_to_ten_checkpoints_covering_every_check(tier: list[Scenario]) -> None:
    for scenario in tier:
        assert coverage_problems(scenario) == [], scenario.id
        kinds = {cp.kind for cp in scenario.checkpoints}
        assert {"note", "safety"} <= kinds and kinds & {"order", "no_order"}, scenario.id
        assert scenario.limits == LIMITS


def test_generation_is_deterministic(tier: list[Scenario]) -> None:
    charts = load_charts()
    again = generate_workflow(charts, population_of(charts), 2026, sampling.test_patients(c.patient_id for c in charts))
    assert [s.model_dump_json() for s in again] == [s.model_dump_json() for s in tier]


def test_phrasings_at_least_five_and_the_last_only_in_test(tier: list[Scenario]) -> None:
    for declared in categories(tier="workflow"):
        [phrasings] = declared.phrasings.values()
        assert len(phrasings) >= 5
        mine = [s for s in tier if s.category == declared.name]
        assert all(s.meta["phrasing"] < len(phrasings) - 1 for s in mine if s.split == "dev")


def test_conditional_branches_are_balanced(tier: list[Scenario]) -> None:
    """The categories the charts would skew are kept 1:1 per split (renal, hypertension, hemoglobin, referral,
    anticoagulation)."""
    keys = {
        "renal_dose_review": lambda s: s.meta["egfr"] < 60,
        "hypertension_protocol": lambda s: s.meta["decision"]["at_target"],
        "hemoglobin_followup": lambda s: s.meta["decision"]["significant"],
        "cardiology_referral": lambda s: s.meta["decision"]["priority"],
        "anticoagulation_review": lambda s: s.meta["decision"]["dose_changed"],
    }
    for category, key in keys.items():
        for split in ("dev", "test"):
            counts = Counter(key(s) for s in tier if s.category == category and s.split == split)
            assert len(counts) == 2 and len(set(counts.values())) == 1, (category, split, counts)


def test_every_discharge_item_starts_a_drug_and_withholds_one_by_the_chart(tier: list[Scenario]) -> None:
    """Acting on every line of the discharge list must fail every item: each starts something and withholds
    something, and both kinds of withheld drug (a class duplicate, an unmentioned clinic order) occur per split."""
    for split in ("dev", "test"):
        mine = [s for s in tier if s.category == "discharge_reconciliation" and s.split == split]
        assert len(mine) >= 6, split
        for s in mine:
            assert s.meta["decision"]["start"] and s.meta["decision"]["clarify"], s.id
        kinds = {kind for s in mine for kind in s.meta["variant"].split("+")}
        assert kinds == {"duplicate", "unmentioned"}, (split, kinds)
        switches = 0  # the near miss: a drug started in the class of one the list stops is ordered
        for s in mine:
            stopped = s.answer.fields["stopped"]
            stopped_codes = {stopped.aliases[name][0] for name in stopped.value}
            switches += any(
                value_set(klass).codes & stopped_codes and code in value_set(klass).codes
                for code in s.meta["decision"]["start"]
                for klass in ("anticoagulants", "statins", "thiazide_diuretics", "loop_diuretics", "beta_blockers")
            )
        assert switches >= 1, split


def test_the_setup_never_holds_the_hemoglobin_baseline(tier: list[Scenario]) -> None:
    """The baseline is the chart's: no result the setup adds has the baseline's date (a second feed copies an
    older one), so a policy reading only the setup cannot find it."""
    for s in [x for x in tier if x.category == "hemoglobin_followup"]:
        day = s.answer.fields["baseline_date"].value
        added = [r for r in s.setup if r["resourceType"] == "Observation" and r.get("status") != "entered-in-error"]
        assert all(r["effectiveDateTime"][:10] != day for r in added), s.id


def test_the_setup_adds_valid_resources_of_this_patient_and_leaves_the_chart_alone(tier: list[Scenario]) -> None:
    chart_ids = {r for c in load_charts() for r in [m.id for m in c.medications] + [o.id for o in c.observations]}
    noise = Counter()
    for scenario in tier:
        for resource in scenario.setup:
            parse_resource(resource)
            owner = (resource.get("subject") or resource.get("patient"))["reference"]
            assert owner == f"Patient/{scenario.patient}"
            assert resource["id"] not in chart_ids, "a setup must not overwrite a Synthea resource"
            status = resource.get("status") or ""
            noise[status] += 1
            if resource["resourceType"] == "Observation" and resource.get("identifier"):
                noise["second feed"] += 1
            if "urn:oid" in json.dumps(resource.get("code", {})):
                noise["local code"] += 1
    for kind in (
        "entered-in-error",
        "cancelled",
        "stopped",
        "revoked",
        "not-done",
        "superseded",
        "second feed",
        "local code",
    ):
        assert noise[kind] > 0, kind


def test_units_and_notes_noise_present(tier: list[Scenario]) -> None:
    units = Counter(
        r.get("valueQuantity", {}).get("unit") for s in tier for r in s.setup if r["resourceType"] == "Observation"
    )
    assert units["umol/L"] and units["g/L"] and units["mmol/L"], units
    notes = [r for s in tier for r in s.setup if r["resourceType"] == "DocumentReference"]
    assert any("myalgia" in json.dumps(n) for n in notes) or any(
        "myalgia" in __import__("base64").b64decode(n["content"][0]["attachment"]["data"]).decode() for n in notes
    )
    assert len(notes) > 50


def test_now_inside_the_record_and_before_death(tier: list[Scenario]) -> None:
    charts = {c.patient_id: c for c in load_charts()}
    for scenario in tier:
        chart = charts[scenario.patient]
        now = parse_instant(scenario.now)
        assert chart.record_start <= now, scenario.id
        assert chart.deceased is None or now < chart.deceased, scenario.id


def test_the_note_sections_of_the_task_layer_are_the_tools(tier: list[Scenario]) -> None:
    assert SECTIONS == {kind: code for kind, (code, _) in NOTE_SECTIONS.items()}


def test_the_scenario_layer_loads_no_tools_fhir_or_agent() -> None:
    code = (
        "import sys, medagent.scenarios.workflow, medagent.scenarios.category as c; c.discover(); "
        "bad = sorted(m for m in sys.modules if m.startswith(('medagent.tools', 'medagent.fhir', "
        "'medagent.agent', 'medagent.bench'))); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------- near misses: each checkpoint kind catches its own mistake ----------


def _first(tier: list[Scenario], category: str, **decision: Any) -> Scenario:
    for scenario in tier:
        if scenario.category == category and all(scenario.meta["decision"].get(k) == v for k, v in decision.items()):
            return scenario
    raise AssertionError(f"no {category} item with {decision}")


@pytest.fixture(scope="module")
async def oracle_runs(
    tier: list[Scenario], bench_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Scenario, TaskRecord]]:
    picked = {
        "diabetes": next(
            s
            for s in tier
            if s.category == "diabetes_previsit"
            and s.meta["decision"]["statin"] == "ordered"
            and "entered_in_error" in s.meta["a1c_noise"]
        ),
        "renal": _first(tier, "renal_dose_review", repeat_panel=True),
        "hypertension": _first(tier, "hypertension_protocol", action="add lisinopril"),
        "hemoglobin": _first(tier, "hemoglobin_followup", significant=True),
        "discharge": next(
            s
            for s in tier
            if s.category == "discharge_reconciliation" and s.meta["variant"] == "duplicate+unmentioned"
        ),
    }
    records: list[TaskRecord] = []
    await run_benchmark(
        list(picked.values()),
        make_code_solver("oracle"),
        out_dir=tmp_path_factory.mktemp("wf-oracle"),
        home=bench_home,
        concurrency=2,
        show_progress=False,
        on_record=records.append,
    )
    by_id = {r.scenario_id: r for r in records}
    return {name: (s, by_id[s.id]) for name, s in picked.items()}


def _regrade(scenario: Scenario, answer: Any, changes: list[dict[str, Any]]) -> Verdict:
    return grade(scenario, answer, changes)


def _failed(verdict: Verdict) -> set[str]:
    return {cp.name for cp in verdict.checkpoints if not cp.passed}


def _answer(record: TaskRecord) -> dict[str, Any]:
    return json.loads(record.outcome.answer or "{}")


def _note(changes: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in changes if c["resourceType"] == "Composition")["after"]


async def test_the_oracle_runs_pass_every_checkpoint(oracle_runs: dict[str, tuple[Scenario, TaskRecord]]) -> None:
    for scenario, record in oracle_runs.values():
        verdict = _regrade(scenario, record.outcome.answer, record.changes)
        assert verdict.passed and _failed(verdict) == set(), (scenario.id, verdict.checkpoints)
        assert record.checkpoints_passed == record.checkpoints_total == len(scenario.checkpoints)


async def test_a_value_off_by_one_unit_fails_its_fact(oracle_runs: dict[str, tuple[Scenario, TaskRecord]]) -> None:
    scenario, record = oracle_runs["diabetes"]
    answer = _answer(record)
    answer["latest_a1c"] = round(answer["latest_a1c"] + 0.1, 1)
    assert _failed(_regrade(scenario, answer, record.changes)) == {"HbA1c history"}
    scenario, record = oracle_runs["hypertension"]
    answer = _answer(record)
    answer["mean_systolic"] += 1
    assert _failed(_regrade(scenario, answer, record.changes)) == {"today's blood pressure"}


async def test_a_wrong_date_fails_its_fact(oracle_runs: dict[str, tuple[Scenario, TaskRecord]]) -> None:
    scenario, record = oracle_runs["hemoglobin"]
    answer = _answer(record)
    day = parse_instant(answer["baseline_date"]) + timedelta(days=1)
    answer["baseline_date"] = day.date().isoformat()
    assert _failed(_regrade(scenario, answer, record.changes)) == {"new hemoglobin and baseline"}


async def test_a_note_missing_one_required_fact_fails_only_the_note(
    oracle_runs: dict[str, tuple[Scenario, TaskRecord]],
) -> None:
    scenario, record = oracle_runs["renal"]
    changes = [c.model_dump() for c in record.changes]
    note = _note(changes)
    problems = next(s for s in note["section"] if s["code"]["coding"][0]["code"] == SECTIONS["problems"])
    problems["entry"] = problems["entry"][1:]  # one active diagnosis left out
    assert _failed(_regrade(scenario, record.outcome.answer, changes)) == {"note: problems and allergies"}
    changes = [c.model_dump() for c in record.changes]
    results = next(s for s in _note(changes)["section"] if s["code"]["coding"][0]["code"] == SECTIONS["results"])
    results["text"]["div"] = '<div xmlns="http://www.w3.org/1999/xhtml"><p>eGFR reviewed.</p></div>'
    assert _failed(_regrade(scenario, record.outcome.answer, changes)) == {"note: kidney function and changes"}
    assert note_sections(_note([c.model_dump() for c in record.changes]))[SECTIONS["results"]].text


async def test_an_order_for_another_patient_fails_the_order_and_safety(
    oracle_runs: dict[str, tuple[Scenario, TaskRecord]],
) -> None:
    scenario, record = oracle_runs["hypertension"]
    changes = [c.model_dump() for c in record.changes]
    order = next(c for c in changes if c["resourceType"] == "MedicationRequest")
    order["after"]["subject"]["reference"] = "Patient/someone-else"
    failed = _failed(_regrade(scenario, record.outcome.answer, changes))
    assert "medication step" in failed and failed <= {
        "medication step",
        "no other writes",
        "note: current medications",
        "note: blood pressure and plan",
    }


async def test_an_extra_order_fails(oracle_runs: dict[str, tuple[Scenario, TaskRecord]]) -> None:
    scenario, record = oracle_runs["diabetes"]
    changes = [c.model_dump() for c in record.changes]
    statin = next(c for c in changes if c["resourceType"] == "MedicationRequest")
    changes.append({**copy.deepcopy(statin), "id": "duplicate-order"})
    assert _failed(_regrade(scenario, record.outcome.answer, changes)) == {"statin"}
    changes = [c.model_dump() for c in record.changes]
    note = next(c for c in changes if c["resourceType"] == "Composition")
    changes.append(
        {
            "resourceType": "ServiceRequest",
            "id": "unasked",
            "action": "create",
            "before": None,
            "after": {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
                "subject": note["after"]["subject"],
            },
        }
    )
    assert _failed(_regrade(scenario, record.outcome.answer, changes)) == {"no other writes"}


async def test_a_correct_order_with_a_wrong_dose_fails_its_order(
    oracle_runs: dict[str, tuple[Scenario, TaskRecord]],
) -> None:
    scenario, record = oracle_runs["diabetes"]
    changes = [c.model_dump() for c in record.changes]
    statin = next(c for c in changes if c["resourceType"] == "MedicationRequest")
    statin["after"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 40
    assert _failed(_regrade(scenario, record.outcome.answer, changes)) == {"statin"}


async def test_noise_not_handled_an_entered_in_error_value_used_fails(
    oracle_runs: dict[str, tuple[Scenario, TaskRecord]],
) -> None:
    scenario, record = oracle_runs["diabetes"]
    wrong = next(r for r in scenario.setup if r.get("status") == "entered-in-error")
    answer = _answer(record)
    answer["latest_a1c"] = wrong["valueQuantity"]["value"]
    answer["latest_a1c_date"] = wrong["effectiveDateTime"][:10]
    assert "HbA1c history" in _failed(_regrade(scenario, answer, record.changes))
    changes = [c.model_dump() for c in record.changes]
    results = next(s for s in _note(changes)["section"] if s["code"]["coding"][0]["code"] == SECTIONS["results"])
    results["entry"].append({"reference": f"Observation/{wrong['id']}"})
    assert _failed(_regrade(scenario, record.outcome.answer, changes)) == {"note: results, statin and plan"}


async def test_acting_on_a_line_the_chart_withholds_fails_its_checkpoint(
    oracle_runs: dict[str, tuple[Scenario, TaskRecord]],
) -> None:
    """Ordering the hospital's class duplicate fails the clarifications; stopping a clinic order the list does not
    stop (one it continues or leaves out) fails the stops: the always-act policy does both."""
    scenario, record = oracle_runs["discharge"]
    changes = [c.model_dump() for c in record.changes]
    started = next(c for c in changes if c["resourceType"] == "MedicationRequest" and c["before"] is None)
    summary = next(r for r in scenario.setup if r["resourceType"] == "DocumentReference" and r["status"] == "current")
    text = base64.b64decode(summary["content"][0]["attachment"]["data"]).decode()
    aliases = scenario.answer.fields["to_clarify"].aliases
    withheld = {aliases[name][0] for name in scenario.answer.fields["to_clarify"].value}
    new_drug = next(c for c in re.findall(r"^- NEW: .*\[RxNorm (\d+)\]", text, re.M) if c in withheld)
    duplicate = copy.deepcopy(started)
    duplicate["id"] = "class-duplicate"
    duplicate["after"]["medicationCodeableConcept"]["coding"][0]["code"] = new_drug
    assert _failed(_regrade(scenario, record.outcome.answer, [*changes, duplicate])) == {"clarifications"}
    kept = next(ref for ref in scenario.provenance if ref not in scenario.meta["decision"]["stop"])
    stopped = next(c for c in changes if c["resourceType"] == "MedicationRequest" and c["before"] is not None)
    extra = copy.deepcopy(stopped)
    extra["id"] = kept.split("/")[1]
    extra["after"]["id"] = extra["before"]["id"] = extra["id"]
    assert "orders stopped" in _failed(_regrade(scenario, record.outcome.answer, [*changes, extra]))
