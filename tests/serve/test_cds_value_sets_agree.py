"""The CDS Hooks service's drug classes and the project's value sets say the same thing where they overlap.

Two tables name drug classes: ``medagent/value_sets`` (for the generators and the oracle) and the CDS service's
``drug_classes.json`` (allergy cross-reactivity). Where a CDS class has a value set of the same name, every
ingredient one lists is in the other, with the same name, except the differences each table states on purpose.
"""

from __future__ import annotations

import pytest

from medagent.serve.cds_hooks.value_sets import drug_classes
from medagent.value_sets import all_value_sets, value_set

# CDS ingredient -> the value set that holds it instead, and why (README of medagent/value_sets)
ON_PURPOSE = {("nsaids", "1191"): "antiplatelets"}  # aspirin: an NSAID hypersensitivity; low-dose, an antiplatelet

SHARED = sorted(c.id for c in drug_classes() if c.id in all_value_sets())


def ingredient_codes(name: str) -> dict[str, str]:
    """A value set's ingredient members (RxNorm IN concepts: a lower-case name, not a product)."""
    return {c.code: c.display for c in value_set(name).concepts if c.display == c.display.lower()}


def test_some_classes_are_shared() -> None:
    assert "nsaids" in SHARED


@pytest.mark.parametrize("name", SHARED)
def test_the_shared_ingredients_agree(name: str) -> None:
    cds = next(c for c in drug_classes() if c.id == name)
    members = ingredient_codes(name)
    for ingredient in cds.ingredients:
        elsewhere = ON_PURPOSE.get((name, ingredient.rxcui))
        if elsewhere:
            assert ingredient.rxcui in value_set(elsewhere), (name, ingredient)
            assert ingredient.rxcui not in value_set(name), (name, ingredient)
            continue
        assert members.get(ingredient.rxcui) == ingredient.name, (name, ingredient)
    assert set(members) <= {i.rxcui for i in cds.ingredients}, set(members) - {i.rxcui for i in cds.ingredients}
