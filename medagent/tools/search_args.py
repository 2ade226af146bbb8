"""Argument types the tools share (patient, codes, free text, limit) and how they become FHIR search parameters."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from medagent.fhir.errors import FhirNotFound
from medagent.fhir.ids import is_fhir_id, split_reference
from medagent.tools.context import ToolContext
from medagent.tools.registry import RecordOf, ToolError
from medagent.vocabulary import SYSTEM_ALIASES

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def check_patient(value: str) -> str:
    text = str(value).strip()
    text = text.split("/_history/")[0]
    if text.startswith("Patient/"):
        text = text[len("Patient/") :]
    elif "/" in text:
        raise ValueError(f"{value!r} is not a patient reference; use a Patient id or 'Patient/<id>'")
    if not is_fhir_id(text):
        raise ValueError(
            f"{value!r} is not a FHIR id; use the id from find_patients, e.g. 'Patient/{PLACEHOLDER_PATIENT}'"
        )
    return text


def check_record_reference(value: str) -> str:
    """A record's reference 'Type/id', checked by the one id validator (no '.' or '..' id)."""
    text = str(value).strip()
    split_reference(text)
    return text


RecordReference = Annotated[str, AfterValidator(check_record_reference)]
EXAMPLE_PATIENT = (
    "example-patient-0"  # the patient id tool examples show: in no data set, so never copied into a real call
)
PatientRef = Annotated[
    str,
    AfterValidator(check_patient),
    RecordOf("patient"),
    Field(description="Patient id or 'Patient/<id>' (find_patients gives it)"),
]
PLACEHOLDER_PATIENT = "<id from find_patients>"  # what error messages and examples show instead of EXAMPLE_PATIENT
Limit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_LIMIT,
        description=(
            "Most rows to return (default 20, max 100); the per-call token budget (~800 tokens) may show fewer: "
            "the cut line then gives the offset of the next page"
        ),
    ),
]
Offset = Annotated[
    int,
    Field(
        ge=0,
        le=100_000,
        description=("Rows to skip (paging): the cut line '... N more not shown' names the next offset"),
    ),
]

CODE_EXAMPLE = "4548-4, loinc|4548-4, http://loinc.org|4548-4 or 8480-6,8462-4"
# LOINC codes a question may use whose component this data records under another code (e.g. sodium in serum or
# plasma 2951-2; Synthea uses 2947-0): a 'none found' for one of them names the record's codes of that component
LOINC_COMPONENTS = {
    "2951-2": "sodium",
    "2823-3": "potassium",
    "2345-7": "glucose",
    "2075-0": "chloride",
    "2028-9": "carbon dioxide",
    "17861-6": "calcium",
    "2160-0": "creatinine",
    "3094-0": "urea nitrogen",
    "17856-6": "hemoglobin a1c",
    "19123-9": "magnesium",
    "2601-3": "magnesium",
    "2862-1": "albumin",
}
# codes that mean the same measurement in this data (the blood pressure panel has two LOINC codes)
EQUIVALENT_CODES = {"85354-9": ("55284-4",), "55284-4": ("85354-9",)}


def parse_codes(value: str) -> list[tuple[str | None, str]]:
    """'loinc|4548-4,8480-6' -> [(LOINC url, '4548-4'), (None, '8480-6')]; raises ValueError for unknown systems."""
    out: list[tuple[str | None, str]] = []
    for item in str(value).split(","):
        item = item.strip()
        if not item:
            continue
        system: str | None = None
        code = item
        if "|" in item:
            system, _, code = item.rpartition("|")
        elif " " in item and not item.startswith("http"):
            label, _, rest = item.partition(" ")
            if label.lower() not in SYSTEM_ALIASES or " " in rest.strip():
                raise ValueError(f"{item!r} is not a code; give codes like {CODE_EXAMPLE} (use text= for words)")
            system, code = label, rest
        elif ":" in item and not item.startswith("http") and not item.startswith("urn:"):
            system, _, code = item.partition(":")
        if system is not None:
            system = system.strip()
            if not system.startswith(("http://", "https://", "urn:")):
                url = SYSTEM_ALIASES.get(system.lower())
                if url is None:
                    raise ValueError(
                        f"unknown code system {system!r}; use loinc, snomed, rxnorm, cvx, ndc or a "
                        f"system URL, e.g. {CODE_EXAMPLE}"
                    )
                system = url
        code = code.strip()
        if not code or " " in code or len(code) > 64:
            raise ValueError(f"{item!r} is not a code; give codes like {CODE_EXAMPLE} (use text= for words)")
        out.append((system or None, code))
    if not out:
        raise ValueError(f"no code given; e.g. {CODE_EXAMPLE}")
    return out


def check_codes(value: str) -> str:
    parse_codes(value)
    return str(value).strip()


# The forms a code argument takes, as the JSON schema's pattern (schema only: check_codes validates, and takes a
# few looser spellings too, "loinc 4548-4", "loinc:4548-4"): LOINC (4548-4), a number (SNOMED, RxNorm, CVX), or
# system|code with a system alias or URL; comma = any of. A backend decoding under the action grammar cannot write a
# date ("2020-01-", "2000-09-30") or words as a code (the 270M adapter did, and searched for nothing). Every code
# argument the oracle writes on the v2 and v3 test sets fits it (tests/tools/test_code_pattern.py).
_CODE_ITEM = (
    r"(?:\d{1,5}-\d|\d{1,18}"
    r"|(?:[A-Za-z][A-Za-z-]{1,15}|(?:https?://|urn:)[A-Za-z0-9.:/_-]{1,120})\|[A-Za-z0-9][A-Za-z0-9._-]{0,63})"
)
CODE_PATTERN = rf"^{_CODE_ITEM}(?:, ?{_CODE_ITEM})*$"

CodeArg = Annotated[
    str,
    AfterValidator(check_codes),
    Field(
        description=f"Code(s), comma-separated, optionally with system: {CODE_EXAMPLE}",
        json_schema_extra={"pattern": CODE_PATTERN},
    ),
]


def token_param(value: str) -> tuple[str, set[str]]:
    """A FHIR token search value (comma = OR) and the set of plain codes it asks for (with equivalents)."""
    items, plain = [], set()
    for system, code in parse_codes(value):
        for each in (code, *EQUIVALENT_CODES.get(code, ())):
            items.append(f"{system}|{each}" if system else each)
            plain.add(each)
    return ",".join(dict.fromkeys(items)), plain


# Words models use for concepts that the data spells differently (searched in addition to the words).
SYNONYMS = {
    "hba1c": ["a1c"],
    "a1c": ["a1c"],
    "glycated hemoglobin": ["a1c"],
    "bp": ["blood pressure"],
    "bmi": ["body mass index"],
    "ldl": ["low density lipoprotein"],
    "hdl": ["hdl"],
    "egfr": ["glomerular filtration"],
    "gfr": ["glomerular filtration"],
    "wbc": ["leukocytes"],
    "white blood cell": ["leukocytes"],
    "rbc": ["erythrocytes"],
    "red blood cell": ["erythrocytes"],
    "platelets": ["platelets"],
    "pulse": ["heart rate"],
    "temperature": ["temperature"],
    "temp": ["temperature"],
    "weight": ["body weight"],
    "height": ["body height"],
    "blood sugar": ["glucose"],
    "sugar": ["glucose"],
    "bun": ["urea nitrogen"],
    "k": ["potassium"],
    "na": ["sodium"],
    "mg": ["magnesium"],
    "flu": ["influenza"],
    "tetanus": ["td (adult)", "tdap"],
    "mi": ["myocardial infarction"],
    "heart attack": ["myocardial infarction"],
    "htn": ["hypertension"],
    "high blood pressure": ["hypertension"],
    "dm": ["diabetes"],
    "t2dm": ["diabetes"],
    "copd": ["chronic obstructive"],
    "ckd": ["chronic kidney"],
    "afib": ["atrial fibrillation"],
    "uti": ["urinary tract infection"],
    "cholesterol": ["cholesterol"],
    "spo2": ["oxygen saturation"],
    "o2 sat": ["oxygen saturation"],
    "respiratory rate": ["respiratory rate"],
}


# Words a search text may hold that no display needs: articles, prepositions, conjunctions, possessives, and the
# question's framing ("history of asthma", "hx of MI"). Every word of a text must be in a display, so "An
# appendectomy" or "history of asthma" found nothing. Dropped as whole words only ("A-fib", "Tri-Cyclen" stay),
# and only while another word remains ("the" alone is searched as written).
STOP_WORDS = frozenset(
    {
        *("a", "an", "the", "any", "some", "this", "that", "these", "those"),
        *("of", "for", "with", "without", "to", "in", "on", "at", "by", "from", "about", "as", "into", "per"),
        *("and", "or", "his", "her", "hers", "their", "its", "my", "your", "our", "he", "she", "they"),
        *("is", "was", "were", "be", "been", "has", "had", "have", "ever", "history", "hx"),
    }
)


def search_text(text: str) -> str:
    """The text a search matches: lower case, spaces collapsed, stop words (:data:`STOP_WORDS`) dropped unless
    nothing else remains: 'An appendectomy' -> 'appendectomy', 'history of asthma' -> 'asthma'."""
    tokens = text.lower().split()
    kept = [t for t in tokens if t.strip(".,;:!?()'\"") not in STOP_WORDS]
    return " ".join(kept if any(re.search(r"\w", t) for t in kept) else tokens)


def text_phrases(text: str) -> list[str]:
    """The phrase as written and without its stop words, plus synonyms, for a FHIR ``:text`` search (comma = OR)."""
    written = " ".join(text.lower().split())
    phrase = search_text(text)
    phrases = [written, phrase, *SYNONYMS.get(written, []), *SYNONYMS.get(phrase, [])]
    return list(dict.fromkeys(p for p in phrases if p))


def text_param(text: str) -> str:
    return ",".join(_escaped(p) for p in text_phrases(text))


MAX_TEXT_WORDS = 8  # beyond this many words the text is searched as one phrase


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,")


def text_words(text: str) -> list[str]:
    """'Albumin [Mass/volume]' -> ['albumin', 'mass', 'volume']: the words, lower case, punctuation dropped, stop
    words too (:func:`search_text`): 'history of asthma' -> ['asthma']."""
    return list(dict.fromkeys(re.findall(r"\w+", search_text(text))))


def _whole_phrase(text: str) -> bool:
    """Whether ``text`` is searched as one phrase (or its synonyms) rather than word by word."""
    phrase = search_text(text)
    written = " ".join(text.lower().split())
    return written in SYNONYMS or phrase in SYNONYMS or not 1 < len(text_words(text)) <= MAX_TEXT_WORDS


def text_params(code_param: str, text: str) -> list[tuple[str, str]]:
    """FHIR ``:text`` parameters matching words of a code's display, case-insensitively: a phrase with known
    synonyms (or a single word) as one parameter (phrase or synonym); otherwise each word in any order (one
    parameter per word, which FHIR ANDs), so 'serum albumin' finds 'Albumin [Mass/volume] in Serum or Plasma'.
    Stop words are not searched for (:func:`search_text`)."""
    if _whole_phrase(text):
        return [(f"{code_param}:text", text_param(text))]
    return [(f"{code_param}:text", _escaped(word)) for word in text_words(text)]


def text_matches(display: str, text: str) -> bool:
    """Whether a display matches ``text`` as :func:`text_params` searches it (phrase, synonym or every word)."""
    flat = display.replace("\u200b", "").lower()
    if any(phrase in flat for phrase in text_phrases(text)):
        return True
    return not _whole_phrase(text) and all(word in flat for word in text_words(text))


def check_text(value: str) -> str:
    """Words to search for: control and format characters dropped; at least one letter or digit (a filter of
    only control characters would otherwise search for nothing and every row would look like a match)."""
    text = " ".join("".join(c for c in str(value) if unicodedata.category(c) not in ("Cc", "Cf")).split())
    if not any(c.isalnum() for c in text):
        raise ValueError(f"text {str(value)[:40]!r} has no letters or digits; give words, e.g. 'hemoglobin a1c'")
    if len(text) < 2:
        raise ValueError("text must have at least 2 characters, e.g. 'hemoglobin a1c'")
    if len(text) > 200:
        raise ValueError("text is too long; use a few words, e.g. 'hemoglobin a1c'")
    return text


TextArg = Annotated[
    str,
    AfterValidator(check_text),
    Field(description="Words in the code's display name (case-insensitive), e.g. 'hemoglobin a1c'"),
]


async def require_patient(ctx: ToolContext, patient_id: str) -> dict[str, Any]:
    """The Patient resource (cached per run); a ToolError the model can act on when it does not exist."""
    cache: dict[str, dict[str, Any]] = ctx.cache.setdefault("patients", {})
    if patient_id not in cache:
        try:
            cache[patient_id] = await ctx.client.read_json("Patient", patient_id)
        except FhirNotFound:
            raise ToolError(
                f"patient {patient_id!r} not found; find the id with find_patients(name=..., "
                "birth_date=...) or find_patients(identifier=<MRN>)"
            ) from None
    return cache[patient_id]


def death_note(patient: dict[str, Any], now: Any) -> str:
    """'; patient deceased 2004-04-08 ...' for every patient-scoped header when the patient died by now, else ''."""
    from medagent.tools.dates import parse_fhir

    died = parse_fhir(patient.get("deceasedDateTime"))
    if died is None or died > now:
        return ""
    return (
        f" [patient deceased {died.date().isoformat()}; 'current' means at death: nothing was taken or given after it]"
    )


async def names_of(ctx: ToolContext, references: list[str]) -> dict[str, str]:
    """'Practitioner/x' -> 'Given Family' for many references in one search (cached per run)."""
    from medagent.tools.rows import person_name

    cache: dict[str, str] = ctx.cache.setdefault("names", {})
    wanted: dict[str, list[str]] = {}
    for ref in references:
        if ref and ref not in cache and "/" in ref:
            kind, _, rid = ref.partition("/")
            wanted.setdefault(kind, []).append(rid)
    for kind, ids in wanted.items():
        if kind not in ("Practitioner", "Patient", "RelatedPerson", "Organization"):
            continue
        for start in range(0, len(ids), 50):
            chunk = sorted(set(ids[start : start + 50]))
            async for resource in ctx.client.search_json(kind, {"_id": ",".join(chunk), "_count": len(chunk)}):
                name = resource.get("name") if kind == "Organization" else person_name(resource)
                cache[f"{kind}/{resource['id']}"] = str(name or "")
    return {ref: cache.get(ref, "") for ref in references if ref}


async def resources_by_id(ctx: ToolContext, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Resources of one type by id, fetched in batches of 50; keys are 'Type/id'."""
    out: dict[str, dict[str, Any]] = {}
    unique = sorted(set(i for i in ids if i))
    for start in range(0, len(unique), 50):
        chunk = unique[start : start + 50]
        async for resource in ctx.client.search_json(kind, {"_id": ",".join(chunk), "_count": len(chunk)}):
            out[f"{kind}/{resource['id']}"] = resource
    return out
