"""Stroke and transient ischemic attack (the CHA2DS2-VASc 'S2' group)."""

from medagent.value_sets import SNOMED, Concept, ValueSet

VALUE_SET = ValueSet(
    name="cerebrovascular",
    title="Stroke or transient ischemic attack",
    system=SNOMED,
    concepts=(
        Concept("230690007", "Cerebrovascular accident (stroke)"),
        Concept("266257000", "Transient ischemic attack"),
        Concept("422504002", "Ischemic stroke"),
    ),
    source="SNOMED CT 230690007 |Cerebrovascular accident| and 266257000 |Transient ischemic attack| (CHA2DS2-VASc: "
    "prior stroke, TIA or thromboembolism); the code of the Synthea charts first.",
)
