"""SMART fixtures: a real authorization server (oidc-provider) and the embedded FHIR server protected by it
(``--smart-issuer``), on a copy of the loaded Synthea database; the clients registered there; keys on disk.

Expected patients and resources come from the packaged Synthea bundles, never from the servers under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from medagent.data import iter_bundles
from medagent.fhir.auth.backend_services import BackendServicesConfig, BackendServicesToken
from medagent.fhir.server.process import EmbeddedServer, free_port
from medagent.fhir.server.serve import access_log_path
from tests.agent.conftest import PATIENT
from tests.auth.authorization_server import AuthorizationServer, install_oidc_provider
from tests.conftest import copy_db

APP = "medagent-smart-app"  # the public SMART app (medagent serve): PKCE, refresh tokens
APP_SHORT = "medagent-smart-app-short"  # the same app with 3-second access tokens (refresh)
BACKEND_RS = "medagent-backend-rs384"  # backend services with an RSA key (PEM), RS384
BACKEND_ES = "medagent-backend-es384"  # backend services with an EC P-384 key (JWK), ES384
BACKEND_SHORT = "medagent-backend-short"  # RSA, 3-second access tokens (renewal, expiry)
SHORT_TTL_S = 3
LAUNCH_A = "launch-for-patient-a"  # an EHR launch context: PATIENT has the chart open
LAUNCH_WITHOUT_PATIENT = "launch-without-patient"  # an EHR launch context that names no patient


def other_patient() -> str:
    """A second patient of the packaged data (patient B of the compartment tests)."""
    for _, bundle in iter_bundles():
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient" and resource["id"] != PATIENT:
                return str(resource["id"])
    raise LookupError("the packaged data has one patient only")


PATIENT_B = other_patient()


@dataclass(frozen=True)
class SmartWorld:
    """The running authorization server and protected FHIR server, and what the tests registered there."""

    issuer: str
    fhir_url: str
    other_audience: str  # an audience the authorization server issues tokens for: another FHIR server
    serve_port: int  # the port medagent serve listens on in the launch tests (its redirect URI is registered)
    rsa_key: Path
    ec_key: Path
    stranger_key: Path  # an RSA key nobody registered
    access_log: Path

    @property
    def serve_url(self) -> str:
        return f"http://127.0.0.1:{self.serve_port}"

    def backend(self, client_id: str = BACKEND_RS, *, scopes: str = "system/*.rs", key: Path | None = None,
                token_url: str | None = None) -> BackendServicesToken:
        """A backend-services token source for a registered client (the token URL found by SMART discovery)."""
        key_file = key or (self.ec_key if client_id == BACKEND_ES else self.rsa_key)
        return BackendServicesToken(BackendServicesConfig(client_id=client_id, key_file=key_file, scopes=scopes,
                                                          fhir_url=self.fhir_url, token_url=token_url))

    def admin_headers(self) -> dict[str, str]:
        """Authorization for the operator's calls ($diff, $reset): a system/*.cruds backend token (requested
        without an event loop, so tests driving Chromium's sync API can call it too)."""
        token_url = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=30).json()["token_endpoint"]
        source = self.backend(scopes="system/*.cruds", token_url=token_url)
        answer = httpx.post(token_url, timeout=30, data={
            "grant_type": "client_credentials", "scope": "system/*.cruds", "client_assertion": source.client_assertion(
                token_url), "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
        return {"Authorization": f"Bearer {answer.raise_for_status().json()['access_token']}"}

    def changes(self) -> list[dict[str, Any]]:
        """What the protected server says changed since its snapshot (its own $diff)."""
        answer = httpx.get(f"{self.fhir_url}/$diff", headers=self.admin_headers(), timeout=30)
        return list(answer.raise_for_status().json()["changes"])

    def statuses(self) -> list[int]:
        """The status of every request in the protected server's access log, in order."""
        import json

        return [json.loads(line)["status"] for line in self.access_log.read_text().splitlines() if line]


def _write_keys(folder: Path) -> tuple[Path, Path, Path]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = folder / "backend-rs384.pem"
    pem.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    ec_jwk = folder / "backend-es384.jwk.json"
    ec_jwk.write_text(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1())))
    stranger = folder / "stranger.pem"
    stranger.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pem, ec_jwk, stranger


def registered_jwks(key: Path) -> dict[str, Any]:
    """The public JWKS an operator registers, printed by the README's command (``medagent fhir jwks``)."""
    import json

    from typer.testing import CliRunner

    from medagent.cli import app

    printed = CliRunner().invoke(app, ["fhir", "jwks", "--key-file", str(key)])
    assert printed.exit_code == 0, printed.output
    jwks: dict[str, Any] = json.loads(printed.stdout)
    return jwks


def provider_config(port: int, fhir_url: str, other_audience: str, serve_port: int, rsa_key: Path,
                    ec_key: Path) -> dict[str, Any]:
    """The authorization server's registrations (see oidc_provider/provider.mjs for what each field does)."""
    redirect = f"http://127.0.0.1:{serve_port}/launch/callback"
    app = {"token_endpoint_auth_method": "none", "redirect_uris": [redirect], "response_types": ["code"],
           "grant_types": ["authorization_code", "refresh_token"]}

    def backend(client_id: str, key: Path, alg: str) -> dict[str, Any]:
        return {"client_id": client_id, "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": alg, "jwks": registered_jwks(key),
                "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": []}

    return {
        "port": port, "issuer": f"http://127.0.0.1:{port}",
        "resources": {fhir_url: {}, other_audience: {}}, "default_resource": fhir_url,
        "clients": [{"client_id": APP, **app}, {"client_id": APP_SHORT, **app},
                    backend(BACKEND_RS, rsa_key, "RS384"), backend(BACKEND_ES, ec_key, "ES384"),
                    backend(BACKEND_SHORT, rsa_key, "RS384")],
        "access_token_ttl": {APP_SHORT: SHORT_TTL_S, BACKEND_SHORT: SHORT_TTL_S},
        "launches": {LAUNCH_A: {"patient": PATIENT}, LAUNCH_WITHOUT_PATIENT: {}},
        "standalone_patient": PATIENT_B,
        "users": {"dr-lee": "Practitioner/dr-lee"},
    }


@pytest.fixture(scope="session")
def smart_world(request: pytest.FixtureRequest, synthea_db: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmartWorld]:
    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("medagent-auth") if cache is not None else tmp_path_factory.mktemp("npm")
    folder = install_oidc_provider(Path(cache_dir))
    work = tmp_path_factory.mktemp("smart")
    rsa_key, ec_key, stranger = _write_keys(work)
    provider_port, fhir_port, serve_port = free_port(), free_port(), free_port()
    fhir_url, other_audience = f"http://127.0.0.1:{fhir_port}", f"http://127.0.0.1:{free_port()}"
    config = provider_config(provider_port, fhir_url, other_audience, serve_port, rsa_key, ec_key)
    db = copy_db(synthea_db, work / "protected")
    with AuthorizationServer(folder, config, work / "oidc-provider.log") as provider, \
            EmbeddedServer(db, allow_reset=True, port=fhir_port,
                           extra_args=["--smart-issuer", provider.issuer, "--smart-leeway", "0"]):
        yield SmartWorld(issuer=provider.issuer, fhir_url=fhir_url, other_audience=other_audience,
                         serve_port=serve_port, rsa_key=rsa_key, ec_key=ec_key, stranger_key=stranger,
                         access_log=access_log_path(db))


@pytest.fixture
def protected_fhir(smart_world: SmartWorld) -> Iterator[SmartWorld]:
    """For tests that may write: the protected server is reset to its loaded snapshot afterwards."""
    yield smart_world
    httpx.post(f"{smart_world.fhir_url}/$reset", headers=smart_world.admin_headers(), timeout=30).raise_for_status()


def launch_token(world: SmartWorld, scopes: str, *, launch: str | None = LAUNCH_A, client_id: str = APP) -> Any:
    """A finished SMART launch (the library's own protocol code) after a user signs in and consents on the
    authorization server's pages over plain HTTP: its token source, patient, fhirUser and scopes."""
    from medagent.fhir.auth.app_launch import begin_launch, complete_launch
    from tests.auth.authorization_server import query_of, sign_in_and_consent

    callback = f"{world.serve_url}/launch/callback"
    pending = asyncio.run(begin_launch(iss=world.fhir_url, client_id=client_id, redirect_uri=callback,
                                       scopes=scopes, launch=launch))
    with httpx.Client(timeout=30) as http:
        back = query_of(sign_in_and_consent(http, pending.authorize_url, stop_at=callback))
    assert back["state"] == pending.state
    return asyncio.run(complete_launch(pending, back["code"]))
