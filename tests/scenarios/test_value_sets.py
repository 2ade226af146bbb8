"""The value sets: found by discovery, each with its source, and right about the codes the charts hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medagent.scenarios.build import load_charts
from medagent.value_sets import RXNORM, SNOMED, ValueSet, all_value_sets, value_set

ROOT = Path(__file__).resolve().parents[2] / "medagent"


def test_every_module_declares_one_named_set_with_a_source() -> None:
    sets = all_value_sets()
    modules = {p.stem for p in (ROOT / "value_sets").glob("*.py") if p.stem != "__init__"}
    assert set(sets) == modules, "one module per set, named after it"
    for declared in sets.values():
        assert declared.system in (RXNORM, SNOMED) and declared.concepts and len(declared.source) > 40
        assert not declared.codes & {c.code for c in declared.excludes}
    with pytest.raises(KeyError, match="unknown value set 'proton_pump_inhibitors'"):
        value_set("proton_pump_inhibitors")
    with pytest.raises(ValueError, match="both includes and excludes"):
        ValueSet(
            "x",
            "x",
            RXNORM,
            (value_set("statins").concepts[0],),
            "x" * 50,
            excludes=(value_set("statins").concepts[0],),
        )


@pytest.mark.parametrize(
    ("name", "member", "outsider"),
    [
        ("statins", "Simvastatin 20 MG Oral Tablet", "Clopidogrel 75 MG Oral Tablet"),
        ("anticoagulants", "Warfarin Sodium 5 MG Oral Tablet", "Clopidogrel 75 MG Oral Tablet"),
        ("nsaids", "Naproxen sodium 220 MG Oral Tablet", "Acetaminophen 325 MG Oral Tablet"),
        ("ace_inhibitors_arbs", "Captopril 25 MG Oral Tablet", "Hydrochlorothiazide 25 MG"),
        ("thiazide_diuretics", "Hydrochlorothiazide 25 MG", "Lasix 40mg"),
        ("loop_diuretics", "Lasix 40mg", "Hydrochlorothiazide 25 MG"),
        ("beta_blockers", "24 HR metoprolol succinate 100 MG Extended Release Oral Tablet [Toprol]", "Verapamil Hydrochloride 40 MG"),
        ("diabetes", "Neuropathy due to type 2 diabetes mellitus (disorder)", "Prediabetes"),
    ],
)
def test_the_chart_codes_of_a_class_are_in_it_and_look_alikes_are_not(name: str, member: str, outsider: str) -> None:
    """Checked against the displays the Synthea charts give those codes (not against the set's own displays)."""
    shown: dict[str, str] = {}
    for chart in load_charts():
        for med in chart.medications:
            shown[med.code.display] = med.code.code
        for condition in chart.conditions:
            shown[condition.code.display] = condition.code.code
    assert shown[member] in value_set(name)
    assert shown[outsider] not in value_set(name)


def test_every_drug_of_the_charts_named_after_a_class_ingredient_is_in_that_class() -> None:
    ingredients = {
        "statins": ("statin",),
        "anticoagulants": ("warfarin",),
        "nsaids": ("naproxen", "ibuprofen"),
        "ace_inhibitors_arbs": ("captopril", "lisinopril", "losartan"),
        "thiazide_diuretics": ("thiazide", "chlorthalidone"),
        "loop_diuretics": ("lasix", "furosemide", "bumetanide", "torsemide"),
        "beta_blockers": ("olol",),
    }
    for chart in load_charts():
        for med in chart.medications:
            for name, words in ingredients.items():
                if any(w in med.code.display.lower() for w in words):
                    assert med.code.code in value_set(name), (name, med.code.display)


def test_neither_the_agent_nor_its_tools_use_the_value_sets() -> None:
    """The agent is never given them: classifying a drug is the knowledge a task tests."""
    for package in ("agent", "tools", "models"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom | ast.Import):
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    assert not any(n.startswith("medagent.value_sets") for n in names), path
