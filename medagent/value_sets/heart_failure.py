"""Heart failure (any type)."""

from medagent.value_sets import SNOMED, Concept, ValueSet

VALUE_SET = ValueSet(
    name="heart_failure",
    title="Heart failure",
    system=SNOMED,
    concepts=(
        Concept("84114007", "Heart failure"),
        Concept("42343007", "Congestive heart failure"),
        Concept("88805009", "Chronic congestive heart failure"),
    ),
    source="SNOMED CT 84114007 |Heart failure| and the descendants that occur in the Synthea charts.",
)
