"""Nephrotoxic drugs a renal medication review looks for: NSAIDs and the other classes below."""

from medagent.value_sets import RXNORM, Concept, ValueSet
from medagent.value_sets.nsaids import VALUE_SET as NSAIDS

VALUE_SET = ValueSet(
    name="nephrotoxic",
    title="Nephrotoxic drugs",
    system=RXNORM,
    concepts=(
        *NSAIDS.concepts,
        Concept("3008", "cyclosporine"),
        Concept("42316", "tacrolimus"),
        Concept("6851", "methotrexate"),
        Concept("2555", "cisplatin"),
        Concept("11124", "vancomycin"),
        Concept("835900", "cycloSPORINE 50 MG Oral Capsule"),
        Concept("105586", "Methotrexate 10 MG Oral Tablet"),
        Concept("1736854", "Cisplatin 50 MG Injection"),
    ),
    source="KDIGO 2012 CKD guideline (chapter 4.4, drugs to avoid or adjust) and the Beers criteria (renal): "
    "NSAIDs (see nsaids), calcineurin inhibitors, methotrexate, platinum agents and vancomycin; RxNorm "
    "ingredients, and the clinical drugs of these that occur in the Synthea charts.",
)
