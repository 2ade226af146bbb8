"""The one FHIR id validator (medagent/fhir/ids.py), in-process (the mutation target's fast tests): the R4
pattern, no id made only of dots (``.`` and ``..`` are path segments a URL resolver removes), references,
and the patient a record is about."""

from __future__ import annotations

import pytest

from medagent.fhir.errors import FhirClientError
from medagent.fhir.ids import (
    InvalidFhirId,
    check_fhir_id,
    check_resource_type,
    is_fhir_id,
    patient_of,
    split_reference,
)

DOT_IDS = [".", "..", "...", "%2e", "%2E%2E", "a/b", "a b", "", "x" * 65, "\u00e9", "a?b", "a#b", "abc\n", None, 5]
GOOD_IDS = ["a", "ba18818d-faef-44cd-9744-b12d8973d402", "a.b", ".a", "a..", "-", "A-Za-z0-9", "x" * 64]


@pytest.mark.parametrize("value", DOT_IDS)
def test_the_validator_refuses_dot_segments_and_off_pattern_ids(value: str) -> None:
    assert not is_fhir_id(value)
    with pytest.raises(InvalidFhirId, match="medication_request: .* is not a FHIR id"):
        check_fhir_id(value, "medication_request")


@pytest.mark.parametrize("value", GOOD_IDS)
def test_the_validator_keeps_every_r4_id(value: str) -> None:
    assert check_fhir_id(value) == value


def test_references_and_the_patient_of_a_record() -> None:
    assert split_reference("Observation/abc/_history/2") == ("Observation", "abc")
    for bad in ("Observation/.", "Observation/..", "observation/abc", "Observation", "/abc"):
        with pytest.raises(InvalidFhirId, match="reason_reference"):
            split_reference(bad, "reason_reference")
    assert patient_of({"resourceType": "MedicationRequest", "subject": {"reference": "Patient/p1"}}) == "p1"
    assert patient_of({"resourceType": "Coverage", "beneficiary": {"reference": "http://h/fhir/Patient/p2/_history/1"}}) == "p2"
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}) is None
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "Patient/.."}}) is None
    assert patient_of({"resourceType": "Patient", "id": "p3"}) == "p3"
    assert patient_of({"resourceType": "Organization", "id": "o1"}) is None
    assert patient_of({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p4"}}) == "p4"
    assert patient_of({"resourceType": "Observation", "subject": {"display": "no reference"}}) is None


def test_resource_types_and_the_error_kinds() -> None:
    assert check_resource_type("Observation") == "Observation"
    for bad in ("observation", "O", "Observation/x", "Obs ervation", "", "..", None):
        with pytest.raises(InvalidFhirId, match="resource type"):
            check_resource_type(bad)
    error = InvalidFhirId("x")
    assert isinstance(error, FhirClientError) and isinstance(error, ValueError)  # a client error, a pydantic error
    with pytest.raises(InvalidFhirId, match="^'\\.\\.' is not a FHIR id"):
        check_fhir_id("..")  # without an argument name (pydantic names it)


def test_the_messages_name_the_argument_the_value_and_the_rule() -> None:
    long = "x" * 100
    with pytest.raises(InvalidFhirId) as refused:
        check_fhir_id(long + "/", "patient")
    assert str(refused.value) == (f"patient: {'x' * 80!r} is not a FHIR id (1-64 letters, digits, '-' or '.', "
                                  "not only dots)")
    with pytest.raises(InvalidFhirId) as refused:
        check_resource_type("o" * 90, "kind")
    assert str(refused.value) == f"kind: {'o' * 80!r} is not a FHIR resource type (e.g. Observation)"
    with pytest.raises(InvalidFhirId) as refused:
        split_reference("Observation", "reference")
    assert str(refused.value) == "reference: 'Observation' is not a reference 'Type/id'"
    with pytest.raises(InvalidFhirId) as refused:
        split_reference("observation/abc", "reference")
    assert str(refused.value) == "reference: 'observation/abc' is not a reference 'Type/id' (e.g. Observation/abc)"
    with pytest.raises(InvalidFhirId) as refused:
        split_reference("Observation/" + "y" * 90)
    assert str(refused.value) == (f"{('Observation/' + 'y' * 90)[:80]!r}: {'y' * 80!r} is not a FHIR id (1-64 "
                                  "letters, digits, '-' or '.', not only dots)")


def test_the_patient_of_odd_records_is_none() -> None:
    assert patient_of({"resourceType": "Patient", "id": ".."}) is None
    assert patient_of({"resourceType": "Observation", "subject": "Patient/p1"}) is None  # not a Reference
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "Patient/p1/"}}) == "p1"
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "/Patient/p1"}}) == "p1"
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "Patient"}}) is None


def test_the_default_argument_names_and_long_values_are_cut_at_80() -> None:
    """Mutants that survived tools/mutation.sh: the default argument name of check_resource_type, the cut of a
    long value, a reference with a second '/', a Patient id ending in 'X'."""
    with pytest.raises(InvalidFhirId, match="^resource type: 'observation' is not"):
        check_resource_type("observation")
    long = "z" * 100
    for value, expected in ((long, f"{'z' * 80!r} is not a reference 'Type/id'"),
                            ("o" + long, f"{('o' + long)[:80]!r} is not a reference 'Type/id' (e.g. Observation/abc)")):
        with pytest.raises(InvalidFhirId) as refused:
            split_reference(value if value == long else value + "/x")
        assert str(refused.value).startswith(expected), str(refused.value)
    with pytest.raises(InvalidFhirId) as refused:
        split_reference("Observation/a/b")  # the type is the first segment; 'a/b' is not an id
    assert str(refused.value) == "'Observation/a/b': 'a/b' is not a FHIR id (1-64 letters, digits, '-' or '.', not only dots)"
    assert patient_of({"resourceType": "Observation", "subject": {"reference": "Patient/ABCX"}}) == "ABCX"
