"""Issue 25, item 3: ``.`` and ``..`` are not ids. The one validator (``medagent.fhir.ids``) refuses them (and
everything off the R4 pattern) at the FHIR client and the embedded server; the tools, MCP, the service and
the CLI have their own tests (tests/tools/test_tools_dot_ids.py, tests/serve/test_serve_dot_ids.py,
tests/bench/test_cli_errors.py).

The reproduction: the client resolved ``Observation/.`` as ``Observation/`` (a search of every patient's
Observations) and ``Patient/..`` as the server root."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirClientError
from medagent.fhir.ids import (
    InvalidFhirId,
    check_fhir_id,
    is_fhir_id,
    patient_of,
    split_reference,
)

DOT_IDS = [".", "..", "...", "%2e", "%2E%2E", "a/b", "a b", "", "x" * 65, "é", "a?b", "a#b", "abc\n"]
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


@pytest.mark.parametrize("bad", [".", "..", "%2e"])
async def test_the_client_sends_no_dot_segment(fhir_url: str, bad: str) -> None:
    async with FhirClient(fhir_url) as client:
        calls = [client.read_json("Observation", bad), client.resolve(f"Patient/{bad}"),
                 client.update_json({"resourceType": "Observation", "id": bad, "status": "final"}),
                 client.delete("Observation", bad), client.patch_json("Observation", bad, []),
                 client.read_json("observation/../Patient", "x")]
        for pending in calls:
            with pytest.raises(InvalidFhirId) as refused:
                await pending
            assert isinstance(refused.value, FhirClientError)


@pytest.mark.parametrize("path", ["/Observation/%2e", "/Observation/%2E%2E", "/Patient/%2e/_history",
                                  "/Observation/%2e/_history/1"])
def test_the_server_refuses_a_dot_id_in_the_path(fhir_url: str, path: str) -> None:
    """Sent raw (http.client does not resolve dot segments): 400 naming the id, never a search."""
    parts = urlsplit(fhir_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path.rstrip("/") + path, headers={"Accept": "application/fhir+json"})
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    assert response.status == 400, (path, response.status, body[:300])
    assert '"OperationOutcome"' in body and "invalid resource id" in body and "searchset" not in body
