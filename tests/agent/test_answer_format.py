"""A question that states a JSON answer gets a final answer grammar holding that object; other questions are
left alone. Every oracle answer in the frozen sets must still fit (tests/bench/test_policies.py runs the oracle)."""

from __future__ import annotations

import json
import re
from typing import Any

from medagent.agent.actions import action_schema
from medagent.agent.answer_format import answer_pattern, json_keys
from medagent.models.base import schema_violation
from medagent.tools.registry import Registry

MEDS = ('Question: Which prescriptions in this chart document Diabetes as their reason? Give the medications.\n'
        'Answer format: Answer as JSON: {"medications": [the medication names exactly as written in the chart], '
        '"first_ordered": "YYYY-MM-DD" (the date of the earliest of those orders)}.')
HBA1C = ('Task: re-order the HbA1c if it is stale.\nAnswer format: Answer as JSON: {"value": <the HbA1c in %, '
         'rounded to 1 decimal place>, "date": "YYYY-MM-DD"}, or \'none\' if there is no HbA1c result.')
DECISION = ('Answer format: Answer as JSON: {"decision": "ordered", or the failed check: "allergy", "duplicate" '
            'or "kidney", "egfr": the most recent eGFR value in mL/min/1.73m2, rounded to the nearest whole number}.')


def test_the_keys_are_read_from_the_stated_object_only() -> None:
    assert json_keys(MEDS) == ["medications", "first_ordered"]
    assert json_keys(HBA1C) == ["value", "date"]
    assert json_keys(DECISION) == ["decision", "egfr"]  # quoted values ("allergy", ...) are not keys
    assert json_keys('Question: Is "x": y?\nAnswer format: Answer yes or no.') == []
    assert answer_pattern("Question: When was it?\nAnswer format: Answer with one date in YYYY-MM-DD format.") is None


def test_the_pattern_takes_the_object_and_nothing_else() -> None:
    meds = answer_pattern(MEDS)
    assert meds is not None
    good = json.dumps({"medications": ["Insulin, isophane 70 UNT/ML [Humulin]", "Metformin (ER) 500 MG"],
                       "first_ordered": "2019-09-20"})
    for answer in (good, json.dumps({"medications": [], "first_ordered": None}),
                   '{"medications":["A"],"first_ordered":"2019-09-20"}'):
        assert re.fullmatch(meds, answer), answer
    for answer in ("2019-09-20", "Naproxen sodium 220 MG Oral Tablet", "none",
                   json.dumps({"first_ordered": "2019-09-20", "medications": ["A"]}),   # the stated order
                   json.dumps({"medications": ["A"]}),                                  # a key left out
                   json.dumps({"medications": ["A"], "first_ordered": "2019-09-20", "extra": 1}),
                   '{"medications": ["A"], "first_ordered": "2019-09-20"] | x"}'):           # past the object
        assert not re.fullmatch(meds, answer), answer
    hba1c = answer_pattern(HBA1C)
    assert hba1c is not None and re.fullmatch(hba1c, "none")  # the format allows 'none' here
    assert re.fullmatch(hba1c, '{"value": 7.2, "date": "2020-01-02"}')


def _answer(schema: dict[str, Any], text: str) -> str | None:
    return schema_violation({"tool": "final_answer", "arguments": {"answer": text, "citations": []}}, schema)


def test_the_final_answer_grammar_holds_the_pattern(registry: Registry) -> None:
    shaped = action_schema(registry, citable=[], answer_pattern=answer_pattern(MEDS))
    assert _answer(shaped, '{"medications": ["A"], "first_ordered": "2019-09-20"}') is None
    assert _answer(shaped, "2019-09-20") is not None
    plain = action_schema(registry, citable=[])
    assert _answer(plain, "2019-09-20") is None


def test_negative_numbers_fit_the_pattern() -> None:
    """Issue 25, item 7: a stated number may be negative (a change, a trend, a temperature): the pattern
    must take it, or the constrained model cannot write the true answer."""
    trend = ('Question: How did the weight of the patient change over the last year?\nAnswer format: Answer as JSON: '
             '{"change": <the change in kg, rounded to 1 decimal place>, "since": "YYYY-MM-DD"}.')
    pattern = answer_pattern(trend)
    assert pattern is not None
    for answer in ('{"change": -2.5, "since": "2019-01-02"}', '{"change": -3, "since": "2019-01-02"}',
                   '{"change": 0.4, "since": "2019-01-02"}'):
        assert re.fullmatch(pattern, answer), answer
    for answer in ('{"change": --2.5, "since": "2019-01-02"}', '{"change": 2.5-, "since": "2019-01-02"}'):
        assert not re.fullmatch(pattern, answer), answer
