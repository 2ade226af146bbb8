"""Issue 25, item 3: ``.`` and ``..`` are not ids. The one validator (``medagent.fhir.ids``, unit tests in
tests/fhir/test_fhir_ids.py) refuses them at the FHIR client and the embedded server; the tools, MCP, the
service and the CLI have their own tests (tests/tools/test_tools_dot_ids.py,
tests/serve/test_serve_dot_ids.py, tests/bench/test_cli_errors.py).

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
)

DOT_IDS = [".", "..", "%2e"]


@pytest.mark.parametrize("bad", DOT_IDS)
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
