"""Renin-angiotensin system blockers: ACE inhibitors and angiotensin II receptor blockers."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="ace_inhibitors_arbs",
    title="ACE inhibitors and angiotensin II receptor blockers",
    system=RXNORM,
    concepts=(
        Concept("29046", "lisinopril"),
        Concept("3827", "enalapril"),
        Concept("1998", "captopril"),
        Concept("35296", "ramipril"),
        Concept("18867", "benazepril"),
        Concept("52175", "losartan"),
        Concept("69749", "valsartan"),
        Concept("83818", "irbesartan"),
        Concept("321064", "olmesartan"),
        Concept("214354", "candesartan"),
        Concept("73494", "telmisartan"),
        Concept("833036", "Captopril 25 MG Oral Tablet"),
        Concept("314076", "Lisinopril 10 MG Oral Tablet"),
    ),
    source="ATC C09A/C09B (ACE inhibitors, plain and combinations) and C09C/C09D (angiotensin II receptor blockers): "
    "the RxNorm ingredients, captopril 25 mg as it occurs in the Synthea charts, and lisinopril 10 mg, the "
    "product the hypertension protocol orders.",
)
