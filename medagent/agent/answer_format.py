"""The shape of answer a question asks for, as a pattern the final answer's grammar enforces.

A question that says ``Answer as JSON: {"medications": [...], "first_ordered": "YYYY-MM-DD" ...}`` states
the keys of the object it wants; a small model asked for it still answers a bare date or one name (the
trained 270M adapter wrote an object for 7 of 21 such questions, and got 1 right; held to the object by
this pattern, 9). Where the question states such an object, the
final answer's ``answer`` string must be one: those keys, in that order, each holding a JSON string
(printable ASCII, no quote or backslash inside: chart names have none), number, null, boolean or list of
strings (the values stay the model's), or ``none`` where the format
allows it. Nothing else is constrained: a format stated in words ("Answer yes or no.") is left to the
model, and a question without a stated format gets no pattern.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["answer_pattern", "json_keys"]

_FORMAT = re.compile(r"Answer as JSON:\s*(\{.*\})", re.S)
_KEY = re.compile(r'"(\w+)"\s*:')
_NONE_TOO = re.compile(r"""or ['"]none['"]""")

# printable ASCII but the quote and the backslash, as a positive class: llguidance checks a negated class
# such as [^"\\] per token only loosely inside a JSON string (a model got past the closing quote with it)
_STRING = r'"[ !#-\[\]-~]*"'
_VALUE = rf'(?:{_STRING}|-?\d+(?:\.\d+)?|null|true|false|\[ ?(?:{_STRING}(?:, ?{_STRING})*)? ?\])'


def json_keys(question: str) -> list[str]:
    """The keys of the JSON object the question's format line asks for, in order ([] when it asks for none)."""
    found = _FORMAT.search(question)
    return list(dict.fromkeys(_KEY.findall(found.group(1)))) if found else []


@lru_cache(maxsize=256)
def answer_pattern(question: str) -> str | None:
    """A regular expression the whole answer must match, or None (no JSON object stated); asked at every
    step of a run, hence the cache."""
    keys = json_keys(question)
    if not keys:
        return None
    members = ", ?".join(rf'"{key}": ?{_VALUE}' for key in keys)
    pattern = rf"\{{ ?{members} ?\}}"
    if _NONE_TOO.search(question, question.index("Answer as JSON:")):
        pattern = rf"(?:{pattern}|none)"
    return rf"^{pattern}$"
