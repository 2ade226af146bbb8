"""Platelet aggregation inhibitors (aspirin, P2Y12 inhibitors)."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="antiplatelets",
    title="Platelet aggregation inhibitors",
    system=RXNORM,
    concepts=(
        Concept("1191", "aspirin"),
        Concept("32968", "clopidogrel"),
        Concept("613391", "prasugrel"),
        Concept("1116632", "ticagrelor"),
        Concept("309362", "Clopidogrel 75 MG Oral Tablet"),
        Concept("243670", "Aspirin 81 MG Oral Tablet"),
    ),
    source="ATC B01AC (platelet aggregation inhibitors excl. heparin): the RxNorm ingredients, and the clinical "
    "drugs of the class that occur in the Synthea charts.",
)
