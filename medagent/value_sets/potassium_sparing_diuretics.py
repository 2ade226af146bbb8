"""Potassium-sparing diuretics (aldosterone antagonists and epithelial sodium channel blockers)."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="potassium_sparing_diuretics",
    title="Potassium-sparing diuretics",
    system=RXNORM,
    concepts=(
        Concept("9997", "spironolactone"),
        Concept("298869", "eplerenone"),
        Concept("644", "amiloride"),
        Concept("10763", "triamterene"),
    ),
    excludes=(Concept("316049", "Hydrochlorothiazide 25 MG"), Concept("315971", "Lasix 40mg")),
    source="ATC C03DA (aldosterone antagonists) and C03DB (other potassium-sparing agents): the RxNorm ingredients. "
    "Thiazides (C03AA) and loop diuretics (C03CA) waste potassium and are excluded.",
)
