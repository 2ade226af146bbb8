"""Deterministic grading of final answers: parse what the agent wrote, normalise, compare.

Each answer type has one explicit rule (documented in scenarios/README.md):
booleans yes/no/true/false (a free answer also as a plain negative sentence, "She does not have diabetes"; a hedge
is no answer);
dates ISO (a datetime is accepted where a date is asked);
names as a set, case/whitespace/punctuation-insensitive, numbers inside names must match exactly (a question's
aliases, a clinician's word for a name, may stand inside an item with its dose-form words and its numbers);
numbers with a per-question tolerance and only the unit conversions listed in the question's
expected answer. Anything that cannot be parsed unambiguously fails: a hedge is not an answer.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from medagent.scenarios.answer_types import AnswerKind, answer_type, register_answer_type
from medagent.scenarios.codes import LABS
from medagent.scenarios.free_answers import value_span
from medagent.scenarios.models import Check, ExpectedAnswer

_NONE_EXACT = {
    "none",
    "null",
    "nil",
    "n/a",
    "na",
    "nothing",
    "not available",
    "not found",
    "patient not found",
    "no patient found",
    "no match",
    "no matching patient",
    "-1",
    "[-1]",
    "[]",
}
_NONE_PATTERN = re.compile(
    r"\b(not (available|found|recorded|documented|on file)|no (such|matching|recorded|documented|"
    r"measurements?|results?|records?|values?|data|patient|vaccinations?|medications?|labs?|orders?))\b"
)
# a free answer (the question stated no format) says "nothing" in more words: "There is no TSH result in her chart",
# "He is not currently taking any medications", "It has never been measured"
_FREE_NONE_PATTERN = re.compile(
    r"\b(not (been )?(available|found|recorded|documented|on file|measured|checked|tested|given|prescribed)|"
    r"not (currently )?(taking|on) any (medications?|meds|drugs)|never (been )?(measured|checked|tested|recorded)|"
    r"no ([a-z-]+ ){0,3}?(such|matching|recorded|documented|measurements?|results?|records?|values?|data|patient|"
    r"vaccinations?|vaccines?|immunizations?|medications?|meds|drugs|labs?|orders?|prescriptions?|readings?|tests?))\b"
)
# a free answer's plain negative statement where a yes/no question gets a sentence ("She does not have diabetes", "He was never
# prescribed warfarin", "Hypertension is not recorded"); a hedge ("it is not known") is no answer
_NEGATED = re.compile(
    r"\b((does|do|did|has|have|had|is|are|was|were) (not|never)|(doesn|don|didn|hasn|haven|hadn|isn|"
    r"aren|wasn|weren) t|never|not (recorded|documented|on file|in (the|her|his) (record|chart)))\b"
)
_HEDGE = re.compile(
    r"\b(not (known|sure|certain|clear|determined|available|possible|able)|unknown|unclear|uncertain|"
    r"cannot|can t|unable|maybe|possibly|perhaps|might)\b"
)
# "I don't know", "No idea", "Not sure": no answer, though it starts with "no" or holds a negation
_NO_ANSWER = re.compile(
    r"^(?:(?:i|we) )?(?:don t|do not|did not|cannot|can t) (?:know|tell|say)\b|^no idea\b|"
    r"^(?:(?:i m|i am) )?not sure\b"
)
_YES = {"yes", "y", "true", "correct", "affirmative"}
_NO = {"no", "n", "false", "negative"}
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}
_MONTHS.update({name[:3]: number for name, number in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_TEXT_DATE_MDY = re.compile(r"\b([A-Za-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})\b")
_TEXT_DATE_DMY = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)? ([A-Za-z]{3,9})\.?,? (\d{4})\b")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?")
_WORDLIKE_UNITS = {"in", "m", "h", "l", "g", "yr", "pg", "fl"}
_TITLES = {"dr", "doctor", "md", "mr", "mrs", "ms", "miss", "prof", "phd", "do", "np", "pa"}


# ---------- normalisation ----------


def fold(text: str) -> str:
    """Lowercase, strip accents and zero-width characters, collapse whitespace."""
    text = unicodedata.normalize("NFKD", text.replace("\u200b", ""))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().split())


def _words(text: str) -> str:
    """fold() and replace punctuation (except the decimal point inside numbers) by spaces."""
    text = fold(text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    return " ".join(re.sub(r"[^\w.%]+", " ", text).split())


def normalise_unit(unit: str) -> str:
    unit = fold(unit).replace(" ", "").replace("µ", "u").replace("μ", "u")
    unit = unit.replace("mm[hg]", "mmhg").replace("[", "").replace("]", "")
    return {"°c": "cel", "degc": "cel", "lbs": "lb", "kg/m^2": "kg/m2", "mmhg": "mmhg"}.get(unit, unit)


def _common_units() -> list[str]:
    """Units the parser recognises after a number, so a wrong unit is caught rather than ignored."""
    units = {
        "mg",
        "g",
        "kg",
        "mcg",
        "mEq",
        "mmol",
        "mL",
        "L",
        "h",
        "hours",
        "years",
        "yr",
        "%",
        "lb",
        "in",
        "mg/dL",
        "mmol/L",
        "mEq/L",
        "g/dL",
        "g/L",
        "umol/L",
        "µmol/L",
        "mm[Hg]",
        "mmHg",
        "mL/min",
        "U/L",
        "fL",
        "pg",
        "kg/m2",
        "cm",
        "m",
        "Cel",
        "°C",
        "°F",
        "degF",
        "ng/mL",
        "pg/mL",
    }
    for info in LABS.values():
        units.add(info.unit)
        units.update(info.unit_factors)
    return sorted(units, key=lambda u: (-len(u), u))


COMMON_UNITS = _common_units()


def is_none_answer(text: str, free: bool = False) -> bool:
    """True when the answer says there is no such data ("none", "not available", "-1" ...; for a ``free`` answer
    also in a sentence: "There is no TSH result in her chart").

    An empty answer is *not* "none": a silent finish never passes (MedAgentBench's v2 flaw).
    """
    folded = fold(text).strip(" .!\"'`")
    if not folded:
        return False
    if folded in _NONE_EXACT:
        return True
    if re.match(r"^(none|null|nil|n/a)\b", folded):
        return True
    # digits other than a stated period ("in the last 24 hours") mean a value was given after all
    rest = re.sub(
        r"\b(last|past|previous|within|over)\s+(the\s+)?\d+\s*(h|hrs?|hours?|days?|months?|years?)\b", " ", folded
    )
    if re.search(r"\d", rest):
        return False
    pattern = _FREE_NONE_PATTERN if free else _NONE_PATTERN
    return bool(pattern.search(rest)) or bool(re.match(r"^no \w", rest))


def _unwrap(answer: Any) -> Any:
    """A dict answer from a typed finish tool: take its 'answer'/'value' or its single value."""
    if isinstance(answer, dict):
        for key in ("answer", "value", "result"):
            if key in answer:
                return answer[key]
        if len(answer) == 1:
            return next(iter(answer.values()))
    return answer


# ---------- parsers ----------


def parse_boolean(answer: Any, free: bool = False) -> bool | None:
    answer = _unwrap(answer)
    if isinstance(answer, bool):
        return answer
    if answer is None:
        return None
    words = _words(str(answer)).split()
    if not words or _NO_ANSWER.search(" ".join(words)):
        return None
    if words[0] in _YES | _NO:
        first = words[0] in _YES
        opposite = _NO if first else _YES
        if any(w in opposite for w in words[1:3]):
            return None  # "yes and no", "yes/no": a hedge is not an answer
        return first
    has_yes = any(w in _YES - {"y"} for w in words)
    has_no = any(w in _NO - {"n"} for w in words)
    if has_yes != has_no:
        return has_yes
    text = " ".join(words)
    if free and not has_yes and _NEGATED.search(text) and not _HEDGE.search(text):
        return False  # a free answer's negative sentence without "no": "She does not have diabetes."
    return None


def find_dates(text: str) -> list[date]:
    """All calendar dates written in the text (ISO, 'May 1, 2019', '1 May 2019'), in order."""
    found: list[tuple[int, date]] = []
    for match in _ISO_DATE.finditer(text):
        try:
            found.append((match.start(), date(int(match[1]), int(match[2]), int(match[3]))))
        except ValueError:
            continue
    for pattern, order in ((_TEXT_DATE_MDY, "mdy"), (_TEXT_DATE_DMY, "dmy")):
        for match in pattern.finditer(text):
            month_word, day_text = (match[1], match[2]) if order == "mdy" else (match[2], match[1])
            month = _MONTHS.get(month_word.lower())
            if month is None:
                continue
            try:
                found.append((match.start(), date(int(match[3]), month, int(day_text))))
            except ValueError:
                continue
    return [d for _, d in sorted(found)]


def strip_dates(text: str) -> str:
    for pattern in (_ISO_DATE, _TEXT_DATE_MDY, _TEXT_DATE_DMY):
        text = pattern.sub(" ", text)
    return text


def parse_date(answer: Any) -> date | None:
    """The single date in the answer; None when there is none or several different ones."""
    answer = _unwrap(answer)
    if answer is None:
        return None
    dates = set(find_dates(str(answer)))
    return dates.pop() if len(dates) == 1 else None


def parse_number(answer: Any, known_units: list[str]) -> tuple[float, str | None] | None:
    """(value, unit or None) of the first number outside any date; unit only if it is a known one."""
    answer = _unwrap(answer)
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, int | float):
        return float(answer), None
    text = strip_dates(str(answer))
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)
    match = _NUMBER.search(text)
    if not match:
        return None
    value = float(match.group())
    rest = text[match.end() :].strip()
    by_norm = {normalise_unit(u): u for u in known_units}
    for length in range(min(len(rest), 24), 0, -1):
        if length < len(rest) and (rest[length].isalnum() or rest[length] in "/^*[]"):
            continue  # a unit ends at a word boundary
        candidate = rest[:length].strip()
        if not candidate or normalise_unit(candidate) not in by_norm:
            continue
        after = rest[length:].lstrip()
        if candidate.lower() in _WORDLIKE_UNITS and after and after[0].isalpha():
            continue  # "4.5 in the last test": 'in' is a word here, not inches
        return value, by_norm[normalise_unit(candidate)]
    return value, None


def split_names(answer: Any, free: bool = False) -> list[list[str]]:
    """Candidate readings of a names answer, most explicit first: JSON list, ';'/newline, commas; for a ``free``
    answer (the question stated no format) then the same of its value part
    (:func:`~medagent.scenarios.free_answers.value_span`: "They are: A; B." -> "A; B") and a sentence's list
    ("She is taking A, B and C"). Where the question states the format ("the MRN only"), a sentence around the
    value does not pass."""
    answer = _unwrap(answer)
    if isinstance(answer, list | tuple | set):
        return [[str(a) for a in answer]]
    text = str(answer if answer is not None else "").strip()
    if text.startswith("["):
        try:
            loaded = json.loads(text)
            if isinstance(loaded, list):
                return [[str(a) for a in loaded]]
        except ValueError:
            pass
    readings = [[p for p in re.split(r"[;\n]+", text)]]
    if "," in text:
        readings.append([p for p in re.split(r"[;\n,]+", text)])
    span = value_span(text) if free else text  # a free answer's sentence ("They are: A; B."): its value part
    if span != text:
        readings.append([p for p in re.split(r"[;\n]+", span)])
        if "," in span:
            readings.append([p for p in re.split(r"[;\n,]+", span)])
    for part in dict.fromkeys([text, span] if free else []):  # a free sentence's list: "A, B and C"
        if re.search(r"\band\b", part):
            readings.append(re.split(r"[;\n]+|,\s*(?:and\s+)?|\s+and\s+", part))
    cleaned = []
    for reading in readings:
        items = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", item).strip().strip("\"'`").strip() for item in reading]
        cleaned.append([item for item in items if item])
    return cleaned


# ---------- name matching ----------


def _numbers_of(text: str) -> list[str]:
    return sorted(str(float(n)) for n in re.findall(r"\d+(?:\.\d+)?", text))


def name_matches(got: str, want: str, kind: str, aliases: list[str] | None = None) -> bool:
    """Whether one answered name denotes the expected one.

    person: the same set of name words, titles ignored ("Dr. Elroy Brakus" = "Brakus, Elroy").
    others: same numbers (strengths) exactly, and letters equal or nearly equal: the same number of
    words, each at most one edit from its counterpart, and a letter ratio >= 0.9. That forgives
    Synthea's own typo "Simvistatin" and a plural "Tablets", but never "25 MG" for "6.25 MG" nor
    another drug two edits away ("Ampicillin" for "Amoxicillin").
    """
    candidates = [want, *(aliases or [])]
    got_words = _words(got)
    named = _words(" ".join(candidates))  # the expected name and its other spellings: their words and numbers
    if kind not in ("person", "identifier") and any(_alias_within(got_words, a, named) for a in aliases or []):
        return True
    for candidate in candidates:
        want_words = _words(candidate)
        if got_words == want_words:
            return True
        if kind == "person":
            strip = lambda s: {w for w in s.split() if w not in _TITLES}  # noqa: E731
            if strip(got_words) and strip(got_words) == strip(want_words):
                return True
            continue
        if kind == "identifier":
            continue
        if _numbers_of(got_words) != _numbers_of(want_words):
            continue
        letters_got = re.sub(r"[\d.]+", " ", got_words).split()
        letters_want = re.sub(r"[\d.]+", " ", want_words).split()
        if len(letters_got) != len(letters_want):
            continue
        if any(_edits_exceed_one(a, b) for a, b in zip(letters_got, letters_want, strict=True)):
            continue
        if difflib.SequenceMatcher(None, " ".join(letters_got), " ".join(letters_want)).ratio() >= 0.9:
            return True
    return False


_FORM_WORDS = frozenset(
    {
        "mg",
        "mcg",
        "g",
        "ml",
        "unt",
        "unit",
        "units",
        "tablet",
        "tablets",
        "tab",
        "tabs",
        "capsule",
        "capsules",
        "oral",
        "er",
        "xr",
        "sr",
        "extended",
        "release",
        "daily",
        "hcl",
        "hydrochloride",
        "spray",
        "injection",
        "injectable",
        "inhaler",
        "solution",
        "suspension",
        "patch",
        "ring",
        "implant",
        "pack",
        "prefilled",
        "syringe",
        "mucosal",
        "transdermal",
        "system",
        "a",
        "an",
        "the",
        "her",
        "his",
        "their",
    }
)


def _alias_within(got_words: str, alias: str, want_words: str) -> bool:
    """A clinician's word for the expected name (an ingredient, a brand: the question's ``aliases``) inside the
    answered item, every other word of the item one of the words or numbers of the expected name (or of its other
    spellings) or a dose-form word: "Metformin 500 mg ER" names "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet";
    "Metformin 850 mg" and "metformin with lisinopril" do not."""
    alias_words, got_words, want_words = (_singular(_words(alias)), _singular(got_words), _singular(want_words))
    if not alias_words or re.search(r"\d", alias_words) or f" {alias_words} " not in f" {got_words} ":
        return False
    rest = f" {got_words} ".replace(f" {alias_words} ", " ", 1).split()
    numbers = set(_numbers_of(want_words))
    allowed = set(want_words.split()) | {_singular(w) for w in _FORM_WORDS}
    return all(str(float(w)) in numbers if re.fullmatch(r"\d+(?:\.\d+)?", w) else w in allowed for w in rest)


def _singular(words: str) -> str:
    """Each word without a plural s ("sprains" -> "sprain"), the same on both sides of a comparison."""
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words.split())


def _edits_exceed_one(a: str, b: str) -> bool:
    """More than one insertion, deletion, substitution or swap of neighbours turns ``a`` into ``b``."""
    if a == b:
        return False
    if abs(len(a) - len(b)) > 1:
        return True
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return False
        i = diffs[0]
        return not (len(diffs) == 2 and diffs[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    return short[i:] != long[i + 1 :]


def names_equal(got: list[str], expected: ExpectedAnswer) -> bool:
    """Set equality under name_matches: every answered name matches one expected name and back."""
    want = list(expected.value or [])  # type: ignore[arg-type]
    kind = expected.names_kind
    unmatched = list(want)
    for item in got:
        hit = next((w for w in unmatched if name_matches(item, w, kind, expected.aliases.get(w))), None)
        if hit is None:
            if any(name_matches(item, w, kind, expected.aliases.get(w)) for w in want):
                continue  # a duplicate of a name already matched
            return False
        unmatched.remove(hit)
    return not unmatched


# ---------- per-type grading ----------


def _within(got: float, want: float, abs_tol: float, rel_tol: float) -> bool:
    return abs(got - want) <= max(abs_tol, rel_tol * abs(want)) + 1e-9


def count_numbers(answer: Any, units: list[str]) -> int:
    """How many numbers an answer holds outside dates and outside unit names with digits ("mL/min/1.73m2")."""
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        return 1
    text = strip_dates(str(answer))
    for unit in sorted((u for u in units if re.search(r"\d", u)), key=len, reverse=True):
        text = text.replace(unit, " ")
    return len(_NUMBER.findall(re.sub(r"(\d),(\d{3})\b", r"\1\2", text)))


def _decimals_of(answer: Any) -> int:
    text = strip_dates(str(_unwrap(answer)))
    match = _NUMBER.search(re.sub(r"(\d),(\d{3})\b", r"\1\2", text))
    if not match or "." not in match.group():
        return 0
    return len(match.group().split(".")[1])


def grade_number(expected: ExpectedAnswer, answer: Any, name: str = "answer") -> Check:
    want = expected.value
    if want is None:
        got_none = answer is not None and is_none_answer(str(_unwrap(answer)), expected.free)
        return Check(name=name, passed=got_none, expected="none", got=answer)
    accepted = [u for u in [expected.unit or "", *expected.unit_factors] if u]
    parsed = (
        None if is_none_answer(str(_unwrap(answer)), expected.free) else parse_number(answer, accepted + COMMON_UNITS)
    )
    if parsed is None:
        return Check(name=name, passed=False, expected=_show_number(expected), got=answer, detail="no number")
    if expected.single_number and count_numbers(_unwrap(answer), accepted + COMMON_UNITS) > 1:
        return Check(
            name=name,
            passed=False,
            expected=_show_number(expected),
            got=answer,
            detail="more than one number: state the value alone (v3 answers name each value)",
        )
    value, unit = parsed
    factor = 1.0
    tol_abs, tol_rel = expected.tolerance.abs, expected.tolerance.rel
    if unit is not None and normalise_unit(unit) != normalise_unit(expected.unit or ""):
        factors = {normalise_unit(u): f for u, f in expected.unit_factors.items()}
        if normalise_unit(unit) not in factors:
            return Check(
                name=name,
                passed=False,
                expected=_show_number(expected),
                got=answer,
                detail=f"unit {unit!r} not accepted",
            )
        factor = factors[normalise_unit(unit)]
        if not math.isclose(factor, 1.0):
            # a value in another unit is only as precise as the digits the agent wrote
            tol_abs = max(tol_abs, 0.5 * 10 ** -_decimals_of(answer) * factor)
    converted = value * factor
    passed = _within(converted, float(want), tol_abs, tol_rel)  # type: ignore[arg-type]
    return Check(
        name=name,
        passed=passed,
        expected=_show_number(expected),
        got=answer,
        detail=None if passed else f"read {converted:g} {expected.unit or ''}".strip(),
    )


def _show_number(expected: ExpectedAnswer) -> str:
    tol = expected.tolerance
    spread = f" ±{max(tol.abs, tol.rel * abs(float(expected.value or 0))):g}" if (tol.abs or tol.rel) else ""  # type: ignore[arg-type]  # a number type holds a float
    return f"{expected.value:g}{spread} {expected.unit or ''}".strip()


def grade_date(expected: ExpectedAnswer, answer: Any, name: str = "answer") -> Check:
    if expected.value is None:
        got_none = answer is not None and is_none_answer(str(_unwrap(answer)), expected.free)
        return Check(name=name, passed=got_none, expected="none", got=answer)
    want = date.fromisoformat(str(expected.value)[:10])
    got = parse_date(answer)
    passed = got is not None and abs((got - want).days) <= expected.tolerance.days
    return Check(
        name=name,
        passed=passed,
        expected=want.isoformat(),
        got=answer,
        detail=None if got is not None else "no single date",
    )


def grade_boolean(expected: ExpectedAnswer, answer: Any, name: str = "answer") -> Check:
    got = parse_boolean(answer, expected.free)
    want = bool(expected.value)
    return Check(
        name=name,
        passed=got is want,
        expected="yes" if want else "no",
        got=answer,
        detail=None if got is not None else "not a yes/no answer",
    )


def grade_names(expected: ExpectedAnswer, answer: Any, name: str = "answer") -> Check:
    want = list(expected.value or [])  # type: ignore[arg-type]
    raw = _unwrap(answer)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Check(name=name, passed=False, expected=want or "none", got=answer, detail="empty answer")
    if (isinstance(raw, str) and is_none_answer(raw, expected.free)) or (isinstance(raw, list | tuple) and not raw):
        return Check(name=name, passed=not want, expected=want or "none", got=answer)
    passed = any(names_equal(reading, expected) for reading in split_names(raw, expected.free))
    return Check(name=name, passed=passed, expected=want or "none", got=answer)


def grade_text_contains(expected: ExpectedAnswer, answer: Any, name: str = "answer") -> Check:
    text = _words(str(_unwrap(answer) or ""))
    value = expected.value
    wanted = [value] if isinstance(value, str) else [str(v) for v in value or []]  # type: ignore[union-attr]
    missing = [w for w in wanted if _words(w) not in text]
    return Check(
        name=name, passed=not missing, expected=wanted, got=answer, detail=f"missing: {missing}" if missing else None
    )


def _record_parts(expected: ExpectedAnswer, answer: Any) -> dict[str, Any]:
    """Split a record answer into its fields: a dict, a JSON object, or 'key: value' lines."""
    if isinstance(answer, str):
        text = answer.strip()
        if is_none_answer(text):
            return {key: "none" for key in expected.fields}
        match = re.search(r"\{.*\}", text, re.S)
        if match:
            try:
                loaded = json.loads(match.group())
                if isinstance(loaded, dict):
                    answer = loaded
            except ValueError:
                pass
    if isinstance(answer, dict):
        # an explicit null is an explicit "none"; a missing key is no answer at all
        by_key = {re.sub(r"[\s_-]+", "", k.lower()): ("none" if v is None else v) for k, v in answer.items()}
        return {key: by_key.get(re.sub(r"[\s_-]+", "", key.lower())) for key in expected.fields}
    text = str(answer or "")
    parts: dict[str, Any] = {}
    for line in re.split(r"\n+", text):
        if ":" not in line:
            continue
        label, _, value = line.partition(":")
        label_key = re.sub(r"[\s_-]+", "", fold(label))
        for key in expected.fields:
            if re.sub(r"[\s_-]+", "", key.lower()) == label_key:
                parts[key] = value.strip()
    if len(parts) < len(expected.fields):
        types = {key: part.type for key, part in expected.fields.items()}
        if sorted(types.values()) == ["date", "number"]:  # "6.1 % on 2019-05-01"
            for key in types:
                parts.setdefault(key, text)
    return parts


def record_parts(expected: ExpectedAnswer, answer: Any) -> dict[str, Any]:
    """The answer's value for each field of a record answer (None where it gives none), as the grader reads it."""
    return _record_parts(expected, answer)


def grade_answer(expected: ExpectedAnswer, answer: Any) -> list[Check]:
    """One check per graded part of the answer (one for scalar types, one per field of a record)."""
    return answer_type(expected.type).grade(expected, answer)


def _grade_record(expected: ExpectedAnswer, answer: Any) -> list[Check]:
    parts = _record_parts(expected, answer)
    checks: list[Check] = []
    for key, part in expected.fields.items():
        checks.extend(c.model_copy(update={"name": f"answer.{key}"}) for c in grade_answer(part, parts.get(key)))
    return checks


def _one_check(grader: Callable[[ExpectedAnswer, Any], Check]) -> Callable[[ExpectedAnswer, Any], list[Check]]:
    return lambda expected, answer: [grader(expected, answer)]


# ---------- the answer a perfect agent writes, in the format the task text asks for ----------


def plain_value(expected: ExpectedAnswer) -> Any:
    """The expected value as a reference answer writes it (numbers to 6 decimals)."""
    if expected.type == "number" and expected.value is not None:
        return round(float(expected.value), 6)  # type: ignore[arg-type]
    return expected.value


def _or_none(write: Callable[[Any, ExpectedAnswer], str]) -> Callable[[ExpectedAnswer], str]:
    """A reference writer that answers "none" where no value exists."""

    def reference(expected: ExpectedAnswer) -> str:
        value = plain_value(expected)
        return "none" if value is None else write(value, expected)

    return reference


def _reference_record(expected: ExpectedAnswer) -> str:
    if all(part.value is None for part in expected.fields.values()):
        return "none"
    return json.dumps({key: plain_value(part) for key, part in expected.fields.items()})


# ---------- the answer types: one declaration each ----------

register_answer_type(
    AnswerKind(
        name="boolean",
        description="yes or no (true/false accepted)",
        grade=_one_check(grade_boolean),
        reference=_or_none(lambda value, _: "yes" if value else "no"),
    )
)
register_answer_type(
    AnswerKind(
        name="date",
        description="one ISO date (a date-time is accepted), within the tolerance in days",
        grade=_one_check(grade_date),
        reference=_or_none(lambda value, _: str(value)),
    )
)
register_answer_type(
    AnswerKind(
        name="names",
        description="a set of names, case/whitespace/punctuation-insensitive; numbers must match",
        grade=_one_check(grade_names),
        reference=_or_none(lambda value, _: "; ".join(value) if value else "none"),
    )
)
register_answer_type(
    AnswerKind(
        name="number",
        description="a number within the tolerance, in the unit or one of the listed conversions",
        grade=_one_check(grade_number),
        reference=_or_none(lambda value, expected: f"{value} {expected.unit or ''}".strip()),
    )
)
register_answer_type(
    AnswerKind(
        name="text-contains",
        description="free text that contains every expected phrase",
        grade=_one_check(grade_text_contains),
        reference=_or_none(lambda value, _: " ".join(value) if isinstance(value, list) else str(value)),
    )
)
register_answer_type(
    AnswerKind(
        name="record",
        description="several named parts (a JSON object), each graded by its own type",
        grade=_grade_record,
        reference=_reference_record,
    )
)
register_answer_type(
    AnswerKind(
        name="none",
        description="not graded (a write-only task); the grade is the server's diff",
        grade=lambda expected, answer: [],
        reference=lambda expected: "done",
    )
)
