"""Grader cases aimed at realistic one-line bugs (each block says which): hand-made boundary cases from
the grading rules in scenarios/README.md, not values read back from the grader.

Also the reports themselves: a failed check must say what was expected, what was read and why, because
that is what a person reads in the run report; those fields are asserted exactly here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from medagent.scenarios.answers import (
    _common_units,
    find_dates,
    fold,
    grade_answer,
    is_none_answer,
    name_matches,
    normalise_unit,
    parse_boolean,
    parse_date,
    parse_number,
    split_names,
    strip_dates,
)
from medagent.scenarios.grading import diff_changes, grade
from medagent.scenarios.models import (
    Check,
    CodingSpec,
    ExpectedAnswer,
    FieldRule,
    QuantityOption,
    QuantityRule,
    Scenario,
    Tolerance,
    WindowRule,
    WriteSpec,
)
from medagent.scenarios.writes import (
    grade_writes,
    relevant_changes,
    resolve,
    strings_at,
)

PATIENT = "pat-1"
NOW = datetime(2020, 5, 1, 10, 15, tzinfo=UTC)


def passes(expected: ExpectedAnswer, answer: object) -> bool:
    checks = grade_answer(expected, answer)
    return bool(checks) and all(c.passed for c in checks)


def only(expected: ExpectedAnswer, answer: object) -> Check:
    checks = grade_answer(expected, answer)
    assert len(checks) == 1
    return checks[0]


# ================= numbers: precision of a value written in another unit =================
# bug: dropping the widening for converted units (answers.grade_number)

CHOLESTEROL = ExpectedAnswer(type="number", value=200.0, unit="mg/dL", tolerance=Tolerance(abs=1.0),
                             unit_factors={"mmol/L": 38.67})


def test_a_converted_value_is_as_precise_as_its_digits() -> None:
    # 200 mg/dL is 5.17 mmol/L; "5.2 mmol/L" is right to the one decimal written (5.2 * 38.67 = 201.1)
    assert passes(CHOLESTEROL, "5.2 mmol/L")
    assert passes(CHOLESTEROL, "total cholesterol 5.2 mmol/L on 2020-04-30")
    # ... but a wrong first decimal is wrong: 5.3 mmol/L = 205.0 mg/dL, outside 201.1 +- 1.9
    assert not passes(CHOLESTEROL, "5.3 mmol/L")
    assert not passes(CHOLESTEROL, "5.1 mmol/L")      # 197.2
    # more digits written, less slack: 5.14 mmol/L = 198.8 mg/dL, and 0.005 * 38.67 < the 1.0 tolerance
    assert passes(CHOLESTEROL, "5.17 mmol/L")
    assert not passes(CHOLESTEROL, "5.14 mmol/L")
    # a whole number in mmol/L is a coarse answer: 5 mmol/L = 193.4 mg/dL, within 0.5 * 38.67
    assert passes(CHOLESTEROL, "5 mmol/L")
    assert not passes(CHOLESTEROL, "4 mmol/L")


def test_the_widening_scales_with_the_factor_not_against_it() -> None:
    # hemoglobin 13.5 g/dL with tolerance 0.1; in g/L (factor 0.1) "135 g/L" is exact and "137 g/L" is 0.2 off:
    # 0.5 * 1 * 0.1 = 0.05 of slack, never 0.5 / 0.1 = 5
    hemoglobin = ExpectedAnswer(type="number", value=13.5, unit="g/dL", tolerance=Tolerance(abs=0.1),
                                unit_factors={"g/L": 0.1})
    assert passes(hemoglobin, "135 g/L")
    assert not passes(hemoglobin, "137 g/L")
    assert not passes(hemoglobin, "140 g/L")


def test_a_unit_spelled_differently_with_factor_one_gets_no_widening() -> None:
    temperature = ExpectedAnswer(type="number", value=37.2, unit="Cel", tolerance=Tolerance(abs=0.1),
                                 unit_factors={"C": 1.0})
    assert passes(temperature, "37.2 C")
    assert not passes(temperature, "37 C")  # 0.2 off; a factor of 1 converts nothing, so no extra slack


def test_tolerance_edge_is_inclusive() -> None:
    potassium = ExpectedAnswer(type="number", value=3.5, unit="mmol/L", tolerance=Tolerance(abs=0.25))
    assert passes(potassium, "3.75") and passes(potassium, "3.25")   # exactly at the edge (binary-exact)
    assert not passes(potassium, "3.76")


# ================= names: near-miss drug names =================
# bug: lowering the letter-similarity ratio from 0.9 (answers.name_matches)

TABLET = ExpectedAnswer(type="names", value=["Amoxicillin 250 MG Oral Tablet"], names_kind="medication")


@pytest.mark.parametrize("answer", ["Amoxicillin 250 MG Oral Capsule", "Amoxicillin 250 MG Chewable Tablet",
                                    "Amoxicillin 500 MG Oral Tablet", "Amoxicillin 250 MG Oral Suspension"])
def test_other_dose_forms_and_strengths_do_not_match(answer: str) -> None:
    assert not passes(TABLET, answer)


def test_a_different_drug_with_a_similar_name_does_not_match() -> None:
    # Ampicillin and Amoxicillin are different drugs two edits apart (letter ratio 0.92)
    assert not passes(TABLET, "Ampicillin 250 MG Oral Tablet")
    assert not name_matches("Ampicillin", "Amoxicillin", "medication")


@pytest.mark.parametrize("answer", ["amoxicillin 250 mg oral tablet", "Amoxicilin 250 MG Oral Tablet",
                                    "Amoxicillin 250 MG Oral Tablets"])
def test_case_and_one_letter_typos_match(answer: str) -> None:
    assert passes(TABLET, answer)


def test_similarity_of_exactly_nine_tenths_matches() -> None:
    # "penicillin" vs "penicillon": 9 of 10 letters in order, ratio 2*9/20 = 0.9 exactly: the rule is ">= 0.9"
    assert name_matches("Penicillon", "Penicillin", "medication")
    assert not name_matches("Penicillan V", "Penicillin G", "medication")


def test_aliases_are_used_for_every_expected_name() -> None:
    expected = ExpectedAnswer(type="names", value=["Hydrochlorothiazide 25 MG Oral Tablet", "Lisinopril 10 MG"],
                              names_kind="medication", aliases={"Hydrochlorothiazide 25 MG Oral Tablet": ["HCTZ 25 MG"]})
    assert passes(expected, "HCTZ 25 MG; Lisinopril 10 MG")
    assert passes(expected, "Lisinopril 10 MG; HCTZ 25 MG; HCTZ 25 MG")  # a repeated alias is a duplicate
    assert not passes(expected, "HCTZ 25 MG")
    assert not passes(expected, "HCTZ 12.5 MG; Lisinopril 10 MG")


def test_a_duplicate_does_not_hide_a_wrong_name() -> None:
    meds = ExpectedAnswer(type="names", value=["Lisinopril 10 MG", "Metformin 500 MG"], names_kind="medication")
    assert passes(meds, "Lisinopril 10 MG; lisinopril 10 mg; Metformin 500 MG")
    assert not passes(meds, "Lisinopril 10 MG; lisinopril 10 mg; Metformin 500 MG; Warfarin 5 MG")


def test_person_and_identifier_kinds() -> None:
    assert name_matches("Dr. Elroy Brakus", "Elroy Brakus", "person")
    assert not name_matches("Elroy Brakusz", "Elroy Brakus", "person")     # people: no fuzzy letters
    assert not name_matches("Dr.", "Dr.", "person") is False                # identical text always matches
    assert not name_matches("44ec4447-9e2c", "44ec4447-9e2d", "identifier")  # identifiers: exact only
    assert name_matches("44EC4447-9E2C", "44ec4447-9e2c", "identifier")


# ================= number/date/boolean/names reports =================

def test_number_reports() -> None:
    glucose = ExpectedAnswer(type="number", value=83.2, unit="mg/dL", tolerance=Tolerance(abs=1.0),
                             unit_factors={"mmol/L": 18.0182})
    assert only(glucose, "90 mg/dL") == Check(name="answer", passed=False, expected="83.2 ±1 mg/dL",
                                              got="90 mg/dL", detail="read 90 mg/dL")
    # 5 mmol/L (90.1 mg/dL) is within half a unit of the one digit written (0.5 * 18.0182 = 9.0 mg/dL) ...
    assert only(glucose, "5 mmol/L") == Check(name="answer", passed=True, expected="83.2 ±1 mg/dL", got="5 mmol/L")
    # ... 6 mmol/L (108.1 mg/dL) is not
    assert only(glucose, "6 mmol/L") == Check(name="answer", passed=False, expected="83.2 ±1 mg/dL",
                                              got="6 mmol/L", detail="read 108.109 mg/dL")
    assert only(glucose, "83 mg/dL") == Check(name="answer", passed=True, expected="83.2 ±1 mg/dL", got="83 mg/dL")
    assert only(glucose, "high") == Check(name="answer", passed=False, expected="83.2 ±1 mg/dL", got="high",
                                          detail="no number")
    assert only(glucose, "83 g/L") == Check(name="answer", passed=False, expected="83.2 ±1 mg/dL", got="83 g/L",
                                            detail="unit 'g/L' not accepted")
    absent = ExpectedAnswer(type="number", value=None, unit="mg/dL")
    assert only(absent, "none") == Check(name="answer", passed=True, expected="none", got="none")
    assert only(absent, "83") == Check(name="answer", passed=False, expected="none", got="83")


def test_number_report_spread_and_unitless() -> None:
    relative = ExpectedAnswer(type="number", value=80.0, unit="kg", tolerance=Tolerance(rel=0.01))
    assert only(relative, "90").expected == "80 ±0.8 kg"
    both = ExpectedAnswer(type="number", value=200.0, unit="mg/dL", tolerance=Tolerance(abs=1.0, rel=0.01))
    assert only(both, "0").expected == "200 ±2 mg/dL"
    exact = ExpectedAnswer(type="number", value=3.0)
    assert only(exact, "4") == Check(name="answer", passed=False, expected="3", got="4", detail="read 4")
    assert only(exact, "3") == Check(name="answer", passed=True, expected="3", got="3")


def test_number_in_the_expected_unit_and_the_none_answer() -> None:
    bmi = ExpectedAnswer(type="number", value=27.3, unit="kg/m2", tolerance=Tolerance(abs=0.1))
    assert passes(bmi, "27.3 kg/m2") and passes(bmi, "27.3 kg/m^2")
    assert not passes(bmi, "none")  # a "none" answer to a question that has a value
    assert not passes(bmi, "27.3 mmHg")


def test_date_reports() -> None:
    day = ExpectedAnswer(type="date", value="2019-05-01T10:00:00+00:00")  # a datetime truth is graded as its day
    assert only(day, "2019-05-01") == Check(name="answer", passed=True, expected="2019-05-01", got="2019-05-01")
    assert only(day, "May 2, 2019") == Check(name="answer", passed=False, expected="2019-05-01", got="May 2, 2019")
    assert only(day, "soon") == Check(name="answer", passed=False, expected="2019-05-01", got="soon",
                                      detail="no single date")
    absent = ExpectedAnswer(type="date", value=None)
    assert only(absent, "not recorded") == Check(name="answer", passed=True, expected="none", got="not recorded")
    assert only(absent, "2019-05-01") == Check(name="answer", passed=False, expected="none", got="2019-05-01")
    assert not passes(absent, None)
    within = ExpectedAnswer(type="date", value="2019-05-01", tolerance=Tolerance(days=1))
    assert passes(within, "2019-05-02") and passes(within, "2019-04-30") and not passes(within, "2019-05-03")


def test_boolean_reports() -> None:
    yes = ExpectedAnswer(type="boolean", value=True)
    no = ExpectedAnswer(type="boolean", value=False)
    assert only(yes, "yes") == Check(name="answer", passed=True, expected="yes", got="yes")
    assert only(no, "yes") == Check(name="answer", passed=False, expected="no", got="yes")
    assert only(yes, "perhaps") == Check(name="answer", passed=False, expected="yes", got="perhaps",
                                         detail="not a yes/no answer")


def test_names_reports() -> None:
    meds = ExpectedAnswer(type="names", value=["Lisinopril 10 MG"], names_kind="medication")
    assert only(meds, "Lisinopril 10 MG") == Check(name="answer", passed=True, expected=["Lisinopril 10 MG"],
                                                   got="Lisinopril 10 MG")
    assert only(meds, "") == Check(name="answer", passed=False, expected=["Lisinopril 10 MG"], got="",
                                   detail="empty answer")
    assert only(meds, "none") == Check(name="answer", passed=False, expected=["Lisinopril 10 MG"], got="none")
    empty = ExpectedAnswer(type="names", value=[], names_kind="medication")
    assert only(empty, "none") == Check(name="answer", passed=True, expected="none", got="none")
    assert only(empty, []) == Check(name="answer", passed=True, expected="none", got=[])
    assert only(empty, "Lisinopril 10 MG") == Check(name="answer", passed=False, expected="none",
                                                    got="Lisinopril 10 MG")
    assert only(empty, None) == Check(name="answer", passed=False, expected="none", got=None, detail="empty answer")


def test_text_contains_reports() -> None:
    trend = ExpectedAnswer(type="text-contains", value=["increasing", "HbA1c"])
    assert only(trend, "HbA1c is stable") == Check(name="answer", passed=False, expected=["increasing", "HbA1c"],
                                                   got="HbA1c is stable", detail="missing: ['increasing']")
    assert only(trend, "HbA1c increasing") == Check(name="answer", passed=True, expected=["increasing", "HbA1c"],
                                                    got="HbA1c increasing")
    single = ExpectedAnswer(type="text-contains", value="rising")
    assert only(single, "it is rising") == Check(name="answer", passed=True, expected=["rising"], got="it is rising")
    assert only(single, None).detail == "missing: ['rising']"
    assert only(single, {"answer": "rising"}).passed


def test_record_reports_name_each_field() -> None:
    record = ExpectedAnswer(type="record", fields={
        "value": ExpectedAnswer(type="number", value=6.1, unit="%", tolerance=Tolerance(abs=0.1)),
        "date": ExpectedAnswer(type="date", value="2019-05-01"),
    })
    checks = grade_answer(record, '{"value": 6.1, "date": "2019-05-02"}')
    assert [(c.name, c.passed) for c in checks] == [("answer.value", True), ("answer.date", False)]
    none_checks = grade_answer(ExpectedAnswer(type="record", fields={
        "value": ExpectedAnswer(type="number", value=None), "date": ExpectedAnswer(type="date", value=None)}), "none")
    assert [(c.name, c.passed, c.got) for c in none_checks] == [("answer.value", True, "none"),
                                                                ("answer.date", True, "none")]
    nulls = grade_answer(ExpectedAnswer(type="record", fields={"value": ExpectedAnswer(type="number", value=None)}),
                         {"value": None})
    assert [(c.passed, c.got) for c in nulls] == [(True, "none")]


def test_record_text_forms() -> None:
    record = ExpectedAnswer(type="record", fields={
        "value": ExpectedAnswer(type="number", value=6.1, unit="%", tolerance=Tolerance(abs=0.1)),
        "date": ExpectedAnswer(type="date", value="2019-05-01"),
    })
    assert passes(record, "Value: 6.1 %\nDate: 2019-05-01")
    assert passes(record, "The result is below.\nvalue: 6.1 %\n\ndate: 2019-05-01")  # lines without ':' skipped
    assert passes(record, "value: 6.1 %\ndate: 2019-05-01T10:30:00+00:00")            # the first ':' splits
    assert passes(record, '{\n  "value": 6.1,\n  "date": "2019-05-01"\n}')              # JSON across lines
    assert not passes(record, "value: 6.1 %\ndate: 2019-05-01\nvalue: 7.9 %")
    assert not passes(record, "value: 6.1 %\ndate: none")
    names_record = ExpectedAnswer(type="record", fields={
        "a": ExpectedAnswer(type="names", value=["X 1 MG"], names_kind="medication"),
        "b": ExpectedAnswer(type="names", value=["Y 2 MG"], names_kind="medication")})
    assert not passes(names_record, "a: X 1 MG")  # only two (number, date) fields may share one text


# ================= parsers =================

@pytest.mark.parametrize(("answer", "value"), [
    ({"answer": "yes"}, True), ({"value": "no"}, False), ({"result": "yes"}, True), ({"verdict": "yes"}, True),
    ({"answer": "no", "value": "yes"}, False), ({"other": "yes", "more": "no"}, None),
])
def test_dict_answers_are_unwrapped(answer: dict[str, Any], value: bool | None) -> None:
    assert parse_boolean(answer) is value


@pytest.mark.parametrize(("text", "value"), [
    ("no", False), ("No, not on file", False), ("Y", True), ("n", False), ("yes, no doubt", None),
    ("no - yes", None), ("The answer is yes", True), ("The answer is no", False), ("yes yes yes no", True),
    ("it is true", True), ("negative result", False), ("no no no yes", False), ("no: well, yes", None),
])
def test_parse_boolean(text: str, value: bool | None) -> None:
    assert parse_boolean(text) is value


def test_find_dates_skips_impossible_dates_and_keeps_going() -> None:
    assert find_dates("2019-02-30 then 2019-03-01") == [datetime(2019, 3, 1).date()]
    assert find_dates("Smarch 3, 2019 and May 4, 2019") == [datetime(2019, 5, 4).date()]
    assert find_dates("Feb 30, 2019 and May 4, 2019") == [datetime(2019, 5, 4).date()]
    assert find_dates("30 Feb 2019 and 4 May 2019") == [datetime(2019, 5, 4).date()]
    assert find_dates("4 May 2019, 2019-06-01 and Jul 2, 2019") == [
        datetime(2019, 5, 4).date(), datetime(2019, 6, 1).date(), datetime(2019, 7, 2).date()]
    assert parse_date("3 Sept 2019") == datetime(2019, 9, 3).date()


def test_strip_dates_leaves_a_gap() -> None:
    assert strip_dates("on 2019-05-01: 6.1%").split() == ["on", ":", "6.1%"]
    assert strip_dates("May 1, 2019,6.1 %").split() == [",6.1", "%"]
    assert parse_number("2019-05-01T10:00:00Z:6.1 %", ["%"]) == (6.1, "%")


def test_a_value_after_a_date_is_not_taken_for_a_time() -> None:
    assert parse_number("2019-05-01 6.1 %", ["%"]) == (6.1, "%")


@pytest.mark.parametrize(("text", "expected"), [
    ("1,250 mL", (1250.0, "mL")), ("The weight was 1,234.5 g", (1234.5, "g")), ("12,5 mg", (12.0, None)),
    ("4.5 in.", (4.5, "in")), ("4.5 inches", (4.5, None)), ("80 kg/m2", (80.0, "kg/m2")),
    ("5 mg/dLx", (5.0, None)), ("5 mg/", (5.0, None)), ("7 L^2", (7.0, None)), ("7 h ago", (7.0, None)), ("7 h", (7.0, "h")),
    ("7 mg*2", (7.0, None)), ("7 mg[x]", (7.0, None)), ("3 m above", (3.0, None)),
    ("7 mmol/L" + " " * 30 + "x", (7.0, "mmol/L")),
])
def test_parse_number_units(text: str, expected: tuple[float, str | None]) -> None:
    assert parse_number(text, ["mL", "g", "in", "kg/m2", "mg/dL", "mg", "L", "h", "m", "mmol/L"]) == expected


def test_parse_number_longest_unit_first_and_word_boundaries() -> None:
    units = ["mg", "mg/dL", "10*3/uL", "mmol", "mmol/L"]
    assert parse_number("5 mg/dL", units) == (5.0, "mg/dL")
    assert parse_number("5 mmol/L", units) == (5.0, "mmol/L")
    assert parse_number("7.2 10*3/uL", units) == (7.2, "10*3/uL")
    assert parse_number(True, units) is None and parse_number(None, units) is None
    assert parse_number(5, units) == (5.0, None)


def test_split_names_readings() -> None:
    assert split_names(None) == [[]]
    assert split_names(["A", "B"]) == [["A", "B"]]
    assert split_names('["A 1 MG", "B"]') == [["A 1 MG", "B"]]
    assert split_names("[not json") == [["[not json"]]
    assert split_names("- A 1 MG\n* B\n2) C\n3. D") == [["A 1 MG", "B", "C", "D"]]
    assert split_names('"A"; `B`; \'C\'') == [["A", "B", "C"]]
    assert split_names('"A", B') == [['A", B'], ["A", "B"]]
    assert split_names("1.5 MG tablet") == [["1.5 MG tablet"]]


@pytest.mark.parametrize("text", ["None.", "none!", '"none"', "`None`", "NONE", "Null", "n/a", "N/A - not recorded",
                                  "No measurements in the last 24 hours", "not on file"])
def test_none_answers(text: str) -> None:
    assert is_none_answer(text)


@pytest.mark.parametrize("text", ["", "  ", "nonetheless 5", "the value is 5", "no, 83 mg/dL", "known",
                                  "annual", "nothing like 3"])
def test_not_none_answers(text: str) -> None:
    assert not is_none_answer(text)


def test_fold_removes_zero_width_spaces_only() -> None:
    assert fold("Hemo\u200bglobin  A1c") == "hemoglobin a1c"
    assert fold("Jos\u00e9") == "jose"


# ================= units =================

@pytest.mark.parametrize(("unit", "norm"), [
    ("mg/dL", "mg/dl"), ("µmol/L", "umol/l"), ("μmol/L", "umol/l"), ("mm[Hg]", "mmhg"), ("mm Hg", "mmhg"),
    ("MMHG", "mmhg"), ("°C", "cel"), ("degC", "cel"), ("Cel", "cel"), ("lbs", "lb"), ("kg/m^2", "kg/m2"),
    ("10*3/uL", "10*3/ul"), ("[in_i]", "in_i"), (" mL ", "ml"), ("%", "%"),
])
def test_normalise_unit(unit: str, norm: str) -> None:
    assert normalise_unit(unit) == norm


# units a clinician writes after a number, which the parser must recognise (so that a wrong unit fails
# instead of being ignored); the LOINC-table units are covered by the lab list itself
CLINICAL_UNITS = ["mg", "g", "kg", "mcg", "mEq", "mmol", "mL", "L", "h", "hours", "years", "yr", "%", "lb", "in",
                  "mg/dL", "mmol/L", "mEq/L", "g/dL", "g/L", "umol/L", "µmol/L", "mm[Hg]", "mmHg", "mL/min", "U/L",
                  "fL", "pg", "kg/m2", "cm", "m", "Cel", "°C", "°F", "degF", "ng/mL", "pg/mL", "mL/min/{1.73_m2}",
                  "10*3/uL", "x10^9/L", "lbs", "mm Hg"]


@pytest.mark.parametrize("unit", CLINICAL_UNITS)
def test_common_units_are_recognised(unit: str) -> None:
    units = _common_units()
    assert unit in units
    value, read = parse_number(f"The result: 42 {unit}.", units)  # type: ignore[misc]
    assert value == 42.0 and read is not None and normalise_unit(read) == normalise_unit(unit)


def test_common_units_try_longer_units_first() -> None:
    units = _common_units()
    lengths = [len(u) for u in units]
    assert lengths == sorted(lengths, reverse=True)
    assert units.index("mg/dL") < units.index("mg") and units.index("mmol/L") < units.index("mmol")
    same_length = [u for u in units if len(u) == 2]
    assert same_length == sorted(same_length)


# ================= writes =================

def order(resource_id: str, code: str, dose: float = 40.0, subject: str = f"Patient/{PATIENT}") -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": resource_id, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": code}]},
            "subject": {"reference": subject}, "authoredOn": "2020-05-01T10:15:00+00:00",
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mEq"}}]}]}


def create(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": resource["resourceType"], "id": resource["id"], "action": "create", "before": None,
            "after": resource}


def spec(name: str, *codes: str, **extra: Any) -> WriteSpec:
    return WriteSpec(name=name, resource_type="MedicationRequest", subject=f"Patient/{PATIENT}",
                     codes=[CodingSpec(system="http://www.nlm.nih.gov/research/umls/rxnorm", code=c) for c in codes],
                     **extra)


def scenario(*specs: WriteSpec, setup: list[dict[str, Any]] | None = None, read_only: bool = False) -> Scenario:
    return Scenario(id="w", suite="agentic", category="c", patient=PATIENT, now=NOW.isoformat(), question="...",
                    answer=ExpectedAnswer(type="none"), expected_writes=list(specs), read_only=read_only,
                    branch="no-action" if read_only else "act", setup=setup or [])


# bug: greedy matching instead of augmenting paths (writes._max_matching)

def test_competing_specs_are_matched_by_augmenting_paths() -> None:
    # slot 0 (any potassium salt) accepts both orders, slot 1 (potassium chloride) only the first:
    # edges {0: [0, 1], 1: [0]}; a greedy matcher gives change 0 to slot 0 and leaves slot 1 empty
    loose = spec("potassium salt", "KCL", "KCIT")
    strict = spec("potassium chloride", "KCL")
    verdict = grade(scenario(loose, strict), None, [create(order("o1", "KCL")), create(order("o2", "KCIT"))])
    assert verdict.passed, verdict.checks
    assert [c.got for c in verdict.checks[:2]] == ["create MedicationRequest/o2", "create MedicationRequest/o1"]


def test_a_three_slot_chain_needs_two_augmentations() -> None:
    # slot 0 takes {A, B}, slot 1 takes {A, C}... built so each later slot must push the earlier ones along
    a = spec("a", "X1", "X2")
    b = spec("b", "X1", "X3")
    c = spec("c", "X1")
    changes = [create(order("o1", "X1")), create(order("o2", "X2")), create(order("o3", "X3"))]
    verdict = grade(scenario(a, b, c), None, changes)
    assert verdict.passed, verdict.checks
    assert [ch.got for ch in verdict.checks[:3]] == ["create MedicationRequest/o2", "create MedicationRequest/o3",
                                                     "create MedicationRequest/o1"]


def test_two_orders_cannot_fill_three_slots() -> None:
    verdict = grade(scenario(spec("a", "X1"), spec("b", "X1"), spec("c", "X1")), None,
                    [create(order("o1", "X1")), create(order("o2", "X1"))])
    assert not verdict.passed and verdict.failure_cause == "wrong_write"
    assert [c.passed for c in verdict.checks] == [True, True, False, True]


# bug: a setup filter that also drops updates/deletes of fixtures (writes.relevant_changes)

FIXTURE = {"resourceType": "Observation", "id": "fixture-k", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "6298-4"}]},
           "subject": {"reference": f"Patient/{PATIENT}"}, "valueQuantity": {"value": 3.1, "unit": "mmol/L"}}


def test_changing_a_setup_fixture_is_a_write() -> None:
    edited = {**FIXTURE, "valueQuantity": {"value": 4.1, "unit": "mmol/L"}}
    update = {"resourceType": "Observation", "id": "fixture-k", "action": "update", "before": FIXTURE,
              "after": edited}
    delete = {"resourceType": "Observation", "id": "fixture-k", "action": "delete", "before": FIXTURE, "after": None}
    read_only = scenario(setup=[FIXTURE], read_only=True)
    assert grade(read_only, None, [create(FIXTURE)]).passed  # the fixture's own creation is setup, not the agent
    for change in (update, delete):
        verdict = grade(read_only, None, [create(FIXTURE), change])
        assert not verdict.passed and verdict.failure_cause == "forbidden_write"
        assert verdict.checks[0].got == [f"{change['action']} Observation/fixture-k"]
    assert [c.action for c in relevant_changes(read_only, [create(FIXTURE), update, delete])] == ["update", "delete"]


def test_creating_a_resource_with_a_fixture_id_of_another_type_is_a_write() -> None:
    other = {**order("fixture-k", "KCL")}
    read_only = scenario(setup=[FIXTURE], read_only=True)
    assert not grade(read_only, None, [create(other)]).passed


# bug: a subject suffix match without the "/" (writes.evaluate)

@pytest.mark.parametrize(("reference", "ok"), [
    (f"Patient/{PATIENT}", True),
    (f"http://localhost:8321/fhir/Patient/{PATIENT}", True),
    (f"http://localhost:8321/fhir/RelatedPatient/{PATIENT}", False),   # not a Patient reference
    (f"Patient/other-{PATIENT}", False),
    (f"Patient/{PATIENT}-2", False),
])
def test_subject_must_be_this_patient(reference: str, ok: bool) -> None:
    verdict = grade(scenario(spec("kcl", "KCL")), None, [create(order("o1", "KCL", subject=reference))])
    assert verdict.passed is ok
    if not ok:
        assert verdict.failure_cause == "wrong_write" and "subject: expected Patient/pat-1" in verdict.checks[0].detail


# write reports and the causes

def test_write_reports() -> None:
    kcl = spec("potassium chloride 40 mEq", "KCL", quantities=[QuantityRule(name="dose", options=[QuantityOption(
        path="dosageInstruction.doseAndRate.doseQuantity", value=40.0, unit="mEq")])])
    verdict = grade(scenario(kcl), None, [create(order("o1", "KCL", dose=20.0))])
    assert verdict.failure_cause == "wrong_write" and verdict.score == 0.0
    assert verdict.checks == [
        Check(name="write: potassium chloride 40 mEq", passed=False, got="create MedicationRequest/o1",
              detail="dose: expected dosageInstruction.doseAndRate.doseQuantity=40 mEq, got ['20 mEq']"),
        Check(name="no other writes", passed=False, expected=[], got=["create MedicationRequest/o1"]),
    ]
    right = grade(scenario(kcl), None, [create(order("o1", "KCL"))])
    assert right.passed and right.score == 1.0
    assert right.checks[0] == Check(name="write: potassium chloride 40 mEq", passed=True,
                                    got="create MedicationRequest/o1")
    missing = grade(scenario(kcl), None, [])
    assert missing.failure_cause == "missing_write"
    assert missing.checks[0] == Check(name="write: potassium chloride 40 mEq", passed=False, detail="no such write")
    extra = grade(scenario(kcl), None, [create(order("o1", "KCL")), create(order("o2", "KCL"))])
    assert extra.failure_cause == "forbidden_write"
    assert extra.checks[-1] == Check(name="no other writes", passed=False, expected=[],
                                     got=["create MedicationRequest/o2"])


def test_a_wrong_write_outranks_a_missing_one_and_the_best_candidate_is_reported() -> None:
    kcl = spec("kcl", "KCL", intent=["order"], status=["active"])
    mag = WriteSpec(name="magnesium", resource_type="ServiceRequest", subject=f"Patient/{PATIENT}")
    near = order("o1", "KCL")
    near["status"] = "draft"
    worse = order("o2", "KCL")
    worse["status"], worse["intent"] = "draft", "plan"
    verdict = grade(scenario(mag, kcl), None, [create(worse), create(near)])
    assert verdict.failure_cause == "wrong_write"
    by_name = {c.name: c for c in verdict.checks}
    assert by_name["write: magnesium"].detail == "no such write"
    assert by_name["write: kcl"].got == "create MedicationRequest/o1"  # the one meeting most constraints
    assert by_name["write: kcl"].detail == "status: expected ['active'], got draft"


def test_read_only_report() -> None:
    verdict = grade(scenario(read_only=True), "ok", [create(order("o1", "KCL"))])
    assert verdict.checks[0] == Check(name="no writes", passed=False, expected=[], got=["create MedicationRequest/o1"])
    assert verdict.failure_cause == "forbidden_write"
    clean = grade(scenario(read_only=True), None, [])
    assert clean.passed and clean.checks == [Check(name="no writes", passed=True, expected=[], got=[])]


def test_update_target_fields_windows_and_unchanged_paths() -> None:
    before = order("mr-9", "KCL")
    after = {**before, "status": "stopped", "note": [{"text": "Stopped: hyperkalaemia"}]}
    stop = WriteSpec(name="stop kcl", resource_type="MedicationRequest", action="update",
                     target="MedicationRequest/mr-9", status=["stopped"],
                     fields=[FieldRule(name="reason", path="note.text", any_of=["hyperkalaemia"], mode="contains")],
                     unchanged=["medicationCodeableConcept"],
                     windows=[WindowRule(name="authored", paths=["authoredOn"], not_before="2020-05-01T10:00:00+00:00",
                                         not_after="2020-05-01T11:00:00+00:00")])
    change = {"resourceType": "MedicationRequest", "id": "mr-9", "action": "update", "before": before, "after": after}
    assert grade(scenario(stop), None, [change]).passed
    wrong_target = {**change, "id": "mr-8"}
    assert not grade(scenario(stop), None, [wrong_target]).passed
    recoded = {**change, "after": {**after, "medicationCodeableConcept": {"text": "something else"}}}
    failed = grade(scenario(stop), None, [recoded])
    assert not failed.passed and "unchanged medicationCodeableConcept" in failed.checks[0].detail
    no_reason = {**change, "after": {**after, "note": [{"text": "stopped"}]}}
    assert "reason: expected ['hyperkalaemia']" in grade(scenario(stop), None, [no_reason]).checks[0].detail
    late = {**change, "after": {**after, "authoredOn": "2020-05-01T11:00:01+00:00"}}
    assert "authored: expected" in grade(scenario(stop), None, [late]).checks[0].detail
    bad_date = {**change, "after": {**after, "authoredOn": "soon"}}
    assert not grade(scenario(stop), None, [bad_date]).passed
    equals = stop.model_copy(update={"fields": [FieldRule(name="reason", path="note.text",
                                                          any_of=["STOPPED -  hyperkalaemia"])]})
    assert grade(scenario(equals), None, [change]).passed
    assert not grade(scenario(equals), None, [{**change, "after": {**after, "note": [{"text": "Stopped"}]}}]).passed


def test_quantity_options_units_and_tolerance() -> None:
    def dose_spec(**option: Any) -> WriteSpec:
        return spec("kcl", "KCL", quantities=[QuantityRule(name="dose", options=[QuantityOption(
            path="dosageInstruction.doseAndRate.doseQuantity", **option)])])

    grams = dose_spec(value=2.0, unit="g", unit_factors={"mg": 0.001}, tolerance=Tolerance(rel=0.05))
    as_mg = order("o1", "KCL")
    as_mg["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 2000, "unit": "mg"}
    assert grade(scenario(grams), None, [create(as_mg)]).passed
    near = order("o1", "KCL")
    near["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 2.09, "code": "g"}
    assert grade(scenario(grams), None, [create(near)]).passed          # within 5 %, unit given as code
    far = order("o1", "KCL")
    far["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 2.2, "unit": "g"}
    assert not grade(scenario(grams), None, [create(far)]).passed
    unitless = order("o1", "KCL")
    unitless["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 2.0}
    assert not grade(scenario(grams), None, [create(unitless)]).passed  # "2" of what?
    text_value = order("o1", "KCL")
    text_value["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": "2", "unit": "g"}
    assert not grade(scenario(grams), None, [create(text_value)]).passed
    other_unit = order("o1", "KCL")
    other_unit["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 2.0, "unit": "tablet",
                                                                            "code": "g"}
    assert grade(scenario(grams), None, [create(other_unit)]).passed   # any of the unit keys may carry it


def test_paths_filters_and_strings() -> None:
    bp = {"component": [{"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 128}},
                        {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 82}}]}
    assert resolve(bp, "component[code.coding.code=8462-4].valueQuantity.value") == [82]
    assert resolve(bp, "component.valueQuantity.value") == [128, 82]
    assert resolve(bp, "component[code.coding.code=0000-0].valueQuantity") == []
    assert strings_at({"code": {"text": "K", "coding": [{"display": "Potassium", "code": "6298-4"}]}}, "code") == [
        "K", "Potassium", "6298-4"]
    with pytest.raises(ValueError, match="bad path segment"):
        resolve(bp, "component[oops")


def test_grade_combines_answer_and_writes() -> None:
    kcl = spec("kcl", "KCL")
    with_answer = scenario(kcl).model_copy(update={"answer": ExpectedAnswer(type="number", value=3.1, unit="mmol/L",
                                                                           tolerance=Tolerance(abs=0.05))})
    right = [create(order("o1", "KCL"))]
    assert grade(with_answer, "3.1", right).passed
    wrong_answer = grade(with_answer, "4.1", right)
    assert wrong_answer.failure_cause == "wrong_answer" and wrong_answer.score == 0.6667
    both_wrong = grade(with_answer, "4.1", [])
    assert both_wrong.failure_cause == "missing_write"  # a write problem outranks a wrong answer
    assert grade(with_answer, "3.1", right).failure_cause is None
    empty = scenario(read_only=True)
    assert grade(empty, None, []).score == 1.0


def test_diff_changes_accepts_the_body_or_the_list() -> None:
    raw = [create(order("o1", "KCL"))]
    assert [c.id for c in diff_changes({"snapshot": 1, "changes": raw})] == ["o1"]
    assert [c.id for c in diff_changes(raw)] == ["o1"]
    assert diff_changes({"snapshot": 1}) == []
    parsed = diff_changes(raw)
    assert diff_changes(parsed) == parsed


def test_grade_writes_without_expected_writes_is_read_only() -> None:
    act = scenario()
    checks, cause = grade_writes(act, [create(order("o1", "KCL"))])
    assert cause == "forbidden_write" and checks[0].name == "no writes"


def test_a_write_wrong_in_every_way_reports_every_constraint() -> None:
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    stop = WriteSpec(
        name="stop kcl", resource_type="MedicationRequest", action="update", target="MedicationRequest/mr-9",
        subject=f"Patient/{PATIENT}", codes=[CodingSpec(system=rxnorm, code="KCL")], intent=["order"],
        status=["stopped"],
        quantities=[QuantityRule(name="dose", options=[QuantityOption(
            path="dosageInstruction.doseAndRate.doseQuantity", value=40.0, unit="mEq")])],
        fields=[FieldRule(name="reason", path="note.text", any_of=["hyperkalaemia"], mode="contains")],
        windows=[WindowRule(name="authored", paths=["authoredOn"], not_before="2020-05-01T10:00:00+00:00",
                            not_after="2020-05-01T11:00:00+00:00")],
        unchanged=["medicationCodeableConcept"])
    before = order("mr-8", "KCL")
    medication = {"coding": [{"system": rxnorm, "code": "NACL"}, {"system": "http://snomed.info/sct", "code": "999"}]}
    after = {**before, "subject": {"reference": "Patient/other"}, "medicationCodeableConcept": medication,
             "intent": "plan", "status": "active", "note": [{"text": "stopped"}],
             "authoredOn": "2020-05-01T12:00:00+00:00",
             "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mEq"}}]}]}
    change = {"resourceType": "MedicationRequest", "id": "mr-8", "action": "update", "before": before, "after": after}
    verdict = grade(scenario(stop), None, [change])
    assert verdict.failure_cause == "wrong_write"
    assert verdict.checks[0].got == "update MedicationRequest/mr-8"
    assert verdict.checks[0].detail == "; ".join([
        "target: expected MedicationRequest/mr-9, got MedicationRequest/mr-8",
        "subject: expected Patient/pat-1, got ['Patient/other']",
        f"code: expected ['{rxnorm}|KCL'], got ['http://snomed.info/sct|999', '{rxnorm}|NACL']",
        "intent: expected ['order'], got plan",
        "status: expected ['stopped'], got active",
        "dose: expected dosageInstruction.doseAndRate.doseQuantity=40 mEq, got ['20 mEq']",
        "reason: expected ['hyperkalaemia'], got ['stopped']",
        ("authored: expected ['2020-05-01T10:00:00+00:00', '2020-05-01T11:00:00+00:00'], "
         "got ['2020-05-01T12:00:00+00:00']"),
        (f"unchanged medicationCodeableConcept: expected [{before['medicationCodeableConcept']!r}], "
         f"got [{medication!r}]"),
    ])


def test_quantity_alternatives_report_every_value_read() -> None:
    either = spec("kcl", "KCL", quantities=[QuantityRule(name="dose", options=[
        QuantityOption(path="dosageInstruction.doseAndRate.doseQuantity", value=40.0, unit="mEq"),
        QuantityOption(path="dispenseRequest.quantity", value=40.0, unit="mEq")])])
    wrong = order("o1", "KCL", dose=20.0)
    wrong["dispenseRequest"] = {"quantity": {"value": 10, "unit": "mEq"}}
    verdict = grade(scenario(either), None, [create(wrong)])
    assert verdict.checks[0].detail == ("dose: expected dosageInstruction.doseAndRate.doseQuantity=40 mEq or "
                                        "dispenseRequest.quantity=40 mEq, got ['20 mEq', '10 mEq']")
    right_second = order("o1", "KCL", dose=20.0)
    right_second["dispenseRequest"] = {"quantity": {"value": 40, "unit": "mEq"}}
    assert grade(scenario(either), None, [create(right_second)]).passed
    mixed = order("o1", "KCL")
    mixed["dosageInstruction"] = ["not a dict", {"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mEq"}}]}]
    assert grade(scenario(either), None, [create(mixed)]).passed  # a malformed item does not stop the search
    two_units = order("o1", "KCL")
    two_units["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 40, "unit": "tablets",
                                                                           "code": "mEq"}
    assert grade(scenario(either), None, [create(two_units)]).passed


@pytest.mark.parametrize(("authored", "ok"), [
    ("2020-05-01T10:00:00+00:00", True),   # window edges are inclusive
    ("2020-05-01T11:00:00+00:00", True),
    ("2020-05-01T10:30:00+00:00", True),
    ("2020-05-01", True),                  # a day overlapping the window
    ("2020-05-01T09:59:59+00:00", False),
    ("2020-05-01T11:00:01+00:00", False),
    ("2020-04-30", False),
])
def test_time_window_edges(authored: str, ok: bool) -> None:
    timed = spec("kcl", "KCL", windows=[WindowRule(name="authored", paths=["occurrenceDateTime", "authoredOn"],
                                                   not_before="2020-05-01T10:00:00+00:00",
                                                   not_after="2020-05-01T11:00:00+00:00")])
    resource = order("o1", "KCL")
    resource["authoredOn"] = authored
    assert grade(scenario(timed), None, [create(resource)]).passed is ok


def test_a_date_only_window_covers_whole_days() -> None:
    daily = spec("kcl", "KCL", windows=[WindowRule(name="authored", paths=["authoredOn"], not_before="2020-05-01",
                                                   not_after="2020-05-02")])
    for authored, ok in (("2020-05-01T08:00:00+00:00", True), ("2020-05-02T23:00:00+00:00", True),
                         ("2020-05-03T00:00:00+00:00", False), ("2020-04-30T23:59:59+00:00", False)):
        resource = order("o1", "KCL")
        resource["authoredOn"] = authored
        assert grade(scenario(daily), None, [create(resource)]).passed is ok, authored


def test_codes_on_a_custom_path_and_the_default_paths() -> None:
    lab = WriteSpec(name="potassium", resource_type="ServiceRequest", subject=f"Patient/{PATIENT}",
                    codes=[CodingSpec(system="http://loinc.org", code="2823-3")])
    request = {"resourceType": "ServiceRequest", "id": "s1", "status": "active", "intent": "order",
               "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
               "subject": {"reference": f"Patient/{PATIENT}"}}
    assert grade(scenario(lab), None, [create(request)]).passed  # default path code.coding
    vaccine = WriteSpec(name="flu", resource_type="Immunization", subject=f"Patient/{PATIENT}", subject_path="patient.reference",
                        codes=[CodingSpec(system="http://hl7.org/fhir/sid/cvx", code="140")])
    shot = {"resourceType": "Immunization", "id": "i1", "status": "completed", "patient": {"reference": f"Patient/{PATIENT}"},
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]}}
    assert grade(scenario(vaccine), None, [create(shot)]).passed  # default path vaccineCode.coding
    custom = lab.model_copy(update={"code_path": "reasonCode.coding"})
    assert not grade(scenario(custom), None, [create(request)]).passed
    assert grade(scenario(custom), None, [create({**request, "reasonCode": [request["code"]]})]).passed


def test_split_path_keeps_filters_with_dots_and_nested_brackets_whole() -> None:
    bp = {"component": [{"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 128, "unit": "mm[Hg]"}},
                        {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 82, "unit": "mm[Hg]"}}]}
    assert resolve(bp, "component[code.coding.code=8480-6].valueQuantity.unit") == ["mm[Hg]"]
    assert resolve(bp, "component[code.coding.code=8480-6].code.coding[code=8480-6].code") == ["8480-6"]
    assert resolve({"a": {"b": 1}}, "a.b") == [1] and resolve({"a": {"b": 1}}, "a..b") == [1]
    with pytest.raises(ValueError, match=r"bad path segment '1x' in 'a\.1x'"):
        resolve({"a": 1}, "a.1x")
