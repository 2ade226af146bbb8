"""The words users write instead of ours: names and pronouns for the patient, lab and vaccine abbreviations,
and a low rate of typos; the pieces :mod:`medagent.scenarios.user_phrasings` builds questions from.

Every choice is drawn from a ``random.Random`` the caller seeds, so the same seed gives the same text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

__all__ = ["LAB_ALIASES", "VACCINE_ALIASES", "Referent", "lab_alias", "referent", "typo", "vaccine_alias"]

# LOINC -> how people name the result (the first: our label's plain form). Observations are searched by code,
# so the model learns each alias's code from these (the codes are a fixed, small vocabulary).
LAB_ALIASES: dict[str, tuple[str, ...]] = {
    "2339-0": ("glucose", "blood glucose", "blood sugar", "serum glucose", "BG"),
    "6298-4": ("potassium", "K", "K+", "serum potassium", "potassium level"),
    "2947-0": ("sodium", "Na", "serum sodium", "sodium level"),
    "2069-3": ("chloride", "Cl", "serum chloride"),
    "20565-8": ("bicarbonate", "CO2", "bicarb", "carbon dioxide", "HCO3"),
    "49765-1": ("calcium", "Ca", "serum calcium", "calcium level"),
    "38483-4": ("creatinine", "Cr", "serum creatinine", "creat"),
    "6299-2": ("BUN", "urea nitrogen", "blood urea nitrogen"),
    "4548-4": (
        "hemoglobin A1c",
        "HbA1c",
        "A1c",
        "a1c",
        "glycated hemoglobin",
        "glycated haemoglobin",
        "haemoglobin A1c",
        "Hb A1c",
    ),
    "2093-3": ("total cholesterol", "cholesterol", "total chol"),
    "2571-8": ("triglycerides", "TG", "trigs"),
    "18262-6": ("LDL", "LDL cholesterol", "LDL-C", "ldl"),
    "2085-9": ("HDL", "HDL cholesterol", "HDL-C", "hdl"),
    "718-7": ("hemoglobin", "haemoglobin", "Hb", "Hgb", "hgb"),
    "33914-3": ("eGFR", "GFR", "estimated GFR", "egfr"),
    "29463-7": ("body weight", "weight", "wt"),
    "8302-2": ("height", "body height", "ht"),
    "39156-5": ("BMI", "body mass index", "bmi"),
    "8480-6": ("systolic blood pressure", "systolic BP", "SBP", "systolic"),
    "8462-4": ("diastolic blood pressure", "diastolic BP", "DBP", "diastolic"),
    "8331-1": ("temperature", "oral temperature", "temp"),
    "2885-2": ("total protein", "protein", "serum protein"),
    "1751-7": ("albumin", "alb", "serum albumin"),
    "1742-6": ("ALT", "alanine aminotransferase", "SGPT"),
    "1920-8": ("AST", "aspartate aminotransferase", "SGOT"),
    "6690-2": ("white cell count", "WBC", "leukocyte count", "white blood cell count"),
    "777-3": ("platelets", "platelet count", "PLT", "plt"),
    "19123-9": ("magnesium", "Mg", "serum magnesium", "mag"),
}

# CVX -> what people call the vaccine (with its noun); others: "<display> vaccine".
VACCINE_ALIASES: dict[str, tuple[str, ...]] = {
    "140": ("flu shot", "flu vaccine", "influenza vaccine", "seasonal flu shot"),
    "113": ("Td booster", "tetanus booster", "Td vaccine", "tetanus-diphtheria (Td) shot"),
    "115": ("Tdap", "Tdap vaccine", "Tdap booster"),
    "121": ("shingles vaccine", "zoster vaccine", "shingles shot"),
    "62": ("HPV vaccine", "HPV shot"),
    "114": ("meningococcal vaccine", "MCV4 vaccine"),
    "52": ("hepatitis A vaccine", "hep A vaccine"),
    "43": ("hepatitis B vaccine", "hep B vaccine"),
    "08": ("hepatitis B vaccine", "hep B shot"),
    "33": ("pneumococcal polysaccharide vaccine (PPSV23)", "PPSV23", "Pneumovax"),
    "133": ("PCV13", "pneumococcal conjugate vaccine", "Prevnar 13"),
    "49": ("Hib vaccine",),
    "10": ("polio vaccine (IPV)", "IPV"),
    "20": ("DTaP", "DTaP vaccine"),
    "03": ("MMR", "MMR vaccine"),
    "21": ("varicella vaccine", "chickenpox vaccine"),
    "83": ("hepatitis A vaccine", "hep A shot"),
    "119": ("rotavirus vaccine",),
}


def lab_alias(rng: random.Random, loinc: str, label: str) -> str:
    return rng.choice(LAB_ALIASES.get(loinc, (label,)))


def vaccine_alias(rng: random.Random, cvx: str, display: str) -> str:
    return rng.choice((*VACCINE_ALIASES.get(cvx, ()), f"{display} vaccine"))


@dataclass(frozen=True)
class Referent:
    """How a question names the patient: as a subject ("Mrs. Smith", "she"), a possessive ("Mrs. Smith's",
    "her") and an object ("Mrs. Smith", "her"); ``intro``: a sentence that names them first (for pronouns)."""

    subject: str
    possessive: str
    object: str
    intro: str = ""


_INTROS = (
    "{name} is in clinic today. ",
    "About {name}: ",
    "Pt: {name}. ",
    "Re {name} - ",
    "{name}. ",
    "Question about {name}. ",
)


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def referent(rng: random.Random, given: str, family: str, gender: str, *, pronouns: bool = True) -> Referent:
    """One way of naming the patient: full name, title and family name, first name, 'the patient', 'this
    patient', 'pt', or a pronoun after a sentence that names them."""
    female = gender.lower().startswith("f")
    title = rng.choice(("Mrs.", "Ms.")) if female else "Mr."
    full = f"{given} {family}"
    options = ["full", "title", "first", "patient", "this", "pt"] + (["pronoun", "pronoun"] if pronouns else [])
    kind = rng.choice(options)
    if kind == "pronoun":
        intro = rng.choice(_INTROS).format(name=rng.choice((full, f"{title} {family}")))
        return Referent("she" if female else "he", "her" if female else "his", "her" if female else "him", intro)
    name = {
        "full": full,
        "title": f"{title} {family}",
        "first": given,
        "patient": "the patient",
        "this": "this patient",
        "pt": "pt",
    }[kind]
    return Referent(name, _possessive(name), name)


_KEYBOARD_NEIGHBOURS = {
    "a": "s",
    "e": "r",
    "i": "o",
    "o": "i",
    "n": "m",
    "r": "t",
    "s": "a",
    "t": "r",
    "u": "y",
    "l": "k",
    "c": "v",
    "d": "s",
    "m": "n",
    "h": "j",
    "p": "o",
}


def typo(rng: random.Random, text: str, protected: list[str]) -> str:
    """``text`` with one typo (two letters swapped, one dropped, doubled or hit beside) in one plain word of five
    letters or more that is not inside a ``protected`` span (names, drugs, values); unchanged if none."""
    spans = [(m.start(), m.end()) for p in protected if p for m in re.finditer(re.escape(p), text)]
    words = [
        m
        for m in re.finditer(r"[A-Za-z]{5,}", text)
        if not any(start < m.end() and m.start() < end for start, end in spans)
    ]
    if not words:
        return text
    word = rng.choice(words)
    letters = word.group()
    at = rng.randrange(1, len(letters) - 1)
    kind = rng.choice(("swap", "drop", "double", "near"))
    if kind == "swap":
        changed = letters[:at] + letters[at + 1] + letters[at] + letters[at + 2 :]
    elif kind == "drop":
        changed = letters[:at] + letters[at + 1 :]
    elif kind == "double":
        changed = letters[:at] + letters[at] + letters[at:]
    else:
        near = _KEYBOARD_NEIGHBOURS.get(letters[at].lower(), letters[at])
        changed = letters[:at] + near + letters[at + 1 :]
    return text[: word.start()] + changed + text[word.end() :]
