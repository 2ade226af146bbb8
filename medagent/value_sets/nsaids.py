"""Nonsteroidal anti-inflammatory drugs (systemic)."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="nsaids",
    title="Nonsteroidal anti-inflammatory drugs",
    system=RXNORM,
    concepts=(
        Concept("5640", "ibuprofen"),
        Concept("7258", "naproxen"),
        Concept("3355", "diclofenac"),
        Concept("6142", "ketoprofen"),
        Concept("41493", "meloxicam"),
        Concept("140587", "celecoxib"),
        Concept("5781", "indomethacin"),
        Concept("35827", "ketorolac"),
        Concept("849574", "Naproxen sodium 220 MG Oral Tablet"),
        Concept("198014", "Naproxen 500 MG Oral Tablet"),
        Concept("310965", "Ibuprofen 200 MG Oral Tablet"),
        Concept("198405", "Ibuprofen 100 MG Oral Tablet"),
    ),
    excludes=(Concept("313782", "Acetaminophen 325 MG Oral Tablet"), Concept("243670", "Aspirin 81 MG Oral Tablet")),
    source="ATC M01A (anti-inflammatory and antirheumatic products, non-steroids): the RxNorm ingredients, and the "
    "naproxen and ibuprofen tablets that occur in the Synthea charts. Acetaminophen (N02BE) is not an NSAID; "
    "low-dose aspirin is classed as an antiplatelet (B01AC).",
)
