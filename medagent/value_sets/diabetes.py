"""Diabetes mellitus of any type, including its complications coded as their own disorders; not prediabetes."""

from medagent.value_sets import SNOMED, Concept, ValueSet

VALUE_SET = ValueSet(
    name="diabetes",
    title="Diabetes mellitus (any type)",
    system=SNOMED,
    concepts=(
        Concept("73211009", "Diabetes mellitus"),
        Concept("44054006", "Diabetes mellitus type 2"),
        Concept("46635009", "Diabetes mellitus type 1"),
        Concept("368581000119106", "Neuropathy due to type 2 diabetes mellitus"),
        Concept("422034002", "Diabetic retinopathy associated with type II diabetes mellitus"),
        Concept("127013003", "Diabetic renal disease"),
        Concept("90781000119102", "Microalbuminuria due to type 2 diabetes mellitus"),
        Concept("157141000119108", "Proteinuria due to type 2 diabetes mellitus"),
        Concept("1551000119108", "Nonproliferative diabetic retinopathy due to type 2 diabetes mellitus"),
    ),
    excludes=(Concept("15777000", "Prediabetes"), Concept("80394007", "Hyperglycemia")),
    source="SNOMED CT: 73211009 |Diabetes mellitus| and its descendants that occur in (or fit) the Synthea charts, "
    "including complications that are subtypes of diabetes (diabetic neuropathy, retinopathy, renal disease). "
    "Prediabetes (15777000) and hyperglycemia (80394007) are not diabetes.",
)
