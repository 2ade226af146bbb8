"""The FHIR client against the real embedded server, plus retry/link-safety rules on a named test double."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from fhir.resources.R4B.observation import Observation

from medagent.data import iter_bundles
from medagent.fhir import (
    FhirClient,
    FhirConflict,
    FhirInvalid,
    FhirNotFound,
    FhirServerError,
    FhirTransportError,
    FhirUnsafeLinkError,
)

HBA1C = "4548-4"


def _first_patient_with(code: str) -> tuple[str, list[tuple[str, str]]]:
    """(patient id, [(effectiveDateTime, observation id)]) straight from the bundle files."""
    for _, bundle in iter_bundles():
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
        rows = [
            (r["effectiveDateTime"], r["id"])
            for r in resources
            if r["resourceType"] == "Observation" and any(c["code"] == code for c in r["code"]["coding"])
        ]
        if len(rows) >= 5:
            return patient, rows
    raise AssertionError(f"no patient with 5+ observations of {code}")


async def test_search_follows_next_links_lazily_and_in_order(fhir_url: str) -> None:
    patient, expected = _first_patient_with(HBA1C)
    expected_ids = [oid for _, oid in sorted(expected, reverse=True)]
    async with FhirClient(fhir_url) as client:
        params = {"patient": patient, "code": f"http://loinc.org|{HBA1C}", "_sort": "-date", "_count": 2}
        got = [o["id"] async for o in client.search_json("Observation", params)]
        assert got == expected_ids
        typed = [o async for o in client.search("Observation", params, limit=3)]
        assert all(isinstance(o, Observation) for o in typed)
        assert [o.id for o in typed] == expected_ids[:3]


async def test_count_matches_bundles(fhir_url: str) -> None:
    expected = Counter(
        e["resource"]["resourceType"] for _, b in iter_bundles() for e in b["entry"]
    )
    async with FhirClient(fhir_url) as client:
        assert await client.count("Patient") == expected["Patient"]
        assert await client.count("Observation") == expected["Observation"]


async def test_errors_are_typed_with_server_message(fhir_url: str) -> None:
    async with FhirClient(fhir_url) as client:
        with pytest.raises(FhirNotFound, match="Observation/does-not-exist"):
            await client.read_json("Observation", "does-not-exist")
        with pytest.raises(FhirInvalid) as invalid:
            await client.create_json({"resourceType": "Observation", "status": "final"})
        assert "Observation.code" in invalid.value.expressions
        with pytest.raises(FhirInvalid, match="unknown search prefix"):
            await client.search_page("Observation", {"date": "zz2019"})


async def test_create_update_conditional_create_and_diff(clean_fhir: str) -> None:
    patient, _ = _first_patient_with(HBA1C)
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "identifier": [{"system": "urn:test", "value": "hr-1"}],
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    async with FhirClient(clean_fhir) as client:
        created, was_created = await client.create_or_find_json(observation, if_none_exist="identifier=urn:test|hr-1")
        again, created_again = await client.create_or_find_json(observation, if_none_exist="identifier=urn:test|hr-1")
        assert again["id"] == created["id"]
        assert (was_created, created_again) == (True, False)   # 201, then the existing match (200)
        assert (await client.create_json(observation, if_none_exist="identifier=urn:test|hr-1"))["id"] == created["id"]
        assert created["meta"]["versionId"] == "1"
        updated = await client.update_json({**created, "status": "amended"}, if_match='W/"1"')
        assert updated["meta"]["versionId"] == "2"
        with pytest.raises(FhirConflict):
            await client.update_json({**created, "status": "corrected"}, if_match='W/"1"')
        changes = await client.diff()
        assert [(c["resourceType"], c["action"]) for c in changes] == [("Observation", "create")]
        assert changes[0]["after"]["status"] == "amended"
        assert await client.reset() == 1
        assert await client.diff() == []


class FlakyTransport(httpx.AsyncBaseTransport):
    """Test double: answers with scripted statuses, so retry rules can be checked exactly."""

    def __init__(self, statuses: list[int], body: bytes = b'{"resourceType":"Bundle","type":"searchset"}') -> None:
        self.statuses = statuses
        self.body = body
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.method)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 0:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status, content=self.body if status == 200 else b"{}", request=request)


async def test_safe_requests_retry_on_429_5xx_and_connection_errors() -> None:
    transport = FlakyTransport([429, 503, 0, 200])
    async with FhirClient("http://fhir.test", transport=transport, backoff=0.001) as client:
        await client.search_page("Patient")
    assert transport.calls == ["GET"] * 4


async def test_writes_are_never_retried() -> None:
    transport = FlakyTransport([503, 200])
    async with FhirClient("http://fhir.test", transport=transport, backoff=0.001) as client:
        with pytest.raises(FhirServerError):
            await client.create_json({"resourceType": "Patient"})
    assert transport.calls == ["POST"]


async def test_retries_give_up_with_transport_error() -> None:
    transport = FlakyTransport([0, 0, 0])
    async with FhirClient("http://fhir.test", transport=transport, retries=2, backoff=0.001) as client:
        with pytest.raises(FhirTransportError):
            await client.read_json("Patient", "x")
    assert len(transport.calls) == 3


async def test_next_link_outside_base_url_is_refused() -> None:
    page = b'{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"http://evil.test/fhir/Patient?page=2"}]}'
    transport = FlakyTransport([200], body=page)
    async with FhirClient("http://fhir.test/fhir", transport=transport) as client:
        with pytest.raises(FhirUnsafeLinkError):
            _ = [p async for p in client.search_json("Patient")]


async def test_bearer_token_is_sent() -> None:
    seen: list[str] = []

    async def provider() -> str:
        return "t0ken"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200, json={"resourceType": "CapabilityStatement"})

    async with FhirClient("http://fhir.test", token=provider, transport=httpx.MockTransport(handler)) as client:
        await client.capabilities()
    assert seen == ["Bearer t0ken"]


async def test_patch_history_conditional_update_and_delete(clean_fhir: str) -> None:
    identifier = "urn:medagent:client-test|cond-1"
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:medagent:client-test", "value": "cond-1"}],
               "name": [{"family": "Zqclient"}], "gender": "unknown"}
    async with FhirClient(clean_fhir) as client:
        created = await client.update_where_json(patient, {"identifier": identifier})
        assert created["meta"]["versionId"] == "1"
        same = await client.update_where_json({**patient, "gender": "female"}, {"identifier": identifier})
        assert same["id"] == created["id"] and same["meta"]["versionId"] == "2"
        patched = await client.patch_json("Patient", created["id"], [{"op": "replace", "path": "/gender",
                                                                       "value": "male"}], if_match='W/"2"')
        assert patched["gender"] == "male" and patched["meta"]["versionId"] == "3"
        with pytest.raises(FhirConflict):
            await client.patch_json("Patient", created["id"], [{"op": "remove", "path": "/gender"}], if_match='W/"1"')
        methods = [e["request"]["method"] async for e in client.history_json("Patient", created["id"], count=1)]
        assert methods == ["PUT", "PUT", "POST"]
        outcome = await client.validate_json({**patient, "birthDate": "not a date"})
        assert any(i["severity"] == "error" and "birthDate" in i.get("diagnostics", "") for i in outcome["issue"])
        await client.delete_where("Patient", {"identifier": identifier})
        with pytest.raises(FhirNotFound):
            await client.read_json("Patient", "no-such-patient-4548")
        assert await client.count("Patient", {"identifier": identifier}) == 0
