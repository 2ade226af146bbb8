"""Typed extraction from free answers (medagent.scenarios.answers, free_answers), on real questions of the
natural-phrasing set (scenarios/natural): the sentences a clinician or an agent writes where the question states
no format (``ExpectedAnswer.free``) are read, and hand-made near misses fail (a wrong date, a wrong unit, "no" inside "not known", a list
missing one item or holding one more, another strength, the wrong prescriber)."""

from __future__ import annotations

import pytest

from medagent.bench.scenario_sets import open_set, set_dir
from medagent.scenarios.answers import grade_answer, parse_boolean
from medagent.scenarios.models import Scenario


@pytest.fixture(scope="module")
def asked() -> dict[str, Scenario]:
    return {s.id: s for s in open_set(set_dir("natural")).load("all", "all", "all")}


# (question id, what the question expects, in words), answer, passes
CASES = [
    # dates: "When did Neva Hyatt last get her flu shot?" (2020-12-11)
    ("natural-neva-07", "It was on 2020-12-11.", True),
    ("natural-neva-07", "Her last flu shot was on December 11, 2020.", True),
    ("natural-neva-07", "It was on 2020-12-12.", False),                       # a wrong date
    ("natural-neva-07", "Either 2020-12-11 or 2020-01-17.", False),             # two dates: no single answer
    # numbers with units: "What's Neva Hyatt's latest A1c?" (3.03 %), "How much does Neva Hyatt weigh?" (86.77 kg)
    ("natural-neva-20", "It was 3.03 %.", True),
    ("natural-neva-20", "Her latest HbA1c is 3.0% (2021-03-12).", True),
    ("natural-neva-20", "It was 3.03 mg/dL.", False),                           # a wrong unit
    ("natural-neva-20", "It was 3.3 %.", False),
    ("natural-neva-22", "She weighs 191.3 lb.", True),                          # an exact conversion
    ("natural-neva-22", "86.77 g", False),                                      # a wrong unit
    ("natural-neva-26", "124/73 mmHg", True),                                   # systolic asked: the first number
    # yes/no: "Any hx of HTN for Neva Hyatt?" (no); "Does Neva Hyatt have diabetes?" (yes)
    ("natural-neva-03", "No, it is not in the record.", True),
    ("natural-neva-03", "Neva Hyatt does not have hypertension.", True),        # a negative sentence is a no
    ("natural-neva-03", "She doesn't have hypertension.", True),
    ("natural-neva-03", "There is no record of hypertension.", True),
    ("natural-neva-03", "It is not known.", False),                             # "no" inside "not known" is no answer
    ("natural-neva-03", "She may not have hypertension.", False),               # a hedge
    ("natural-neva-03", "I don't know.", False),                                # "don't" is no negative answer
    ("natural-neva-03", "No idea.", False),
    ("natural-neva-01", "Yes, it is in the record.", True),
    ("natural-neva-01", "She does not have diabetes.", False),
    # lists: "What is Neva Hyatt currently taking?" (metformin ER 500 mg; Humulin 70/30)
    ("natural-neva-10", ("They are: 24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet; insulin human, "
                         "isophane 70 UNT/ML / Regular Insulin, Human 30 UNT/ML Injectable Suspension [Humulin]."), True),
    ("natural-neva-10", "She is taking metformin and Humulin.", True),
    ("natural-neva-10", "Metformin 500 mg ER; Humulin 70/30", True),
    ("natural-neva-10", "metformin", False),                                    # a list missing one item
    ("natural-neva-10", "Metformin, Humulin and lisinopril", False),            # one item more
    ("natural-neva-10", "Metformin 850 mg; Humulin", False),                    # another strength
    ("natural-neva-10", "metformin with lisinopril; humulin", False),           # another drug inside an item
    # one drug in two products is named once: "What was Barrett Douglas given for his CHF?"
    ("natural-barrett-19", "Barrett was given metoprolol, Lasix and furosemide injection.", True),
    ("natural-barrett-19", "metoprolol and Lasix", True),
    ("natural-barrett-19", "Lasix", False),
    ("natural-addie-15", "HCTZ 25 mg", True),
    ("natural-addie-15", "HCTZ 12.5 mg", False),
    # conditions: "Which heart conditions did Miguel Ángel Garica have?" (CHD, AF, cardiac arrest)
    ("natural-miguel-04", "Coronary heart disease, atrial fibrillation and cardiac arrest.", True),
    ("natural-miguel-04", "coronary heart disease, atrial fibrillation", False),  # missing one
    ("natural-karla-06", "ankle sprains and a clavicle fracture", True),
    # prescribers: "Who prescribed Neva Hyatt's metformin?" (Noe Dibbert); Almeda Conn's warfarin (Cedrick Runte)
    ("natural-neva-15", "It was prescribed by Dr. Noe Dibbert.", True),
    ("natural-neva-15", "Dr. Dibbert", True),
    ("natural-neva-15", "Dr. Marilu Urías", False),                             # her other doctor
    ("natural-almeda-12", "The prescriber was Cedrick Runte.", True),
    ("natural-almeda-12", "Barry Nicolas", False),                              # the wrong prescriber
    # nothing recorded: "What is Neva Hyatt's most recent TSH?"; "What medications is Gerard Thiel currently taking?"
    ("natural-neva-33", "None is recorded.", True),
    ("natural-neva-33", "There is no TSH result in her chart.", True),
    ("natural-neva-33", "Her TSH was 2.1.", False),
    ("natural-gerard-08", "He is not currently taking any medications.", True),
    ("natural-gerard-08", "None.", True),
    ("natural-gerard-08", "Metformin", False),
    # counts and ages
    ("natural-neva-28", "She had 14 encounters in 2020.", True),
    ("natural-neva-28", "13", False),
    ("natural-neva-31", "47 years old.", True),
    ("natural-neva-31", "She was 48.", False),
]


@pytest.mark.parametrize(("scenario_id", "answer", "passes"), CASES)
def test_free_answers_and_near_misses(asked: dict[str, Scenario], scenario_id: str, answer: str, passes: bool) -> None:
    assert all(c.passed for c in grade_answer(asked[scenario_id].answer, answer)) is passes


@pytest.mark.parametrize(("text", "value"), [
    ("She does not have diabetes.", False), ("He was never prescribed warfarin.", False),
    ("Hypertension is not recorded.", False), ("It isn't in her chart", False),
    ("It is not known.", None), ("Not sure, possibly not.", None), ("She has diabetes.", None),
    ("Unknown - it cannot be determined", None), ("I'm not sure", None),
    ("I don't know.", None), ("I do not know whether she has diabetes.", None), ("No idea.", None),
    ("Don't know", None),
])
def test_a_negative_sentence_is_a_no_and_a_hedge_no_answer(text: str, value: bool | None) -> None:
    assert parse_boolean(text, free=True) is value
    assert parse_boolean(text) is None  # where the question states its format (yes or no), a sentence is no answer


def test_the_free_readings_are_only_for_questions_that_state_no_format(asked: dict[str, Scenario]) -> None:
    meds = asked["natural-neva-10"].answer
    assert meds.free and all(s.answer.free for s in asked.values())
    stated = meds.model_copy(update={"free": False})
    for sentence in ("She is taking metformin and Humulin.", "They are: metformin; Humulin."):
        assert all(c.passed for c in grade_answer(meds, sentence))
        assert not any(c.passed for c in grade_answer(stated, sentence))
    assert all(c.passed for c in grade_answer(stated, "metformin; Humulin"))  # the aliases hold either way
    nothing = asked["natural-neva-33"].answer
    assert not any(c.passed for c in grade_answer(nothing.model_copy(update={"free": False}),
                                                  "There is no TSH result in her chart."))
