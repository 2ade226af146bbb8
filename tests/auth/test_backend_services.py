"""SMART Backend Services against a real authorization server (oidc-provider): the client_credentials grant with
an RS384 or ES384 signed assertion, discovery, caching, renewal before expiry and after a 401, and the settings
that configure it for every command; each refusal a clear error."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest

from medagent.config import Settings
from medagent.fhir.auth.tokens import AuthorizationError, IssuedToken, SmartBearerAuth
from medagent.fhir.client import FhirClient
from tests.agent.conftest import PATIENT
from tests.auth.conftest import BACKEND_ES, BACKEND_RS, BACKEND_SHORT, SHORT_TTL_S, SmartWorld
from tests.serve.conftest import bundle_resources


def observations_in_bundle(patient: str) -> int:
    return sum(1 for r in bundle_resources(patient) if r["resourceType"] == "Observation")


async def read_chart(world: SmartWorld, auth: httpx.Auth) -> tuple[str, int]:
    async with FhirClient(world.fhir_url, auth=auth) as client:
        patient = await client.read_json("Patient", PATIENT)
        return patient["id"], await client.count("Observation", {"patient": PATIENT})


@pytest.mark.parametrize("client_id", [BACKEND_RS, BACKEND_ES])
def test_backend_token_discovered_cached_and_accepted(smart_world: SmartWorld, client_id: str) -> None:
    source = smart_world.backend(client_id)  # no token URL given: found in the FHIR server's SMART configuration
    assert asyncio.run(read_chart(smart_world, SmartBearerAuth(source))) == (PATIENT, observations_in_bundle(PATIENT))
    issuer = httpx.get(f"{smart_world.issuer}/.well-known/openid-configuration", timeout=30).json()
    assert asyncio.run(source.token_url()) == issuer["token_endpoint"]
    assert source.obtained == 1  # three requests, one token
    assert source.key.algorithm == ("ES384" if client_id == BACKEND_ES else "RS384")
    assert source.issued is not None and source.issued.response.scope == "system/*.rs"


def test_token_is_renewed_before_it_expires(smart_world: SmartWorld) -> None:
    source = smart_world.backend(BACKEND_SHORT)
    statuses_before = len(smart_world.statuses())

    async def twice() -> list[str]:
        async with FhirClient(smart_world.fhir_url, auth=SmartBearerAuth(source)) as client:
            await client.read_json("Patient", PATIENT)
            first = source.issued.response.access_token if source.issued else ""
            await asyncio.sleep(SHORT_TTL_S * 0.9 + 0.1)  # inside the renewal margin, before the expiry
            await client.read_json("Patient", PATIENT)
            return [first, source.issued.response.access_token if source.issued else ""]

    first, second = asyncio.run(twice())
    assert first != second and source.obtained == 2
    assert set(smart_world.statuses()[statuses_before:]) == {200}  # never sent an expired token (no 401)


def test_a_refused_token_is_renewed_once_and_the_request_retried(smart_world: SmartWorld) -> None:
    expired = asyncio.run(smart_world.backend(BACKEND_SHORT).access_token())
    time.sleep(SHORT_TTL_S + 1)
    source = smart_world.backend(BACKEND_RS)
    stale = asyncio.run(smart_world.backend(BACKEND_SHORT).obtain())
    # the source believes an expired token is fresh (a clock that lied): the server's 401 makes it get another
    source.issued = IssuedToken(stale.model_copy(update={"access_token": expired, "expires_in": 3600}), time.monotonic())
    statuses_before = len(smart_world.statuses())
    assert asyncio.run(read_chart(smart_world, SmartBearerAuth(source)))[0] == PATIENT
    statuses = smart_world.statuses()[statuses_before:]
    assert statuses[0] == 401 and statuses.count(401) == 1 and statuses[-1] == 200  # refused once, then served
    assert source.obtained == 1


def test_an_unregistered_key_gets_no_token(smart_world: SmartWorld) -> None:
    source = smart_world.backend(BACKEND_RS, key=smart_world.stranger_key)
    with pytest.raises(AuthorizationError) as refused:
        asyncio.run(source.access_token())
    message = str(refused.value)
    assert "invalid_client" in message and BACKEND_RS in message and "\n" not in message


def test_settings_configure_backend_services_for_the_client(smart_world: SmartWorld) -> None:
    settings = Settings(fhir_url=smart_world.fhir_url, fhir_client_id=BACKEND_ES,  # type: ignore[call-arg]
                        fhir_key_file=smart_world.ec_key)

    async def read() -> str:
        async with FhirClient.from_settings(settings) as client:
            return str((await client.read_json("Patient", PATIENT))["id"])

    assert asyncio.run(read()) == PATIENT


def medagent_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDAGENT_FHIR")}
    return subprocess.run([sys.executable, "-m", "medagent", *args], capture_output=True, text=True, timeout=300,
                          check=False, env={**clean, "COLUMNS": "400", **env})  # wide enough that rich does not wrap the error


def test_the_cli_reads_a_protected_server_and_names_a_bad_key_file(smart_world: SmartWorld, tmp_path) -> None:
    env = {"MEDAGENT_FHIR_URL": smart_world.fhir_url, "MEDAGENT_FHIR_CLIENT_ID": BACKEND_RS,
           "MEDAGENT_FHIR_KEY_FILE": str(smart_world.rsa_key)}
    done = medagent_cli("fhir", "info", env=env)
    assert done.returncode == 0, done.stderr
    assert "Observation" in done.stdout and "FHIR 4.0.1" in done.stdout
    missing = tmp_path / "no-such-key.pem"
    bad = medagent_cli("fhir", "info", env={**env, "MEDAGENT_FHIR_KEY_FILE": str(missing)})
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: signing key file") and "no-such-key.pem" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    anonymous = medagent_cli("fhir", "info", env={"MEDAGENT_FHIR_URL": smart_world.fhir_url})
    assert anonymous.returncode == 2 and "HTTP 401" in anonymous.stderr
