"""Free answers (scenarios/free_answers.py): every sentence of the convention is graded exactly as its terse answer
by the graders (right stays right, wrong stays wrong), and the frames people write around a value are read."""

from __future__ import annotations

import pytest

from medagent.scenarios.answers import grade_answer
from medagent.scenarios.expect import boolean, names, on_date
from medagent.scenarios.free_answers import ANSWER_KINDS, sentence_answer, value_span
from medagent.scenarios.models import ExpectedAnswer, Tolerance

A1C = ExpectedAnswer(type="number", value=6.1, unit="%", tolerance=Tolerance(abs=0.1))
AGE = ExpectedAnswer(type="number", value=54, unit="years", unit_factors={"yr": 1.0})
NO_A1C = ExpectedAnswer(type="number", value=None, unit="%")
MEDS = names(["Lisinopril 10 MG Oral Tablet", "Metformin hydrochloride 500 MG Oral Tablet"], "medication")
MRN = names(["0a1b2c3d-0000-4000-8000-000000000001"], "identifier")


def free(expected: ExpectedAnswer) -> ExpectedAnswer:
    """The expected answer of a question that states no format (its answer is a free sentence)."""
    return expected.model_copy(update={"free": True})

# (kind, expected answer, a right terse answer, a wrong terse answer)
CASES = [
    ("yes_no", boolean(True), "yes", "no"),
    ("yes_no", boolean(False), "no", "yes"),
    ("date", on_date("2019-05-01"), "2019-05-01", "2019-05-02"),
    ("date", on_date(None), "none", "2019-05-01"),
    ("value", A1C, "6.1 %", "7.4 %"),
    ("value", A1C, "6.14 %", "6.1 mg/dL"),
    ("value", NO_A1C, "none", "6.1 %"),
    ("age", AGE, "54", "53"),
    ("list", MEDS, "Lisinopril 10 MG Oral Tablet; Metformin hydrochloride 500 MG Oral Tablet",
     "Lisinopril 10 MG Oral Tablet"),
    ("list", names([], "medication"), "none", "Lisinopril 10 MG Oral Tablet"),
    ("person", names(["Jane Doe"], "person"), "Jane Doe", "John Roe"),
    ("mrn", MRN, "0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"),
    ("mrn", names([], "identifier"), "Patient not found", "0a1b2c3d-0000-4000-8000-000000000001"),
]


@pytest.mark.parametrize(("kind", "expected", "right", "wrong"), CASES)
def test_a_sentence_grades_as_its_terse_answer(kind: str, expected: ExpectedAnswer, right: str, wrong: str) -> None:
    for terse, passes in ((right, True), (wrong, False)):
        assert all(c.passed for c in grade_answer(expected, terse)) is passes, terse
        assert all(c.passed for c in grade_answer(free(expected), terse)) is passes, terse
        sentence = sentence_answer(kind, terse)
        assert sentence != terse
        assert all(c.passed for c in grade_answer(free(expected), sentence)) is passes, sentence


def test_every_kind_has_a_sentence() -> None:
    assert {kind for kind, *_ in CASES} | {"done"} == set(ANSWER_KINDS)
    assert sentence_answer("done", "done") == "Done."
    with pytest.raises(ValueError, match="unknown answer kind"):
        sentence_answer("colour", "red")


@pytest.mark.parametrize(("text", "value"), [
    ("They are: A; B.", "A; B"),
    ("The active medications are: Lisinopril 10 MG Oral Tablet; Aspirin 81 MG.", "Lisinopril 10 MG Oral Tablet; Aspirin 81 MG"),
    ("Her current medications are Lisinopril 10 MG Oral Tablet and nothing else", "Lisinopril 10 MG Oral Tablet and nothing else"),
    ("It was prescribed by Dr. Jane Doe.", "Dr. Jane Doe"),
    ("The prescriber was Jane Doe.", "Jane Doe"),
    ("Ordered by Jane Doe", "Jane Doe"),
    ("The MRN is 0a1b-22", "0a1b-22"),
    ("Jane Doe", "Jane Doe"),
    ("6.25 MG: twice daily", "6.25 MG: twice daily"),  # digits before the colon: not a lead-in, nothing eaten
])
def test_the_value_span_drops_the_frame(text: str, value: str) -> None:
    assert value_span(text) == value


def test_free_person_and_list_answers_are_read_but_stay_exact() -> None:
    person = free(names(["Jane Doe"], "person"))
    assert all(c.passed for c in grade_answer(person, "The prescriber was Dr. Jane Doe."))
    assert not any(c.passed for c in grade_answer(person, "The prescriber was Dr. Jane Roe."))
    meds = free(MEDS)
    assert not any(c.passed for c in grade_answer(meds, "They are: Lisinopril 10 MG Oral Tablet; Aspirin 81 MG."))
    assert all(c.passed for c in grade_answer(meds, "Her medications are: Lisinopril 10 MG Oral Tablet, "
                                                    "Metformin hydrochloride 500 MG Oral Tablet."))


def test_where_the_format_is_stated_a_sentence_around_the_value_does_not_pass() -> None:
    assert not any(c.passed for c in grade_answer(MRN, sentence_answer("mrn", "0a1b2c3d-0000-4000-8000-000000000001")))
    assert not any(c.passed for c in grade_answer(MEDS, "They are: Lisinopril 10 MG Oral Tablet; "
                                                        "Metformin hydrochloride 500 MG Oral Tablet."))
