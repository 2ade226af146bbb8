"""Hand-made answer cases for every answer type, each with near misses that must fail."""

from __future__ import annotations

import pytest

from medagent.scenarios.answers import grade_answer, is_none_answer, parse_number
from medagent.scenarios.models import ExpectedAnswer, Tolerance


def passes(expected: ExpectedAnswer, answer: object) -> bool:
    checks = grade_answer(expected, answer)
    return bool(checks) and all(c.passed for c in checks)


# ---------- boolean ----------

YES = ExpectedAnswer(type="boolean", value=True)
NO = ExpectedAnswer(type="boolean", value=False)


@pytest.mark.parametrize("answer", ["yes", "Yes.", "YES, the patient has hypertension.", "true", "True", True,
                                    {"answer": True}, {"answer": "yes"}, "  yes  "])
def test_boolean_yes_accepted(answer: object) -> None:
    assert passes(YES, answer)


@pytest.mark.parametrize("answer", ["no", "No.", "false", False, "No, there is no such diagnosis.",
                                    "There is no record of it."])
def test_boolean_no_accepted(answer: object) -> None:
    assert passes(NO, answer)


@pytest.mark.parametrize("answer", ["no", "", None, "maybe", "unknown", "yes and no", "I cannot tell", "n/a", {}])
def test_boolean_near_misses_fail(answer: object) -> None:
    assert not passes(YES, answer)


def test_boolean_no_is_not_yes() -> None:
    assert not passes(NO, "yes")
    assert not passes(NO, "")


# ---------- date ----------

DAY = ExpectedAnswer(type="date", value="2019-05-01")


@pytest.mark.parametrize("answer", ["2019-05-01", "2019-05-01T02:43:19+00:00", "The vaccine was given on 2019-05-01.",
                                    "May 1, 2019", "1 May 2019", "May 1st, 2019", {"value": "2019-05-01"}])
def test_date_accepted(answer: object) -> None:
    assert passes(DAY, answer)


@pytest.mark.parametrize("answer", ["2019-05-02", "2019-04-30", "2018-05-01", "2019-05", "2019", "",
                                    "2019-05-01 or 2019-06-01", "none", "05/01/2019"])
def test_date_near_misses_fail(answer: object) -> None:
    assert not passes(DAY, answer)


def test_date_tolerance_in_days() -> None:
    loose = ExpectedAnswer(type="date", value="2019-05-01", tolerance=Tolerance(days=1))
    assert passes(loose, "2019-05-02")
    assert not passes(loose, "2019-05-03")


def test_date_none_must_be_said() -> None:
    absent = ExpectedAnswer(type="date", value=None)
    assert passes(absent, "none")
    assert passes(absent, "No influenza vaccination on record.")
    assert not passes(absent, "")
    assert not passes(absent, None)
    assert not passes(absent, "2019-05-01")


# ---------- names ----------

MEDS = ExpectedAnswer(type="names", value=["Simvistatin 10 MG", "Hydrochlorothiazide 25 MG"], names_kind="medication")


@pytest.mark.parametrize("answer", [
    "Simvistatin 10 MG; Hydrochlorothiazide 25 MG",
    "hydrochlorothiazide 25 mg;  simvistatin 10 mg",
    "Simvastatin 10 MG; Hydrochlorothiazide 25 MG",  # Synthea's own typo forgiven
    "Simvistatin 10 MG, Hydrochlorothiazide 25 MG",
    "- Simvistatin 10 MG\n- Hydrochlorothiazide 25 MG",
    '["Simvistatin 10 MG", "Hydrochlorothiazide 25 MG"]',
    ["Simvistatin 10 MG", "Hydrochlorothiazide 25 MG", "Simvistatin 10 MG"],
])
def test_names_accepted(answer: object) -> None:
    assert passes(MEDS, answer)


@pytest.mark.parametrize("answer", [
    "Simvistatin 10 MG",  # one missing
    "Simvistatin 10 MG; Hydrochlorothiazide 25 MG; Amlodipine 5 MG Oral Tablet",  # one extra
    "Simvistatin 20 MG; Hydrochlorothiazide 25 MG",  # wrong strength
    "Simvistatin 10 MG; Hydrochlorothiazide 6.25 MG",  # a near-identical product
    "Atorvastatin 10 MG; Hydrochlorothiazide 25 MG",
    "none", "", None,
])
def test_names_near_misses_fail(answer: object) -> None:
    assert not passes(MEDS, answer)


def test_names_empty_set_needs_explicit_none() -> None:
    empty = ExpectedAnswer(type="names", value=[], names_kind="medication")
    assert passes(empty, "none")
    assert passes(empty, [])
    assert passes(empty, "No medications.")
    assert not passes(empty, "")
    assert not passes(empty, "Simvistatin 10 MG")


PERSON = ExpectedAnswer(type="names", value=["Elroy Brakus"], names_kind="person")


@pytest.mark.parametrize("answer", ["Elroy Brakus", "Dr. Elroy Brakus", "Brakus, Elroy", "ELROY BRAKUS"])
def test_person_accepted(answer: str) -> None:
    assert passes(PERSON, answer)


@pytest.mark.parametrize("answer", ["Elroy", "Brakus", "Elroy Brakuss", "Elroy Brakus; Ana Smith", "Leroy Brakus"])
def test_person_near_misses_fail(answer: str) -> None:
    assert not passes(PERSON, answer)


def test_identifier_is_exact() -> None:
    mrn = ExpectedAnswer(type="names", value=["44ec4447-9e2c-4eb9-bd4f-0bdb416b806e"], names_kind="identifier")
    assert passes(mrn, "44ec4447-9e2c-4eb9-bd4f-0bdb416b806e")
    assert passes(mrn, "The MRN is: 44ec4447-9e2c-4eb9-bd4f-0bdb416b806e") is False  # format says MRN only
    assert not passes(mrn, "44ec4447-9e2c-4eb9-bd4f-0bdb416b806f")
    assert not passes(mrn, "Patient not found")
    not_found = ExpectedAnswer(type="names", value=[], names_kind="identifier")
    assert passes(not_found, "Patient not found")
    assert not passes(not_found, "44ec4447-9e2c-4eb9-bd4f-0bdb416b806e")


# ---------- number ----------

GLUCOSE = ExpectedAnswer(type="number", value=83.2339, unit="mg/dL", tolerance=Tolerance(abs=1.0),
                         unit_factors={"mmol/L": 18.0182})


@pytest.mark.parametrize("answer", ["83", "83 mg/dL", "83.23 mg/dL", "84", "The glucose was 83 mg/dL.", 83.2339,
                                    {"value": 83}, "4.6 mmol/L", "4.62 mmol/L",
                                    "On 2019-05-01 the glucose was 83 mg/dL"])
def test_number_accepted(answer: object) -> None:
    assert passes(GLUCOSE, answer)


@pytest.mark.parametrize("answer", ["85", "81", "8.3", "832", "83 mg", "83 mmol/L", "4.8 mmol/L", "none", "",
                                    "2019-05-01", "high"])
def test_number_near_misses_fail(answer: object) -> None:
    assert not passes(GLUCOSE, answer)


def test_number_relative_tolerance() -> None:
    weight = ExpectedAnswer(type="number", value=80.0, unit="kg", tolerance=Tolerance(rel=0.01),
                            unit_factors={"lb": 0.45359237})
    assert passes(weight, "80.7 kg")
    assert not passes(weight, "81.0 kg")
    assert passes(weight, "176.4 lb")
    assert not passes(weight, "80 g")


def test_number_none() -> None:
    absent = ExpectedAnswer(type="number", value=None, unit="mg/dL")
    for answer in ("none", "None.", "-1", "not available", "No measurement in the last 24 hours."):
        assert passes(absent, answer), answer
    for answer in ("", None, "0", "83 mg/dL"):
        assert not passes(absent, answer), answer


def test_number_age_in_years() -> None:
    age = ExpectedAnswer(type="number", value=39.0, unit="years", unit_factors={"yrs": 1.0, "year": 1.0})
    assert passes(age, "39")
    assert passes(age, "39 years")
    assert not passes(age, "40")
    assert not passes(age, "38 years")


def test_unit_word_not_taken_for_inches() -> None:
    assert parse_number("4.5 in the last test", ["in", "mmol/L"]) == (4.5, None)
    assert parse_number("70 in", ["in"]) == (70.0, "in")


# ---------- record (several parts) ----------

HBA1C = ExpectedAnswer(type="record", fields={
    "value": ExpectedAnswer(type="number", value=6.1, unit="%", tolerance=Tolerance(abs=0.1)),
    "date": ExpectedAnswer(type="date", value="2019-05-01"),
})


@pytest.mark.parametrize("answer", ['{"value": 6.1, "date": "2019-05-01"}', {"value": 6.1, "date": "2019-05-01"},
                                    "value: 6.1 %\ndate: 2019-05-01", "6.1 % on 2019-05-01",
                                    'Here it is: {"value": 6.12, "date": "2019-05-01T10:00:00+00:00"}'])
def test_record_accepted(answer: object) -> None:
    assert passes(HBA1C, answer)


@pytest.mark.parametrize("answer", ['{"value": 6.3, "date": "2019-05-01"}', '{"value": 6.1, "date": "2018-05-01"}',
                                    '{"value": 6.1}', "none", "", "6.1"])
def test_record_near_misses_fail(answer: object) -> None:
    assert not passes(HBA1C, answer)


def test_record_all_none() -> None:
    absent = ExpectedAnswer(type="record", fields={"value": ExpectedAnswer(type="number", value=None, unit="%"),
                                                   "date": ExpectedAnswer(type="date", value=None)})
    assert passes(absent, "none")
    assert passes(absent, '{"value": null, "date": null}')
    assert not passes(absent, "")
    assert not passes(absent, "{}")
    assert not passes(absent, '{"value": 6.1, "date": "2019-05-01"}')


def test_record_with_name_lists() -> None:
    reconciliation = ExpectedAnswer(type="record", fields={
        "not_on_chart": ExpectedAnswer(type="names", value=["Galantamine 4 MG Oral Tablet"], names_kind="medication"),
        "not_reported": ExpectedAnswer(type="names", value=[], names_kind="medication"),
    })
    assert passes(reconciliation, '{"not_on_chart": ["Galantamine 4 MG Oral Tablet"], "not_reported": []}')
    assert passes(reconciliation, "not on chart: Galantamine 4 MG Oral Tablet\nnot reported: none")
    assert not passes(reconciliation, '{"not_on_chart": [], "not_reported": ["Galantamine 4 MG Oral Tablet"]}')
    assert not passes(reconciliation, '{"not_on_chart": ["Galantamine 4 MG Oral Tablet"]}')


# ---------- text-contains and none ----------

def test_text_contains() -> None:
    expected = ExpectedAnswer(type="text-contains", value=["increasing", "HbA1c"])
    assert passes(expected, "The HbA1c is increasing over the last three results.")
    assert passes(expected, "hba1c: INCREASING")
    assert not passes(expected, "The HbA1c is stable.")
    assert not passes(expected, "")


def test_none_type_is_not_graded() -> None:
    assert grade_answer(ExpectedAnswer(type="none"), "anything") == []


def test_none_tokens() -> None:
    assert is_none_answer("none") and is_none_answer("Patient not found") and is_none_answer("N/A")
    assert not is_none_answer("") and not is_none_answer("3.1 mmol/L") and not is_none_answer("no")
