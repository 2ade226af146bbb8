"""The FHIR client's auth from the one settings object: a static bearer token, SMART Backend Services, or none."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from medagent.config import UserError
from medagent.fhir.auth.backend_services import BackendServicesConfig, BackendServicesToken
from medagent.fhir.auth.tokens import SmartBearerAuth
from medagent.fhir.client import BearerAuth

if TYPE_CHECKING:
    from medagent.config import Settings


def backend_services_config(settings: Settings, fhir_url: str | None = None) -> BackendServicesConfig | None:
    """The backend-services client the settings describe (None: not configured); half a configuration is a
    :class:`UserError` naming the missing variable."""
    if settings.fhir_client_id is None and settings.fhir_key_file is None:
        return None
    if settings.fhir_client_id is None:
        raise UserError(
            "MEDAGENT_FHIR_KEY_FILE is set but MEDAGENT_FHIR_CLIENT_ID is not: SMART backend services "
            "need the client id the authorization server registered with the key"
        )
    if settings.fhir_key_file is None:
        raise UserError(
            "MEDAGENT_FHIR_CLIENT_ID is set but MEDAGENT_FHIR_KEY_FILE is not: SMART backend services "
            "sign their token requests with the client's private key (PEM or JWK file)"
        )
    if settings.fhir_token is not None:
        raise UserError(
            "MEDAGENT_FHIR_TOKEN and MEDAGENT_FHIR_CLIENT_ID are both set: use a static token or "
            "SMART backend services, not both"
        )
    return BackendServicesConfig(
        client_id=settings.fhir_client_id,
        key_file=settings.fhir_key_file,
        key_id=settings.fhir_key_id,
        token_url=settings.fhir_token_url,
        fhir_url=fhir_url or settings.effective_fhir_url,
        scopes=settings.fhir_scopes,
    )


def client_auth(settings: Settings, fhir_url: str | None = None) -> httpx.Auth | None:
    """How a client of ``fhir_url`` (default: the configured server) authorizes its requests."""
    return bearer_auth(settings.fhir_token, backend_services_config(settings, fhir_url))


def bearer_auth(token: str | None, backend: BackendServicesConfig | None) -> httpx.Auth | None:
    """A static token's auth, a backend-services client's (its key file is read here, so a bad one fails before
    the first request), or None."""
    if backend is not None:
        return SmartBearerAuth(BackendServicesToken(backend))
    return BearerAuth(token) if token else None
