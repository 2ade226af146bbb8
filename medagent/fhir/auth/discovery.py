"""Discovery: a FHIR server's ``.well-known/smart-configuration`` and an issuer's OpenID configuration."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from medagent.fhir.auth.tokens import TOKEN_TIMEOUT_S, AuthorizationError
from medagent.fhir.client import default_ssl_context


class SmartConfiguration(BaseModel):
    """The fields of SMART App Launch 2.x discovery (``{fhir base}/.well-known/smart-configuration``) this
    client uses; the rest is kept."""

    model_config = ConfigDict(extra="allow")

    issuer: str | None = None
    jwks_uri: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str
    grant_types_supported: list[str] = []
    scopes_supported: list[str] = []
    capabilities: list[str] = []
    code_challenge_methods_supported: list[str] = []
    token_endpoint_auth_methods_supported: list[str] = []
    token_endpoint_auth_signing_alg_values_supported: list[str] = []


class OpenIdConfiguration(BaseModel):
    """An issuer's ``.well-known/openid-configuration`` (what a resource server needs to check its tokens)."""

    model_config = ConfigDict(extra="allow")

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    grant_types_supported: list[str] = []
    token_endpoint_auth_methods_supported: list[str] = []
    token_endpoint_auth_signing_alg_values_supported: list[str] = []
    code_challenge_methods_supported: list[str] = []
    scopes_supported: list[str] = []


async def fetch_json(url: str, *, purpose: str) -> dict[str, Any]:
    """GET a JSON object; anything else is one :class:`AuthorizationError` line naming the URL."""
    try:
        async with httpx.AsyncClient(timeout=TOKEN_TIMEOUT_S, verify=default_ssl_context()) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise AuthorizationError(f"{purpose}: {url} could not be reached ({exc!r})") from None
    if not response.is_success:
        raise AuthorizationError(f"{purpose}: {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise AuthorizationError(f"{purpose}: {url} did not answer JSON") from None
    if not isinstance(body, dict):
        raise AuthorizationError(f"{purpose}: {url} did not answer a JSON object")
    return body


async def smart_configuration(fhir_base_url: str) -> SmartConfiguration:
    """The SMART configuration a FHIR server advertises (its authorization and token endpoints)."""
    url = f"{fhir_base_url.rstrip('/')}/.well-known/smart-configuration"
    body = await fetch_json(url, purpose="SMART discovery")
    try:
        return SmartConfiguration.model_validate(body)
    except ValidationError as exc:
        raise AuthorizationError(
            f"SMART discovery: {url} lacks {exc.errors()[0]['loc'][0]} (not a SMART configuration)"
        ) from None


async def openid_configuration(issuer: str) -> OpenIdConfiguration:
    """An issuer's OpenID Connect discovery document; its ``issuer`` must be the one asked for."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    body = await fetch_json(url, purpose="issuer discovery")
    try:
        found = OpenIdConfiguration.model_validate(body)
    except ValidationError as exc:
        raise AuthorizationError(f"issuer discovery: {url} lacks {exc.errors()[0]['loc'][0]}") from None
    if found.issuer.rstrip("/") != issuer.rstrip("/"):
        raise AuthorizationError(f"issuer discovery: {url} names issuer {found.issuer!r}, not {issuer!r}")
    return found
