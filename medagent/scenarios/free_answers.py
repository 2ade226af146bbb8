"""Free answers: the short sentence an agent writes where a question states no answer format, and reading
the value back out of one (the typed extraction the graders in :mod:`medagent.scenarios.answers` apply).

The convention (what the trained adapter is taught to write, one sentence per kind of answer):

=========  ===========================================  ==========================================
kind       with a value                                 without one
=========  ===========================================  ==========================================
yes_no     ``Yes, it is in the record.``                ``No, it is not in the record.``
date       ``It was on 2019-05-01.`` (ISO)              ``None is recorded.``
value      ``It was 6.1 %.`` (the unit written)         ``None is recorded.``
age        ``54 years old.``
list       ``They are: A; B.`` (``;`` between names)    ``None.``
person     ``It was prescribed by Jane Doe.``           ``None is recorded.``
mrn        ``The MRN is 0a1b-...``                      ``Patient not found.``
done       ``Done.`` (a write task: nothing graded)
=========  ===========================================  ==========================================

Yes/no comes first, dates are ISO, a number is followed by its unit, and the lead-in before a value is one
of a few frames (``It was``, ``They are:``, ``prescribed by``, ``The MRN is``) that :func:`value_span` strips,
as it strips the frames people commonly write ("The prescriber was ...", "Her medications are: ...").
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["AnswerKind", "sentence_answer", "value_span"]

AnswerKind = Literal["yes_no", "date", "value", "age", "list", "person", "mrn", "done"]
ANSWER_KINDS: tuple[str, ...] = ("yes_no", "date", "value", "age", "list", "person", "mrn", "done")

_NONE_TERSE = {"none", "patient not found"}
_NONE_SENTENCE: dict[str, str] = {"list": "None.", "mrn": "Patient not found."}


def sentence_answer(kind: str, terse: str) -> str:
    """The free-answer sentence for a terse answer (``yes``, ``2019-05-01``, ``6.1 %``, ``A; B``, ``none``)."""
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; choose one of {', '.join(ANSWER_KINDS)}")
    value = terse.strip()
    if kind == "done":
        return "Done."
    if kind == "yes_no":
        return "Yes, it is in the record." if value.lower() == "yes" else "No, it is not in the record."
    if value.lower() in _NONE_TERSE:
        return _NONE_SENTENCE.get(kind, "None is recorded.")
    return {
        "date": f"It was on {value}.",
        "value": f"It was {value}.",
        "age": f"{value} years old.",
        "list": f"They are: {value}.",
        "person": f"It was prescribed by {value}.",
        "mrn": f"The MRN is {value}",  # no full stop: an MRN may end in a character a stop would run into
    }[kind]


# A lead-in before the value: "They are: ...", "The active medications are ...", "It was prescribed by ...",
# "The prescriber was ...", "The MRN is ...". Short (at most 8 words), no digits, so a value is never eaten.
_COLON_LEAD = re.compile(r"^[^:\d]{1,80}?:\s+(?=\S)")
_VERB_LEAD = re.compile(
    r"^(?:(?:it|this|that|they|these|those|he|she)|(?:the|her|his|their|its|this patient's|the patient's)"
    r"(?:\s+[a-z-]+){1,5})\s+(?:is|was|are|were|has been|have been)\s+"
    r"(?:(?:prescribed|ordered|written|signed|given|requested|recorded)\s+by\s+)?",
    re.I,
)
# "She is taking ...", "He was given ...", "Neva Hyatt is on ...", "She takes ...": a subject of a few words and a verb of
# taking (no digits before it, so a value is never eaten)
_TAKING_LEAD = re.compile(
    r"^(?:[^\s\d:]+\s+){0,5}?(?:(?:is|are|was|were)\s+(?:currently\s+|still\s+)?(?:on|taking|using|receiving|"
    r"prescribed|given)|(?:takes|uses|receives|got|received))\s+",
    re.IGNORECASE,
)
_BY_LEAD = re.compile(r"^(?:[a-z-]+\s+){0,6}?(?:prescribed|ordered|written|signed|requested)\s+by\s+", re.I)
_END = re.compile(r"[\s.!]+$")


def value_span(text: str) -> str:
    """The value part of a free answer: the text without a lead-in frame and a closing full stop
    ("They are: A; B." -> "A; B"; "It was prescribed by Dr. Jane Doe." -> "Dr. Jane Doe"). A text without
    a known frame comes back as it was (less the closing full stop)."""
    span = text.strip()
    for frame in (_COLON_LEAD, _BY_LEAD, _TAKING_LEAD, _VERB_LEAD):
        match = frame.match(span)
        if match and len(match.group().split()) <= 8:
            span = span[match.end() :]
            break
    span = _END.sub("", span)
    return span if span else text.strip()
