"""SMART App Launch 2.x, the protocol side: the authorization request (PKCE S256, state, nonce, ``aud``, the EHR's
``launch``), the code exchange with its launch context and ID token checked, and the refresh of the token.

The HTTP side (redirects, cookies, server-side sessions) belongs to the app: ``medagent.serve.smart_launch``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from medagent.fhir.auth.discovery import SmartConfiguration, smart_configuration
from medagent.fhir.auth.jwks import InvalidToken, JwksCache, verify_jwt
from medagent.fhir.auth.tokens import AuthorizationError, CachedToken, IssuedToken, TokenResponse, request_token

DEFAULT_APP_SCOPES = "launch launch/patient patient/*.rs openid fhirUser offline_access"
PATIENT_CONTEXT_SCOPES = ("launch", "launch/patient")


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (43+ characters of randomness) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass(frozen=True)
class PendingLaunch:
    """An authorization request sent to the browser, kept by the app until the redirect comes back."""

    iss: str
    client_id: str
    redirect_uri: str
    scopes: str
    state: str
    nonce: str
    code_verifier: str
    configuration: SmartConfiguration
    authorize_url: str
    launch: str | None = None
    created: float = field(default_factory=time.monotonic)

    @property
    def wants_patient(self) -> bool:
        return any(s in self.scopes.split() for s in PATIENT_CONTEXT_SCOPES)


@dataclass(frozen=True)
class CompletedLaunch:
    """A finished launch: the token (refreshing itself), the patient in context and who the user is."""

    token: RefreshingToken
    patient: str | None
    fhir_user: str | None
    scopes: str
    id_claims: dict[str, Any]


async def begin_launch(
    *, iss: str, client_id: str, redirect_uri: str, scopes: str = DEFAULT_APP_SCOPES, launch: str | None = None
) -> PendingLaunch:
    """Discover ``iss``'s SMART configuration and build the authorization request. An EHR launch passes its
    ``launch``; a standalone launch passes none (then the ``launch`` scope, which asks for the EHR's context, is
    left out and ``launch/patient`` asks the authorization server for a patient)."""
    configuration = await smart_configuration(iss)
    if configuration.authorization_endpoint is None:
        raise AuthorizationError(f"SMART discovery: {iss} names no authorization_endpoint (no app launch there)")
    methods = configuration.code_challenge_methods_supported
    if methods and "S256" not in methods:
        raise AuthorizationError(f"SMART discovery: {iss} does not support PKCE S256 (it lists {', '.join(methods)})")
    words = [s for s in scopes.split() if launch is not None or s != "launch"]
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(words),
        "state": state,
        "aud": iss,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if "openid" in words:
        query["nonce"] = nonce
        if "offline_access" in words:  # OpenID Connect Core 11: offline access is asked for with prompt=consent
            query["prompt"] = "consent"
    if launch is not None:
        query["launch"] = launch
    return PendingLaunch(
        iss=iss,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=" ".join(words),
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        configuration=configuration,
        launch=launch,
        authorize_url=f"{configuration.authorization_endpoint}?{urlencode(query)}",
    )


async def complete_launch(pending: PendingLaunch, code: str) -> CompletedLaunch:
    """Exchange the code (with the PKCE verifier); check the launch context the scopes asked for and the ID
    token (signature, issuer, audience, nonce). Any failure is one :class:`AuthorizationError` line."""
    token_url = pending.configuration.token_endpoint
    response = await request_token(
        token_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "client_id": pending.client_id,
            "code_verifier": pending.code_verifier,
        },
        purpose="SMART launch",
    )
    if pending.wants_patient and not response.patient:
        raise AuthorizationError(
            "SMART launch: the authorization server granted no patient context (the token "
            f"response has no 'patient', though {pending.scopes!r} asked for one); this app "
            "needs the patient the EHR has open"
        )
    claims: dict[str, Any] = {}
    if "openid" in pending.scopes.split():
        claims = await _checked_id_token(pending, response)
    fhir_user = claims.get("fhirUser")
    token = RefreshingToken(token_url, pending.client_id, IssuedToken(response, time.monotonic()))
    return CompletedLaunch(
        token=token,
        patient=response.patient,
        fhir_user=str(fhir_user) if fhir_user else None,
        scopes=response.scope or pending.scopes,
        id_claims=claims,
    )


async def _checked_id_token(pending: PendingLaunch, response: TokenResponse) -> dict[str, Any]:
    configuration = pending.configuration
    if response.id_token is None:
        raise AuthorizationError("SMART launch: the scopes asked for openid but the token response has no id_token")
    if configuration.issuer is None or configuration.jwks_uri is None:
        raise AuthorizationError(
            f"SMART launch: {pending.iss}'s SMART configuration names no issuer and jwks_uri, so "
            "its ID token cannot be checked"
        )
    try:
        claims = await verify_jwt(
            response.id_token,
            JwksCache(configuration.jwks_uri),
            issuer=configuration.issuer,
            audience=pending.client_id,
            required=("exp", "iss", "aud", "iat", "sub"),
        )
    except InvalidToken as exc:
        raise AuthorizationError(f"SMART launch: the ID token was refused: {exc}") from None
    if claims.get("nonce") != pending.nonce:
        raise AuthorizationError(
            "SMART launch: the ID token's nonce is not the one this launch sent (a replayed token)"
        )
    return claims


class RefreshingToken(CachedToken):
    """A launch's access token, refreshed with its refresh token (public client) when it nears its expiry."""

    def __init__(self, token_url: str, client_id: str, issued: IssuedToken) -> None:
        super().__init__(issued)
        self.token_url = token_url
        self.client_id = client_id
        self.refresh_token = issued.response.refresh_token
        self.patient = issued.response.patient

    async def obtain(self) -> TokenResponse:
        if self.refresh_token is None:
            raise AuthorizationError(
                "SMART launch: the access token expired and the authorization server issued no "
                "refresh token (ask for offline_access or online_access); launch the app again"
            )
        response = await request_token(
            self.token_url,
            {"grant_type": "refresh_token", "client_id": self.client_id, "refresh_token": self.refresh_token},
            purpose="SMART token refresh",
        )
        if response.patient is not None and self.patient is not None and response.patient != self.patient:
            raise AuthorizationError(
                f"SMART token refresh: the new token is for Patient/{response.patient}, not the "
                f"launch's Patient/{self.patient}; refusing it"
            )
        self.refresh_token = response.refresh_token or self.refresh_token
        return response
