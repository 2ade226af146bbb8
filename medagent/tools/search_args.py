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


CodeArg = Annotated[
    str,
    AfterValidator(check_codes),
    Field(description=f"Code(s), comma-separated, optionally with system: {CODE_EXAMPLE}"),
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


def text_phrases(text: str) -> list[str]:
    """The phrase itself plus synonyms, for a FHIR ``:text`` search (comma = OR)."""
    phrase = " ".join(text.lower().split())
    phrases = [phrase, *SYNONYMS.get(phrase, [])]
    return list(dict.fromkeys(p for p in phrases if p))


def text_param(text: str) -> str:
    return ",".join(_escaped(p) for p in text_phrases(text))


MAX_TEXT_WORDS = 8  # beyond this many words the text is searched as one phrase


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,")


def text_words(text: str) -> list[str]:
    """'Albumin [Mass/volume]' -> ['albumin', 'mass', 'volume']: the words, lower case, punctuation dropped."""
    return list(dict.fromkeys(re.findall(r"\w+", text.lower())))


def text_params(code_param: str, text: str) -> list[tuple[str, str]]:
    """FHIR ``:text`` parameters matching words of a code's display, case-insensitively: a phrase with known
    synonyms as one parameter (phrase or synonym); otherwise each word in any order (one parameter per word,
    which FHIR ANDs), so 'serum albumin' finds 'Albumin [Mass/volume] in Serum or Plasma'."""
    words = text_words(text)
    if " ".join(text.lower().split()) in SYNONYMS or len(words) <= 1 or len(words) > MAX_TEXT_WORDS:
        return [(f"{code_param}:text", text_param(text))]
    return [(f"{code_param}:text", _escaped(word)) for word in words]


def text_matches(display: str, text: str) -> bool:
    """Whether a display matches ``text`` as :func:`text_params` searches it (phrase, synonym or every word)."""
    flat = display.replace("\u200b", "").lower()
    if any(phrase in flat for phrase in text_phrases(text)):
        return True
    words = text_words(text)
    return (
        1 < len(words) <= MAX_TEXT_WORDS
        and " ".join(text.lower().split()) not in SYNONYMS
        and all(word in flat for word in words)
    )


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
