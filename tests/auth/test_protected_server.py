"""The embedded FHIR server as a SMART protected resource server, with tokens from a real authorization server
(oidc-provider): a forged token, a wrong audience, an expired token, scopes that do not cover the call, and the
patient compartment of patient/ scopes — each refused with a 401 or 403 OperationOutcome and nothing written
(the server's own $diff, read with an operator token, says what changed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from medagent.fhir.auth.tokens import AuthorizationError, request_token
from tests.agent.conftest import PATIENT
from tests.auth.conftest import (
    BACKEND_RS,
    BACKEND_SHORT,
    LAUNCH_WITHOUT_PATIENT,
    PATIENT_B,
    SHORT_TTL_S,
    SmartWorld,
    launch_token,
)
from tests.serve.conftest import bundle_resources


def observation_of(patient: str) -> dict[str, Any]:
    """One Observation of a patient, from the packaged bundle (ground truth)."""
    return next(r for r in bundle_resources(patient) if r["resourceType"] == "Observation")


def new_weight(patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2020-01-01T09:00:00+00:00",
            "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def system_token(world: SmartWorld, scopes: str, client_id: str = BACKEND_RS) -> str:
    return asyncio.run(world.backend(client_id, scopes=scopes).access_token())


def refused(response: httpx.Response, status: int, *words: str) -> str:
    """Assert a refusal: the status, an OperationOutcome whose diagnostics hold ``words``; its diagnostics."""
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = str(outcome["issue"][0]["diagnostics"])
    for word in words:
        assert word in diagnostics, diagnostics
    return diagnostics


def test_no_token_is_a_401_challenge_while_metadata_and_discovery_stay_open(smart_world: SmartWorld) -> None:
    response = httpx.get(f"{smart_world.fhir_url}/Patient/{PATIENT}", timeout=30)
    refused(response, 401, "needs an access token")
    assert response.headers["www-authenticate"].startswith("Bearer realm=")
    issuer = httpx.get(f"{smart_world.issuer}/.well-known/openid-configuration", timeout=30).json()
    smart = httpx.get(f"{smart_world.fhir_url}/.well-known/smart-configuration", timeout=30).json()
    assert (smart["issuer"], smart["token_endpoint"], smart["authorization_endpoint"], smart["jwks_uri"]) == (
        issuer["issuer"], issuer["token_endpoint"], issuer["authorization_endpoint"], issuer["jwks_uri"])
    assert "S256" in smart["code_challenge_methods_supported"] and "permission-v2" in smart["capabilities"]
    security = httpx.get(f"{smart_world.fhir_url}/metadata", timeout=30).json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {"authorize": issuer["authorization_endpoint"], "token": issuer["token_endpoint"]}


def test_forged_and_altered_tokens_are_refused_and_nothing_is_written(protected_fhir: SmartWorld) -> None:
    world = protected_fhir
    real = system_token(world, "system/*.cruds")
    header, claims = jwt.get_unverified_header(real), jwt.decode(real, options={"verify_signature": False})
    stranger = serialization.load_pem_private_key(world.stranger_key.read_bytes(), password=None)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": header["kid"], "typ": header["typ"]})
    head, _, signature = real.split(".")
    altered_claims = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(  # type: ignore[attr-defined]
        {**claims, "exp": claims["exp"] + 86400}).encode()).decode()
    altered = f"{head}.{altered_claims}.{signature}"
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token, words in ((forged, "signature does not verify"), (altered, "signature does not verify"),
                         (unsigned, "algorithm 'none' is not accepted"), ("not-a-jwt", "not a JWT")):
        read = httpx.get(f"{world.fhir_url}/Patient/{PATIENT}", headers=bearer(token), timeout=30)
        refused(read, 401, words)
        assert 'error="invalid_token"' in read.headers["www-authenticate"]
        write = httpx.post(f"{world.fhir_url}/Observation", json=new_weight(PATIENT), timeout=30,
                           headers={**bearer(token), "Content-Type": "application/fhir+json"})
        refused(write, 401, words)
    assert world.changes() == []


def test_a_token_for_another_audience_is_refused(smart_world: SmartWorld) -> None:
    source = smart_world.backend(BACKEND_RS)

    async def token_for_other_server() -> str:
        url = await source.token_url()
        answer = await request_token(url, {
            "grant_type": "client_credentials", "scope": "system/*.rs", "resource": smart_world.other_audience,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": source.client_assertion(url)}, purpose="test")
        return answer.access_token

    token = asyncio.run(token_for_other_server())
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == smart_world.other_audience
    response = httpx.get(f"{smart_world.fhir_url}/Patient/{PATIENT}", headers=bearer(token), timeout=30)
    refused(response, 401, "not meant for this server")


def test_an_expired_token_is_refused(smart_world: SmartWorld) -> None:
    token = system_token(smart_world, "system/*.rs", BACKEND_SHORT)
    assert httpx.get(f"{smart_world.fhir_url}/Patient/{PATIENT}", headers=bearer(token), timeout=30).status_code == 200
    time.sleep(SHORT_TTL_S + 1)
    response = httpx.get(f"{smart_world.fhir_url}/Patient/{PATIENT}", headers=bearer(token), timeout=30)
    refused(response, 401, "expired")
    assert response.json()["issue"][0]["code"] == "expired"


def test_scopes_that_do_not_cover_the_call_are_a_403_and_nothing_is_written(protected_fhir: SmartWorld) -> None:
    world = protected_fhir
    token = system_token(world, "system/Observation.rs")
    searched = httpx.get(f"{world.fhir_url}/Observation", params={"patient": PATIENT, "_count": "5"},
                         headers=bearer(token), timeout=30)
    assert searched.status_code == 200 and searched.json()["entry"]
    read = httpx.get(f"{world.fhir_url}/Patient/{PATIENT}", headers=bearer(token), timeout=30)
    refused(read, 403, "do not allow read Patient")
    assert 'error="insufficient_scope"' in read.headers["www-authenticate"]
    create = httpx.post(f"{world.fhir_url}/Observation", json=new_weight(PATIENT), timeout=30,
                        headers={**bearer(token), "Content-Type": "application/fhir+json"})
    refused(create, 403, "do not allow create Observation")
    delete = httpx.delete(f"{world.fhir_url}/Observation/{observation_of(PATIENT)['id']}", headers=bearer(token),
                          timeout=30)
    refused(delete, 403, "do not allow delete Observation")
    included = httpx.get(f"{world.fhir_url}/Observation", headers=bearer(token), timeout=30,
                         params={"patient": PATIENT, "_include": "Observation:patient", "_count": "2"})
    refused(included, 403, "the answer holds Patient resources")
    operator = httpx.get(f"{world.fhir_url}/$diff", headers=bearer(token), timeout=30)
    refused(operator, 403, "system/*.cruds")
    assert world.changes() == []


def test_a_patient_scope_reads_only_that_patients_data(smart_world: SmartWorld) -> None:
    launch = launch_token(smart_world, "launch openid fhirUser patient/Observation.rs")
    assert launch.patient == PATIENT and launch.fhir_user == "Practitioner/dr-lee"
    token = asyncio.run(launch.token.access_token())
    assert jwt.decode(token, options={"verify_signature": False})["patient"] == PATIENT
    url, headers = smart_world.fhir_url, bearer(token)
    own = httpx.get(f"{url}/Observation", params={"patient": PATIENT, "_summary": "count"}, headers=headers, timeout=30)
    assert own.status_code == 200
    assert own.json()["total"] == sum(1 for r in bundle_resources(PATIENT) if r["resourceType"] == "Observation")
    refused(httpx.get(f"{url}/Observation", params={"patient": PATIENT_B}, headers=headers, timeout=30),
            403, f"add patient={PATIENT}")
    refused(httpx.get(f"{url}/Observation", params={"code": "29463-7"}, headers=headers, timeout=30),
            403, "must be limited to the patient in context")
    mine, theirs = observation_of(PATIENT), observation_of(PATIENT_B)
    assert httpx.get(f"{url}/Observation/{mine['id']}", headers=headers, timeout=30).json()["id"] == mine["id"]
    refused(httpx.get(f"{url}/Observation/{theirs['id']}", headers=headers, timeout=30),
            403, f"Patient/{PATIENT_B}", "another patient")
    refused(httpx.get(f"{url}/Observation/{theirs['id']}/_history", headers=headers, timeout=30), 403, "another patient")
    refused(httpx.get(f"{url}/Patient/{PATIENT}", headers=headers, timeout=30), 403, "do not allow read Patient")
    refused(httpx.get(f"{url}/Observation/_history", headers=headers, timeout=30), 403, "spans patients")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{mine['id']}"}},
        {"request": {"method": "GET", "url": f"Observation/{theirs['id']}"}}]}
    refused(httpx.post(url, json=batch, headers={**headers, "Content-Type": "application/fhir+json"}, timeout=30),
            403, "another patient")


def test_a_patient_scope_writes_only_that_patients_data(protected_fhir: SmartWorld) -> None:
    world = protected_fhir
    token = asyncio.run(launch_token(world, "launch patient/*.cruds").token.access_token())
    url, headers = world.fhir_url, {**bearer(token), "Content-Type": "application/fhir+json"}
    theirs = observation_of(PATIENT_B)
    refused(httpx.post(f"{url}/Observation", json=new_weight(PATIENT_B), headers=headers, timeout=30),
            403, f"refers to Patient/{PATIENT_B}")
    refused(httpx.put(f"{url}/Observation/{theirs['id']}", json={**new_weight(PATIENT), "id": theirs["id"]},
                      headers=headers, timeout=30), 403, f"Observation/{theirs['id']} is not the patient in context's")
    refused(httpx.delete(f"{url}/Observation/{theirs['id']}", headers=headers, timeout=30), 403, "not the patient")
    mine = observation_of(PATIENT)
    move = [{"op": "replace", "path": "/subject/reference", "value": f"Patient/{PATIENT_B}"}]
    refused(httpx.patch(f"{url}/Observation/{mine['id']}", json=move, timeout=30,
                        headers={**headers, "Content-Type": "application/json-patch+json"}), 403, "would move")
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_weight(PATIENT), "request": {"method": "POST", "url": "Observation"}},
        {"resource": new_weight(PATIENT_B), "request": {"method": "POST", "url": "Observation"}}]}
    refused(httpx.post(url, json=transaction, headers=headers, timeout=30), 403, f"refers to Patient/{PATIENT_B}")
    assert world.changes() == []  # every refusal came before its handler: nothing was written
    created = httpx.post(f"{url}/Observation", json=new_weight(PATIENT), headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    [change] = world.changes()
    assert (change["resourceType"], change["action"], change["after"]["subject"]["reference"]) == (
        "Observation", "create", f"Patient/{PATIENT}")


def test_patient_scopes_without_a_patient_context_allow_nothing(smart_world: SmartWorld) -> None:
    """A token with patient/ scopes but no launch scope carries no patient claim: the server cannot tell whose
    data it may show, so it shows none."""
    launch = launch_token(smart_world, "patient/Observation.rs", launch=None)
    token = asyncio.run(launch.token.access_token())
    assert launch.patient is None and "patient" not in jwt.decode(token, options={"verify_signature": False})
    response = httpx.get(f"{smart_world.fhir_url}/Observation", params={"patient": PATIENT}, headers=bearer(token),
                         timeout=30)
    refused(response, 403, "need a patient context")


def test_a_launch_that_asked_for_a_patient_and_got_none_is_refused(smart_world: SmartWorld) -> None:
    with pytest.raises(AuthorizationError, match="granted no patient context"):
        launch_token(smart_world, "launch patient/Observation.rs", launch=LAUNCH_WITHOUT_PATIENT)
