"""The ingredients of a medication, of an order and of an allergy, and the drug classes they fall in.

Ingredients come from RxNorm ingredient codes (those the class value sets list) and from the names in
RxNorm clinical drug names, which follow ``<ingredient> <strength> <unit> [/ <ingredient> ...] <form>``
("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet" -> metformin; "Amoxicillin 250 MG /
Clavulanate 125 MG Oral Tablet" -> amoxicillin, clavulanate). Salt words are dropped ("Naproxen sodium" ->
naproxen) unless nothing else is left ("Potassium Chloride" stays).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from medagent.serve.cds_hooks.value_sets import (
    DrugClass,
    drug_classes,
    ingredients_by_rxcui,
)
from medagent.vocabulary import RXNORM

SALTS = frozenset(
    {
        "hydrochloride",
        "hcl",
        "sodium",
        "potassium",
        "calcium",
        "magnesium",
        "bitartrate",
        "succinate",
        "tartrate",
        "maleate",
        "mesylate",
        "besylate",
        "citrate",
        "sulfate",
        "phosphate",
        "acetate",
        "fumarate",
        "bromide",
        "hydrobromide",
        "chloride",
        "monohydrate",
        "trihydrate",
        "dihydrate",
    }
)
_QUANTITY = re.compile(r"^(\d[\d.,]*|[\d.]+/[\d.]+|NDA\d+|BLA\d+)$", re.IGNORECASE)
_UNITS = frozenset({"hr", "ml", "mg", "mcg", "g", "actuat", "unt", "meq", "day", "%"})


def ingredient_names(text: str) -> set[str]:
    """Ingredient names in a drug name or an allergy text, lower case (empty when none can be read)."""
    names = set()
    for part in text.split(" / "):
        words = part.replace("[", " [").split()
        while words and (_QUANTITY.match(words[0]) or words[0].lower() in _UNITS):
            words = words[1:]  # "24 HR ...", "10 ML ...", "NDA020800 0.3 ML ..."
        kept = []
        for word in words:
            if word[:1].isdigit() or word.startswith("["):
                break
            kept.append(word.lower())
        without_salts = [w for w in kept if w not in SALTS]
        name = " ".join(without_salts or kept).strip(",;:")
        if name:
            names.add(name)
    return names


def concept_ingredients(concept: dict[str, Any] | None) -> set[str]:
    """Ingredients of a CodeableConcept: RxNorm ingredient codes, then the names in its codings and text."""
    if not concept:
        return set()
    found: set[str] = set()
    known = ingredients_by_rxcui()
    for coding in concept.get("coding") or []:
        if coding.get("system") == RXNORM and coding.get("code") in known:
            found.add(known[coding["code"]])
        if coding.get("display"):
            found |= ingredient_names(coding["display"])
    if concept.get("text"):
        found |= ingredient_names(concept["text"])
    return found


def rxnorm_codes(concept: dict[str, Any] | None) -> set[str]:
    return {c["code"] for c in (concept or {}).get("coding") or [] if c.get("system") == RXNORM and c.get("code")}


def medication_concept(order: dict[str, Any], medications: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The drug of a MedicationRequest: its medicationCodeableConcept, or the code of the Medication it references
    (contained ``#id``, or ``Medication/id`` found in ``medications``)."""
    if isinstance(order.get("medicationCodeableConcept"), dict):
        return order["medicationCodeableConcept"]
    reference = (order.get("medicationReference") or {}).get("reference", "")
    if reference.startswith("#"):
        contained = next((r for r in order.get("contained") or [] if r.get("id") == reference[1:]), None)
        return (contained or {}).get("code")
    return (medications.get(reference) or {}).get("code")


def classes_of(ingredients: Iterable[str]) -> list[DrugClass]:
    names = set(ingredients)
    return [c for c in drug_classes() if c.names & names]


def allergy_classes(allergy: dict[str, Any]) -> list[DrugClass]:
    """The drug classes an AllergyIntolerance names: by allergy code, by a class term in its text, or by an
    ingredient of the class."""
    concept = allergy.get("code") or {}
    codes = {(c.get("system"), c.get("code")) for c in concept.get("coding") or []}
    texts = [c.get("display") or "" for c in concept.get("coding") or []] + [concept.get("text") or ""]
    words = {w for t in texts for w in re.findall(r"[a-z][a-z\-]*", t.lower())}
    joined = " ".join(t.lower() for t in texts)
    ingredients = concept_ingredients(concept) | {n for t in texts for n in _ingredient_mentions(t)}
    found = []
    for drug_class in drug_classes():
        by_code = any((c.system, c.code) in codes for c in drug_class.allergy_codes)
        by_term = any((term in words) if " " not in term else (term in joined) for term in drug_class.class_terms)
        if by_code or by_term or drug_class.names & ingredients:
            found.append(drug_class)
    return found


def _ingredient_mentions(text: str) -> set[str]:
    """Class ingredients named anywhere in a text ("Allergy to amoxicillin" -> amoxicillin)."""
    lowered = f" {text.lower()} "
    return {i.name for c in drug_classes() for i in c.ingredients if f" {i.name} " in lowered}


def allergy_ingredients(allergy: dict[str, Any]) -> set[str]:
    """Ingredients an AllergyIntolerance names itself (a same-drug allergy outside any class)."""
    concept = allergy.get("code") or {}
    texts = [c.get("display") or "" for c in concept.get("coding") or []] + [concept.get("text") or ""]
    named = {n for t in texts for n in _ingredient_mentions(t)}
    for text in texts:  # "Allergy to lisinopril", "Lisinopril allergy"
        stripped = re.sub(r"(?i)^allergy to |\s+allergy$|\s+\((finding|disorder|substance)\)$", "", text.strip())
        if stripped and stripped != text.strip():
            named |= ingredient_names(stripped)
    codes = rxnorm_codes(concept)
    known = ingredients_by_rxcui()
    return named | {known[c] for c in codes if c in known}
