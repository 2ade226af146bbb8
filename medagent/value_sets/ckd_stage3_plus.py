"""Chronic kidney disease of stage 3 or worse (eGFR below 60 for more than 3 months)."""

from medagent.value_sets import SNOMED, Concept, ValueSet

VALUE_SET = ValueSet(
    name="ckd_stage3_plus",
    title="Chronic kidney disease stage 3, 4, 5 or end stage",
    system=SNOMED,
    concepts=(
        Concept("433144002", "Chronic kidney disease stage 3"),
        Concept("700378005", "Chronic kidney disease stage 3a"),
        Concept("700379002", "Chronic kidney disease stage 3b"),
        Concept("431857002", "Chronic kidney disease stage 4"),
        Concept("433146000", "Chronic kidney disease stage 5"),
        Concept("46177005", "End-stage renal disease"),
    ),
    excludes=(
        Concept("431855005", "Chronic kidney disease stage 1"),
        Concept("431856006", "Chronic kidney disease stage 2"),
    ),
    source="SNOMED CT descendants of 709044004 |Chronic kidney disease| by stage (KDIGO G3a-G5): stage 3, 3a, 3b, "
    "4, 5 and end-stage renal disease; stages 1 and 2 are not members.",
)
