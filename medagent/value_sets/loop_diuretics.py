"""Loop diuretics."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="loop_diuretics",
    title="Loop diuretics",
    system=RXNORM,
    concepts=(
        Concept("4603", "furosemide"),
        Concept("1808", "bumetanide"),
        Concept("38413", "torsemide"),
        Concept("4109", "ethacrynic acid"),
        Concept("315971", "Lasix 40mg"),
        Concept("1719286", "10 ML Furosemide 10 MG/ML Injection"),
        Concept("197418", "Bumetanide 1 MG Oral Tablet"),
    ),
    excludes=(Concept("316049", "Hydrochlorothiazide 25 MG"),),
    source="ATC C03CA (sulfonamides, plain: high-ceiling diuretics) and C03CC (ethacrynic acid): the RxNorm "
    "ingredients, the furosemide products of the Synthea charts and the bumetanide tablet a discharge list starts. "
    "Thiazides (C03AA) are a class of their own.",
)
