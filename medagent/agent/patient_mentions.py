"""Whether a question names someone other than the patient in context (and so may need a patient search).

Decided deterministically, and conservatively: a question names someone else when it states

- a birth date (after "born", "DOB", "date of birth", ...) that is not the patient's, or one that cannot be read;
- an identifier (a UUID, or a token with a digit after "MRN", "ID", "identifier", "Patient/") that is not one of
  the patient's identifiers or their id;
- a capitalised name-like word (not all capitals, no digits: "BP", "A1c" are not names) that is none of the
  patient's name parts, titles or pronouns, no question or function word, not a clinician's name ("Dr. Jones"),
  and is a name part of another patient on the FHIR server (or the server could not say): a drug, a condition,
  a month or the question's own words name nobody there, so "Has Arla Lang ever taken Plavix?" names only her.

:func:`without_patient_name` takes the patient's name out of a record search's free text ("Almeda Conn -
miscarriage" -> "miscarriage"): a small model copies it from a question that names the patient, and no condition,
drug or result is called by it.

Lower-case words are not read as names ("karla kessler most recent bp" names only the patient it is about, and so
would a lower-case other name: the one case the rule misses).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from typing import Any

__all__ = [
    "clinician_or_function_word",
    "name_words",
    "names_someone_else",
    "other_identity_stated",
    "patient_name_parts",
    "patient_search_names",
    "without_patient_name",
]

# words that start a question or stand in it capitalised without naming anybody (compared case-folded)
_NOT_NAMES = frozenset(
    """
    mr mrs ms miss mx dr doctor prof sir madam pt patient patients
    i we you he she they it its me my our your his her hers him them their this that these those
    what whats which when who whom whose where why how
    is are was were be been has have had does do did can could should would shall
    any ever the a an and or but if so also then than not no yes please pls hi hello hey ok okay re about
    for in on at of to by with after before since during from as per into over under between within
    question answer context format note task record chart
    """.split()
)
_CLINICIAN_TITLES = frozenset({"dr", "doctor", "prof", "nurse", "np", "pa", "rn", "md", "provider", "prescriber"})

_WORD = re.compile(r"[\w'\u2019-]+|\S")
_LETTERS = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")  # a word of letters only ("HbA1c", "K+" are not)
_POSSESSIVE = re.compile(r"['\u2019]s?$")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_IDENTIFIER = re.compile(
    r"(?:\bMRN|\bmedical record (?:number|no\.?)|\bidentifier|\bpatient id|\bID\b|\bPatient/)"
    r"[\s:#=]*(?:is\s+|of\s+)?([A-Za-z0-9][A-Za-z0-9.-]{2,})",
)
_BIRTH = re.compile(
    r"\b(?:born(?: on| in)?|d\.?o\.?b\.?|date of birth|birth ?date|birthday|b\.)[\s:,(=-]*([^;()\n?]{0,40})", re.I
)
_MONTHS = {
    m[:3]: i + 1
    for i, m in enumerate(
        "january february march april may june july august september october november december".split()
    )
}
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_US = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_WRITTEN_MDY = re.compile(r"\b([A-Za-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})\b")
_WRITTEN_DMY = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)? (?:of )?([A-Za-z]{3,9})\.?,? (\d{4})\b")


def _fold(word: str) -> str:
    """Case- and accent-folded ("Ángel" -> "angel")."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def patient_name_parts(patient: dict[str, Any]) -> set[str]:
    """Every given, family, prefix and suffix word of every name of a Patient resource (and its text), folded."""
    parts: set[str] = set()
    for name in patient.get("name") or []:
        words = [*name.get("given", []), name.get("family", ""), *name.get("prefix", []), *name.get("suffix", [])]
        words.append(name.get("text", ""))
        for word in words:
            parts.update(_fold(w) for w in re.split(r"[\s,.-]+", str(word or "")) if w)
    return parts


def clinician_or_function_word(word: str) -> bool:
    """A word that names nobody in a question: a title, pronoun, question or function word."""
    return _fold(word) in _NOT_NAMES


def name_words(question: str) -> list[str]:
    """The capitalised name-like words of a question (possessives cut, hyphenated parts apart, in order), less
    function words and the names after a clinician's title ("Dr. Jane Doe")."""
    found: list[str] = []
    after_title = False
    for token in _WORD.findall(question):
        if not token[0].isalnum():
            if token != ".":
                after_title = False
            continue
        word = _POSSESSIVE.sub("", token.strip("-'\u2019"))
        name_like = bool(_LETTERS.fullmatch(word)) and word[:1].isupper() and any(ch.islower() for ch in word)
        if _fold(word) in _CLINICIAN_TITLES:
            after_title = True
            continue
        if not name_like:
            after_title = False
            continue
        if after_title:
            continue
        found.extend(part for part in word.split("-") if part[:1].isupper() and not clinician_or_function_word(part))
    return list(dict.fromkeys(found))


def _parse_date(text: str) -> date | None:
    for pattern, order in ((_ISO, "ymd"), (_US, "mdy"), (_WRITTEN_MDY, "Mdy"), (_WRITTEN_DMY, "dMy")):
        found = pattern.search(text)
        if not found:
            continue
        values = dict(zip(order, found.groups(), strict=True))
        month = _MONTHS.get(values["M"][:3].lower()) if "M" in values else int(values["m"])
        try:
            return date(int(values["y"]), month or 0, int(values["d"]))
        except ValueError:
            return None
    return None


def other_identity_stated(question: str, patient: dict[str, Any]) -> str | None:
    """A birth date or identifier the question states that is not the patient's (what it is), or None."""
    ids = {str(i.get("value", "")).strip().casefold() for i in patient.get("identifier") or []}
    ids.add(str(patient.get("id", "")).casefold())
    for found in _UUID.finditer(question):
        if found.group().casefold() not in ids:
            return f"identifier {found.group()}"
    for found in _IDENTIFIER.finditer(question):
        value = found.group(1).rstrip(".")
        if any(ch.isdigit() for ch in value) and value.casefold() not in ids:
            return f"identifier {value}"
    born = str(patient.get("birthDate") or "")[:10]
    for found in _BIRTH.finditer(question):
        text = found.group(1)
        if not re.search(r"\d", text):
            continue  # "when was she born?": no date stated
        stated = _parse_date(text)
        if stated is None:
            return f"a birth date that cannot be read ({text.strip()[:20]!r})"
        if stated.isoformat() != born:
            return f"birth date {stated.isoformat()}"
    return None


async def names_someone_else(
    question: str, patient: dict[str, Any], other_patient_named: Callable[[str], Awaitable[bool]]
) -> str | None:
    """What in the question names someone other than ``patient`` (a short description), or None.
    ``other_patient_named(word)``: whether some other patient has that name part (True also when it cannot
    tell); asked only for the capitalised words that are none of the patient's."""
    stated = other_identity_stated(question, patient)
    if stated:
        return stated
    own = patient_name_parts(patient)
    unknown = [w for w in name_words(question) if _fold(w) not in own]
    named = await asyncio.gather(*(other_patient_named(w) for w in unknown))
    others = [w for w, is_named in zip(unknown, named, strict=True) if is_named]
    return f"the name {' '.join(others)}" if others else None


def patient_search_names(patients: Iterable[dict[str, Any]], word: str, exclude: str | None) -> bool:
    """Whether a patient other than ``exclude`` (an id) has ``word`` as a name part (folded)."""
    target = _fold(word)
    return any(p.get("id") != exclude and target in patient_name_parts(p) for p in patients)


_TEXT_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_TITLE_WORDS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "patient", "pt"})
_EDGE_WORDS = "|".join(("of", "for", "in", "on", "with", "from", "by", "the", "a", "an", "and", "s"))
_EDGE = re.compile(rf"^(?:[\W_]|(?:{_EDGE_WORDS})\b)+|(?:[\W_]|\b(?:{_EDGE_WORDS}))+$", re.I)  # left at an end


def without_patient_name(text: str, name_parts: Iterable[str]) -> str | None:
    """``text`` less the patient's name: every run of two or more of their name words (titles beside them and a
    possessive included), or the whole text when it holds nothing but such words; None when nothing is left. A
    single name word beside other words stays ("Addison's disease" for a patient called Addison); a text without
    the name is returned as it is. What the cut leaves at the ends ("-", "of", "'s") goes with it."""
    parts = set(name_parts)
    words = list(_TEXT_WORD.finditer(text))
    folded = [_POSSESSIVE.sub("", _fold(w.group())) for w in words]
    named = [f in parts or f in _TITLE_WORDS for f in folded]
    if words and all(named):
        return None
    cuts: list[tuple[int, int]] = []
    start = 0
    for end in range(len(words) + 1):
        if end < len(words) and named[end]:
            continue
        if sum(f in parts for f in folded[start:end]) >= 2:
            cuts.append((words[start].start(), words[end - 1].end()))
        start = end + 1
    if not cuts:
        return text
    pieces, at = [], 0
    for begin, finish in cuts:
        pieces.append(text[at:begin])
        at = finish
    pieces.append(text[at:])
    out = _EDGE.sub("", " ".join(p.strip() for p in pieces if p.strip()))
    out = " ".join(out.split())
    return out if any(ch.isalnum() for ch in out) else None
