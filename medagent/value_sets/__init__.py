"""Clinical value sets (drug classes, condition groups) with their sources: one module per set, found by discovery.

Each module in this package declares one ``VALUE_SET = ValueSet(...)``: the member codes (with displays), the
code system and where the membership comes from (ATC class and RxNorm ingredients for drugs, the SNOMED CT
hierarchy for conditions). Generators and the oracle classify chart codes with them (``value_set("statins")``);
the agent is never given them: knowing that simvastatin is a statin is the knowledge a task tests.
A low-level package: it imports nothing from the rest of medagent except the code-system URLs.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from medagent.vocabulary import RXNORM, SNOMED

__all__ = ["RXNORM", "SNOMED", "Concept", "ValueSet", "all_value_sets", "value_set"]


@dataclass(frozen=True)
class Concept:
    """One member: a code of the set's system and its display."""

    code: str
    display: str


@dataclass(frozen=True)
class ValueSet:
    """A named class of codes of one system, with the source its membership was taken from."""

    name: str
    title: str
    system: str
    concepts: tuple[Concept, ...]
    source: str
    excludes: tuple[Concept, ...] = ()  # look-alikes that are deliberately not members (e.g. prediabetes)

    def __post_init__(self) -> None:
        codes = [c.code for c in self.concepts]
        if len(codes) != len(set(codes)):
            raise ValueError(f"value set {self.name!r} lists a code twice")
        overlap = set(codes) & {c.code for c in self.excludes}
        if overlap:
            raise ValueError(f"value set {self.name!r} both includes and excludes {sorted(overlap)}")

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.concepts)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def display(self, code: str) -> str | None:
        return next((c.display for c in self.concepts if c.code == code), None)


@cache
def all_value_sets() -> dict[str, ValueSet]:
    """Every value set of the package, by name (each module's ``VALUE_SET``)."""
    found: dict[str, ValueSet] = {}
    for module in pkgutil.iter_modules(__path__):
        declared = getattr(importlib.import_module(f"{__name__}.{module.name}"), "VALUE_SET", None)
        if not isinstance(declared, ValueSet):
            raise TypeError(f"{__name__}.{module.name} declares no VALUE_SET")
        if declared.name in found:
            raise ValueError(f"two value sets are named {declared.name!r}")
        found[declared.name] = declared
    return dict(sorted(found.items()))


def value_set(name: str) -> ValueSet:
    """The value set of that name; KeyError naming the known ones."""
    sets = all_value_sets()
    if name not in sets:
        raise KeyError(f"unknown value set {name!r}; known: {', '.join(sets)}")
    return sets[name]
