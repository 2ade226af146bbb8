"""The rule tables behind the cards, read from value_sets/*.json (each entry names its source)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel

from medagent.serve.cds_hooks.messages import Coding, Indicator

VALUE_SETS = Path(__file__).with_name("value_sets")


class Ingredient(BaseModel):
    name: str  # lower case, as read from RxNorm clinical drug names (medications.py)
    rxcui: str
    atc: str


class DrugClass(BaseModel):
    id: str
    title: str
    source: str
    class_terms: list[str]
    allergy_codes: list[Coding]
    ingredients: list[Ingredient]

    @property
    def names(self) -> set[str]:
        return {i.name for i in self.ingredients}


class RenalLimit(BaseModel):
    below: float
    indicator: Indicator
    remove: bool
    advice: str


class RenalRule(BaseModel):
    ingredients: list[str]
    source: str
    limits: list[RenalLimit]


class Monitoring(BaseModel):
    id: str
    label: str
    condition_codes: list[str]
    condition_terms: list[str]
    exclude_terms: list[str]
    lab_codes: list[str]
    every_days: int
    order: Coding
    source: str


class LabRange(BaseModel):
    codes: list[str]
    label: str
    unit: str
    low: float | None = None
    high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    source: str


class ChartRules(BaseModel):
    recent_days: int
    monitoring: list[Monitoring]
    ranges: list[LabRange]


class _DrugClasses(BaseModel):
    classes: list[DrugClass]


class _RenalDosing(BaseModel):
    rules: list[RenalRule]


@cache
def drug_classes() -> list[DrugClass]:
    return _DrugClasses.model_validate_json((VALUE_SETS / "drug_classes.json").read_bytes()).classes


@cache
def renal_rules() -> list[RenalRule]:
    return _RenalDosing.model_validate_json((VALUE_SETS / "renal_dosing.json").read_bytes()).rules


@cache
def chart_rules() -> ChartRules:
    return ChartRules.model_validate_json((VALUE_SETS / "chart_rules.json").read_bytes())


@cache
def ingredients_by_rxcui() -> dict[str, str]:
    """RxNorm ingredient code -> ingredient name, over every class."""
    return {i.rxcui: i.name for c in drug_classes() for i in c.ingredients}
