"""Statins (HMG-CoA reductase inhibitors)."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="statins",
    title="Statins (HMG-CoA reductase inhibitors)",
    system=RXNORM,
    concepts=(
        Concept("83367", "atorvastatin"),
        Concept("36567", "simvastatin"),
        Concept("301542", "rosuvastatin"),
        Concept("42463", "pravastatin"),
        Concept("6472", "lovastatin"),
        Concept("41127", "fluvastatin"),
        Concept("861634", "pitavastatin"),
        Concept("312961", "Simvastatin 20 MG Oral Tablet"),
        Concept("316672", "Simvistatin 10 MG"),
        Concept("617310", "Atorvastatin 20 MG Oral Tablet"),
    ),
    source="ATC C10AA (HMG CoA reductase inhibitors): the RxNorm ingredients of that class, and the clinical drugs "
    "of those ingredients that occur in the Synthea charts (simvastatin 20 mg; Synthea's 'Simvistatin 10 MG'), and atorvastatin 20 mg, which a discharge "
    "list starts.",
)
