"""Thiazide and thiazide-like diuretics."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="thiazide_diuretics",
    title="Thiazide and thiazide-like diuretics",
    system=RXNORM,
    concepts=(
        Concept("5487", "hydrochlorothiazide"),
        Concept("2396", "chlorothiazide"),
        Concept("2409", "chlorthalidone"),
        Concept("5764", "indapamide"),
        Concept("6916", "metolazone"),
        Concept("316049", "Hydrochlorothiazide 25 MG"),
        Concept("316052", "Hydrochlorothiazide 6.25 MG"),
        Concept("197499", "Chlorthalidone 25 MG Oral Tablet"),
    ),
    excludes=(Concept("315971", "Lasix 40mg"),),
    source="ATC C03AA (thiazides, plain) and C03BA (sulfonamides, plain: the thiazide-like chlorthalidone, "
    "indapamide, metolazone): the RxNorm ingredients, the hydrochlorothiazide products of the Synthea charts and "
    "the chlorthalidone tablet a discharge list starts. Loop diuretics (C03CA) are a class of their own.",
)
