"""One code solver per measured shortcut of v2's hard tier (issue #27); v3 must defeat every one of them.

Each applies to the categories its shortcut targets (``applies``) and answers in v3's formats:

- ``nearest-dev`` (cohort_measure): copies the answer of the nearest dev item of the same measure (date, age band,
  sex, threshold); no tool call.
- ``stated-number`` (bp_workup_workflow): records the stated reading and orders the panel when the stated reading
  alone is in the stage 2 range; reports it as the means of one reading.
- ``setup-only`` (safety_gated_order, bp_workup_workflow, potassium_replacement, magnesium_replacement): applies
  the task's rule to the resources the setup adds (``Scenario.setup``, what a runner writes before the agent) as if
  the chart held nothing else; writes what that decides (the workflow tier and v3's magnesium: the oracle itself
  with every read filtered to the setup's resources).
- ``first-sentences`` (prompt_injection): keeps the first two sentences of the newest note; orders the LOINC code
  found there (none: no order) and reports its latest result.
- ``lab-name-prior`` (abstention): says "not recorded" for a lab when most dev items found it unrecorded, else the
  dev items' median value of that lab; no tool call.

Writes go through the tools like the oracle's (``OracleSolver``), so the grader judges the server's state.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from statistics import mean, median
from typing import Any

from medagent.bench.solvers.oracle import OracleSolver, SolverTools
from medagent.bench.solvers.workflow import setup_view, solve_in_view
from medagent.bench.solvers.wrong import FixedAnswerSolver
from medagent.scenarios.category import set_version
from medagent.scenarios.chart_reads import latest_observation
from medagent.scenarios.codes import (
    MAGNESIUM,
    MAGNESIUM_THRESHOLD,
    NDC_POTASSIUM_ORAL,
    POTASSIUM,
    POTASSIUM_SERUM_ORDER,
    POTASSIUM_THRESHOLD,
    magnesium_dose,
    magnesium_order_arguments,
)
from medagent.scenarios.models import Scenario
from medagent.scenarios.scenario_files import open_set
from medagent.scenarios.tool_caller import OracleAnswer, ToolGap
from medagent.scenarios.tool_rows import numeric, utc_moment
from medagent.scenarios.v3 import bp_workup, safety
from medagent.vocabulary import parse_instant

SHORTCUTS = ("nearest-dev", "stated-number", "setup-only", "first-sentences", "lab-name-prior")


def _dev_examples(set_folder: Path | None, examples: Iterable[Scenario] | None) -> list[Scenario]:
    if examples is None:
        if set_folder is None:
            from medagent.bench.scenario_sets import default_scenarios_dir

            set_folder = default_scenarios_dir()
        examples = open_set(set_folder).load("all", "dev", "all")
    chosen = list(examples)
    if any(s.split != "dev" for s in chosen):
        raise ValueError("a dev-learning baseline learns from dev only")
    return chosen


# ---------- no tool call: nearest-dev, lab-name prior ----------


class NearestDevSolver(FixedAnswerSolver):
    """Deliberately wrong solver (a shortcut): a cohort worklist answered with the answer of the dev item of the same
    measure nearest in date, age band, sex and threshold; no tool call."""

    name = "nearest-dev"
    categories = frozenset({"cohort_measure"})

    def __init__(self, set_folder: Path | None = None, examples: Iterable[Scenario] | None = None) -> None:
        super().__init__(answer="none")
        self.dev = [s for s in _dev_examples(set_folder, examples) if s.category in self.categories]

    def applies(self, scenario: Scenario) -> bool:
        return scenario.category in self.categories

    @staticmethod
    def distance(a: Scenario, b: Scenario) -> float:
        """Years apart + age-band ends apart / 5 + 1 for another sex + threshold points apart."""
        days = abs((parse_instant(a.now) - parse_instant(b.now)).days) / 365.25
        ages = (abs(a.meta["age_min"] - b.meta["age_min"]) + abs(a.meta["age_max"] - b.meta["age_max"])) / 5
        threshold = abs((a.meta.get("threshold") or 0.0) - (b.meta.get("threshold") or 0.0))
        return days + ages + (a.meta.get("sex") != b.meta.get("sex")) + threshold

    def answer_for(self, scenario: Scenario) -> str:
        same = [d for d in self.dev if d.meta.get("form") == scenario.meta.get("form")]
        if not same:
            return "none"
        nearest = min(same, key=lambda d: (self.distance(scenario, d), d.id))
        return "; ".join(nearest.answer.value or []) or "none"  # type: ignore[arg-type]


class LabNamePriorSolver(FixedAnswerSolver):
    """Deliberately wrong solver (a shortcut): per lab, "not recorded" when most dev items of that lab were
    unrecorded, else the dev items' median value; no tool call."""

    name = "lab-name-prior"
    categories = frozenset({"abstention"})

    def __init__(self, set_folder: Path | None = None, examples: Iterable[Scenario] | None = None) -> None:
        super().__init__(answer="none")
        self.recorded: dict[str, list[bool]] = defaultdict(list)
        self.values: dict[str, list[float]] = defaultdict(list)
        for example in _dev_examples(set_folder, examples):
            if example.category not in self.categories:
                continue
            for key, code in example.meta["labs"].items():
                value = example.answer.fields[key].value
                self.recorded[code].append(value is not None)
                if isinstance(value, float):
                    self.values[code].append(value)

    def applies(self, scenario: Scenario) -> bool:
        return scenario.category in self.categories

    def predicts_recorded(self, code: str) -> bool:
        seen = self.recorded.get(code, [])
        return sum(seen) * 2 > len(seen)

    def answer_for(self, scenario: Scenario) -> str:
        answer: dict[str, Any] = {}
        for key, code in scenario.meta["labs"].items():
            values = self.values.get(code)
            answer[key] = round(median(values), 2) if self.predicts_recorded(code) and values else "not recorded"
        return json.dumps(answer)


# ---------- with tools: stated number, setup only, first sentences ----------


class ShortcutSolver(OracleSolver):
    """Deliberately wrong solver (a shortcut) for some categories; writes through the tools like the oracle."""

    categories: frozenset[str] = frozenset()

    def applies(self, scenario: Scenario) -> bool:
        return scenario.category in self.categories

    async def answer(self, tools: SolverTools, scenario: Scenario) -> OracleAnswer:
        if not self.applies(scenario):
            raise ToolGap(f"{self.name} has no shortcut for {scenario.category}")
        return await self.shortcut(tools, scenario)

    async def shortcut(self, tools: SolverTools, scenario: Scenario) -> OracleAnswer:
        raise NotImplementedError


async def _record_bp_and_decide(
    tools: SolverTools, sc: Scenario, systolic: list[float], diastolic: list[float]
) -> OracleAnswer:
    """The bp work-up's writes and answer for readings chosen by a shortcut."""
    patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
    await tools.call(
        "record_vital_sign",
        patient=patient,
        vital="blood_pressure",
        systolic=sc.meta["systolic"],
        diastolic=sc.meta["diastolic"],
        reason="blood pressure measured at the visit",
    )
    if bp_workup.decides(systolic, diastolic):
        await tools.call(
            "order_service",
            patient=patient,
            code=bp_workup.BMP[0],
            system="loinc",
            kind="lab",
            reason="blood pressure in the stage 2 range",
        )
    return OracleAnswer(
        json.dumps(
            {
                "readings": len(systolic),
                "mean_systolic": round(mean(systolic)),
                "mean_diastolic": round(mean(diastolic)),
            }
        ),
        [],
    )


class StatedNumberSolver(ShortcutSolver):
    """Deliberately wrong solver (a shortcut): in the bp work-up the reading the task states decides alone."""

    name = "stated-number"
    categories = frozenset({"bp_workup_workflow"})

    async def shortcut(self, tools: SolverTools, sc: Scenario) -> OracleAnswer:
        return await _record_bp_and_decide(tools, sc, [float(sc.meta["systolic"])], [float(sc.meta["diastolic"])])


def _setup(sc: Scenario, kind: str) -> list[dict[str, Any]]:
    return [r for r in sc.setup if r.get("resourceType") == kind]


def _coded(resource: dict[str, Any], key: str) -> str:
    return (resource.get(key) or {}).get("coding", [{}])[0].get("code") or ""


def _display(concept: dict[str, Any]) -> str:
    return concept.get("text") or (concept.get("coding") or [{}])[0].get("display") or ""


def _values(sc: Scenario, code: str) -> list[tuple[datetime, float]]:
    """(moment, value) of the setup's Observations of one code, oldest first."""
    found = [
        (parse_instant(r["effectiveDateTime"]), float(r["valueQuantity"]["value"]))
        for r in _setup(sc, "Observation")
        if _coded(r, "code") == code and "valueQuantity" in r
    ]
    return sorted(found)


class SetupOnlySolver(ShortcutSolver):
    """Deliberately wrong solver (a shortcut): the task's rule applied to the resources the setup adds, as if the
    chart held nothing else."""

    name = "setup-only"
    categories = frozenset(
        {"safety_gated_order", "bp_workup_workflow", "potassium_replacement", "magnesium_replacement"}
    )

    def applies(self, scenario: Scenario) -> bool:
        return scenario.tier == "workflow" or super().applies(scenario)

    async def shortcut(self, tools: SolverTools, sc: Scenario) -> OracleAnswer:
        if sc.tier == "workflow" or (sc.category == "magnesium_replacement" and set_version(sc) >= 3):
            # the oracle itself, seeing only what the setup added (v3 magnesium: the protocol's renal check finds
            # no creatinine there)
            return await solve_in_view(self, setup_view(self, tools, sc), sc)
        if sc.category == "bp_workup_workflow":
            since = parse_instant(sc.now) - timedelta(days=int(sc.meta["window_days"]))
            panels = [r for r in _setup(sc, "Observation") if since <= parse_instant(r["effectiveDateTime"])]
            parts = [
                {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in r["component"]} for r in panels
            ]
            systolic = [float(p[bp_workup.SYSTOLIC]) for p in parts] + [float(sc.meta["systolic"])]
            diastolic = [float(p[bp_workup.DIASTOLIC]) for p in parts] + [float(sc.meta["diastolic"])]
            return await _record_bp_and_decide(tools, sc, systolic, diastolic)
        patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
        key = str(sc.meta.get("answer_key", ""))
        if sc.category == "safety_gated_order":
            return await self._safety(tools, sc, patient)
        now = parse_instant(sc.now)
        if sc.category == "potassium_replacement":
            values = _values(sc, POTASSIUM)
            latest = values[-1][1] if values else None
            if latest is not None and latest < POTASSIUM_THRESHOLD:
                dose = float((round(POTASSIUM_THRESHOLD * 10) - round(latest * 10)) * 10)
                await tools.call(
                    "order_medication",
                    patient=patient,
                    code=NDC_POTASSIUM_ORAL,
                    system="ndc",
                    dose_value=dose,
                    dose_unit="mEq",
                    route="oral",
                    reason="low potassium",
                )
                await tools.call(
                    "order_service",
                    patient=patient,
                    code=POTASSIUM_SERUM_ORDER,
                    system="loinc",
                    kind="lab",
                    occurrence="tomorrow 08:00",
                    reason="follow-up serum potassium",
                )
            return OracleAnswer(json.dumps({key: latest if latest is not None else "none"}), [])
        values = _values(sc, MAGNESIUM)
        recent = [v for when, v in values if now - when <= timedelta(hours=24)]
        if recent and recent[-1] <= MAGNESIUM_THRESHOLD:
            grams = magnesium_dose(recent[-1])
            await tools.call("order_medication", **magnesium_order_arguments(patient, grams, "low magnesium"))
        return OracleAnswer(json.dumps({key: values[-1][1] if values else "none"}), [])

    @staticmethod
    async def _safety(tools: SolverTools, sc: Scenario, patient: str) -> OracleAnswer:
        courses = [
            {"display": _display(r["medicationCodeableConcept"]), "status": r["status"], "authored": r["authoredOn"]}
            for r in _setup(sc, "MedicationRequest")
        ]
        allergies = [
            {
                "display": _display(r["code"]),
                "type": r.get("type"),
                "status": _coded(r, "clinicalStatus"),
                "verification": _coded(r, "verificationStatus"),
                "criticality": r.get("criticality"),
                "date": r.get("recordedDate"),
            }
            for r in _setup(sc, "AllergyIntolerance")
        ]
        duplicate = any("amoxicillin" in c["display"].lower() and c["status"] == "active" for c in courses)
        decision = (
            "allergy"
            if any(safety.counts_as_allergy(a, courses) for a in allergies)
            else "duplicate"
            if duplicate
            else "ordered"
        )
        if decision == "ordered":
            await tools.call(
                "order_medication",
                patient=patient,
                code=safety.AMOXICILLIN_500[0],
                system="rxnorm",
                dose_value=500,
                dose_unit="mg",
                route="oral",
                instructions="1 capsule every 8 hours",
                reason="strep pharyngitis",
            )
        return OracleAnswer(json.dumps({"decision": decision, "crcl": "none"}), [])


class FirstSentencesSolver(ShortcutSolver):
    """Deliberately wrong solver (a shortcut): only the first two sentences of the newest note (any type) are read;
    a LOINC code there is ordered."""

    name = "first-sentences"
    categories = frozenset({"prompt_injection"})

    async def shortcut(self, tools: SolverTools, sc: Scenario) -> OracleAnswer:
        patient, _ = await tools.reads.patient_by_mrn(sc.meta["mrn"])
        notes = await tools.call(
            "fhir_search", resource_type="DocumentReference", params={"patient": patient}, limit=10
        )
        if not notes.rows:
            return OracleAnswer(json.dumps({"loinc": "none", "last_result": "none"}), [])
        newest = max(notes.rows, key=lambda r: utc_moment(r.get("date")))
        first_two = " ".join(re.split(r"(?<=\.)\s+", newest.get("text") or "")[:2])
        found = re.search(r"LOINC (\d{1,7}-\d)", first_two)
        if found is None:
            return OracleAnswer(json.dumps({"loinc": "none", "last_result": "none"}), [newest["ref"]])
        code = found.group(1)
        row = await latest_observation(tools, patient, code)
        await tools.call("order_service", patient=patient, code=code, system="loinc", kind="lab", reason="note plan")
        value = numeric(row) if row else "none"
        return OracleAnswer(json.dumps({"loinc": code, "last_result": value}), [newest["ref"]])
