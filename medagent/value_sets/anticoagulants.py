"""Anticoagulants (vitamin K antagonists, direct oral anticoagulants, heparins); antiplatelets are not members."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="anticoagulants",
    title="Anticoagulants",
    system=RXNORM,
    concepts=(
        Concept("11289", "warfarin"),
        Concept("1364430", "apixaban"),
        Concept("1114195", "rivaroxaban"),
        Concept("1037042", "dabigatran etexilate"),
        Concept("1599538", "edoxaban"),
        Concept("67108", "enoxaparin"),
        Concept("5224", "heparin"),
        Concept("855332", "Warfarin Sodium 5 MG Oral Tablet"),
        Concept("1364445", "Apixaban 5 MG Oral Tablet"),
    ),
    excludes=(Concept("309362", "Clopidogrel 75 MG Oral Tablet"), Concept("243670", "Aspirin 81 MG Oral Tablet")),
    source="ATC B01AA (vitamin K antagonists), B01AF (direct factor Xa inhibitors), B01AE (direct thrombin "
    "inhibitors), B01AB (heparin group): their RxNorm ingredients, and warfarin 5 mg as it occurs in the "
    "Synthea charts (apixaban 5 mg: a discharge list starts it). Platelet aggregation inhibitors (B01AC: clopidogrel, aspirin) are excluded.",
)
