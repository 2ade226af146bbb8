"""The shape of answer a question asks for, as a pattern the final answer's grammar enforces.

A question that says ``Answer as JSON: {"medications": [...], "first_ordered": "YYYY-MM-DD" ...}`` states
the keys of the object it wants; a small model asked for it still answers a bare date or one name (the
trained 270M adapter wrote an object for 7 of 21 such questions, and got 1 right; held to the object by
this pattern, 9). Where the question states such an object, the
final answer's ``answer`` string must be one: those keys, in that order, each holding a JSON string
(printable ASCII, no quote or backslash inside: chart names have none), number, null, boolean or list of
strings (the values stay the model's), or ``none`` where the format
allows it. A question recognisably yes/no (its format says "yes or no", or, with no format stated, every
question in it starts with an auxiliary verb and none asks what/which/when/who/how) gets an answer that starts
with Yes or No (a sentence may follow: "No, it is not in the record."). A plain-language question (no format
stated) recognisably asking when, or for a value ("How many ...?", "What was her last potassium level?"), gets an
answer that holds an ISO date (YYYY-MM-DD) or a number somewhere, or says it is not recorded ("None", "Not
recorded", "No ...", "Never ..."). Nothing else is constrained.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "DATE_ANSWER_PATTERN",
    "NUMBER_ANSWER_PATTERN",
    "YES_NO_PATTERN",
    "answer_pattern",
    "format_text",
    "json_keys",
    "value_question",
    "yes_no_question",
]

_FORMAT = re.compile(r"Answer as JSON:\s*(\{.*\})", re.S)
_KEY = re.compile(r'"(\w+)"\s*:')
_NONE_TOO = re.compile(r"""or ['"]none['"]""")

# printable ASCII but the quote and the backslash, as a positive class: llguidance checks a negated class
# such as [^"\\] per token only loosely inside a JSON string (a model got past the closing quote with it)
_STRING = r'"[ !#-\[\]-~]*"'
_VALUE = rf"(?:{_STRING}|-?\d+(?:\.\d+)?|null|true|false|\[ ?(?:{_STRING}(?:, ?{_STRING})*)? ?\])"


# Yes or No first; then nothing, a stop, or a sentence (printable ASCII but the quote and the backslash, as above)
YES_NO_PATTERN = r"^(?:[Yy]es|YES|[Nn]o|NO)(?:[.,;:!]?(?: [ !#-\[\]-~]*)?)?$"

_TEXT = r"[ !#-\[\]-~]*"  # printable ASCII but the quote and the backslash (the strings above)
# an explicit "not recorded"-type answer: None, Not ..., No ..., Never ..., Unknown ... (a stop or a sentence may follow)
_NOT_RECORDED = rf"(?:[Nn]one|NONE|[Nn]ot|NOT|[Nn]o|NO|[Nn]ever|[Uu]nknown)(?:[.,;:!]?(?: {_TEXT})?)?"
# A plain-language question asking when (a date) or for a value (a number) is answered with one somewhere in the
# answer, or with an explicit "not recorded" (the 270M adapter wrote "It was in the record data." instead)
DATE_ANSWER_PATTERN = rf"^(?:{_TEXT}[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{_TEXT}|{_NOT_RECORDED})$"
NUMBER_ANSWER_PATTERN = rf"^(?:{_TEXT}[0-9]{_TEXT}|{_NOT_RECORDED})$"

_FORMAT_LINE = re.compile(r"Answer format:\s*(.+?)(?:\n\n|$)", re.S)
_FORMAT_SENTENCE = re.compile(
    r"(?:^|(?<=[.?!)]\s)|(?<=\n))((?:Answer|Reply|Respond) (?:with|as|yes|in|only|'done')[^\n]*)"
)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n+")
_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|approx|e\.g|i\.e)\.", re.I)
_AUXILIARY = re.compile(
    r"^(?:is|are|was|were|has|have|had|does|do|did|can|could|should|will|would|any|ever|hx of|"
    r"history of)\b",
    re.I,
)
_REQUEST = re.compile(
    r"^(?:can|could|would|will) (?:you|u|we|i)\b(?: please)?\s+(?!check (?:if|whether)|"
    r"confirm (?:if|whether)|tell (?:me )?(?:if|whether)|see (?:if|whether)|find out (?:if|whether))",
    re.I,
)
_WH = re.compile(r"\b(?:what|what's|whats|which|when|who|whom|whose|where|why|how)\b", re.I)
_ASK_TO_CHECK = re.compile(r"^(?:can|could|would|will) (?:you|u)\b", re.I)
_CHECK_IF = re.compile(r"^(?:please )?(?:check|confirm|tell me|see|find out) (?:if|whether)\b", re.I)
_LEAD = re.compile(r"^(?:quick question|question|q|hi|hello|ok|so|also|and|please|pls|re|about [^:]+|pt)[:,\s-]+", re.I)


def format_text(question: str) -> str:
    """The answer-format instructions the question states ("Answer format: ..." and sentences such as "Answer
    with one date in YYYY-MM-DD format."), joined; "" when it states none."""
    found = [m.group(1).strip() for m in _FORMAT_LINE.finditer(question)]
    found += [
        m.group(1).strip()
        for m in _FORMAT_SENTENCE.finditer(question)
        if not any(m.group(1).strip() in f for f in found)
    ]
    return " ".join(found)


def yes_no_question(question: str) -> bool:
    """Whether the question asks to be answered yes or no: its stated format says so; or it states none and
    every question sentence in it starts with an auxiliary verb ("Has ...", "Is ...", "Any history of ...") or
    asks to check whether, and none asks what, which, when, who or how ("Is she on metformin or insulin?" is
    yes/no: "Yes, metformin." answers it)."""
    fmt = format_text(question)
    if fmt:
        return re.search(r"\byes or no\b|\byes/no\b", fmt, re.I) is not None
    sentences = [s.strip() for s in _SENTENCE_END.split(_ABBREVIATION.sub(r"\1", question)) if s.strip()]
    asked = [s for s in sentences if s.endswith("?")]
    if not asked:  # no question mark: a request to check whether, or a last sentence asked without one
        asked = [s for s in sentences if _CHECK_IF.match(_LEAD.sub("", s))] or sentences[-1:]
    if not asked:
        return False
    for sentence in asked:
        if _WH.search(sentence):
            return False
        # the question may follow a name or a lead-in: "Re Jane Doe - Has she ...?", "About Mr. X: Is he ...?"
        starts = [_LEAD.sub("", sentence)] + [
            _LEAD.sub("", part.strip()) for part in re.split(r":\s| - ", sentence)[1:]
        ]
        if not any(
            (_AUXILIARY.match(body) or _CHECK_IF.match(body) or _ASK_TO_CHECK.match(body)) and not _REQUEST.match(body)
            for body in starts
        ):
            return False
    return True


# a question sentence asking for a date ("When was ...?", "What date did ...?", "Date of her last tetanus shot?") or
# a value ("How many ...?", "How much ...?", "What was her last potassium level?", "What's the latest BMI value?")
_DATE_ASK = re.compile(r"^(?:when\b|(?:on |since )?(?:what|which) (?:date|day)\b|(?:the )?date (?:of|when)\b)", re.I)
_NUMBER_ASK = re.compile(
    r"^(?:how (?:much|many|high|low|heavy|tall)\b|(?:what|what's|whats)\b.*\b(?:value|level|reading|count|amount|"
    r"number|dose|score)s?\b)",
    re.I,
)


def _asked_sentences(question: str) -> list[str]:
    """The question sentences (those ending in "?", else the last), each without a lead-in ("Re Jane Doe - ")."""
    sentences = [s.strip() for s in _SENTENCE_END.split(_ABBREVIATION.sub(r"\1", question)) if s.strip()]
    asked = [s for s in sentences if s.endswith("?")] or sentences[-1:]
    out = []
    for sentence in asked:
        parts = [_LEAD.sub("", sentence)] + [_LEAD.sub("", p.strip()) for p in re.split(r":\s| - ", sentence)[1:]]
        out.append(next((p for p in parts if _WH.match(p) or _DATE_ASK.match(p)), parts[0]))
    return out


def value_question(question: str) -> str | None:
    """ "date" or "number" where a plain-language question (no format stated) recognisably asks for one: each of
    its question sentences asks when ("When was ...?", "What date ...?") or for a value ("How many ...?", "What was
    her last potassium level?") and asks nothing else (no second what, which, who or how); else None. A stated
    format says what it wants in its own words and is left to the model."""
    if format_text(question) or json_keys(question):
        return None
    kinds = set()
    for sentence in _asked_sentences(question):
        if len(_WH.findall(sentence)) > 1 or re.search(r"\b(?:and|or) (?:what|which|who|how|when)\b", sentence, re.I):
            return None
        if _DATE_ASK.match(sentence):
            kinds.add("date")
        elif _NUMBER_ASK.match(sentence):
            kinds.add("number")
        else:
            return None
    return kinds.pop() if len(kinds) == 1 else None


def json_keys(question: str) -> list[str]:
    """The keys of the JSON object the question's format line asks for, in order ([] when it asks for none)."""
    found = _FORMAT.search(question)
    return list(dict.fromkeys(_KEY.findall(found.group(1)))) if found else []


@lru_cache(maxsize=256)
def answer_pattern(question: str) -> str | None:
    """A regular expression the whole answer must match, or None (no JSON object stated, not a yes/no
    question); asked at every step of a run, hence the cache."""
    keys = json_keys(question)
    if not keys:
        if yes_no_question(question):
            return YES_NO_PATTERN
        kind = value_question(question)
        return {"date": DATE_ANSWER_PATTERN, "number": NUMBER_ANSWER_PATTERN}[kind] if kind else None
    members = ", ?".join(rf'"{key}": ?{_VALUE}' for key in keys)
    pattern = rf"\{{ ?{members} ?\}}"
    if _NONE_TOO.search(question, question.index("Answer as JSON:")):
        pattern = rf"(?:{pattern}|none)"
    return rf"^{pattern}$"
