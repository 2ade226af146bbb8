"""OAuth 2.0 tokens for the FHIR client: the token endpoint's answer, a cached token that renews itself
before it expires, and the httpx auth that sends it (and renews once when the server answers 401)."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from medagent.fhir.client import default_ssl_context
from medagent.fhir.errors import FhirClientError

TOKEN_TIMEOUT_S = 30.0
MAX_RENEWAL_MARGIN_S = 60.0


class AuthorizationError(FhirClientError):
    """Discovery, a token request or a launch failed; the message says which, where and why, in one line."""


class TokenResponse(BaseModel):
    """A token endpoint's success answer (RFC 6749 5.1), with SMART's launch context fields."""

    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: str
    expires_in: int | None = None
    scope: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = None
    encounter: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A token response and when it arrived (monotonic seconds), to know when to renew it."""

    response: TokenResponse
    obtained_at: float

    @property
    def expires_at(self) -> float | None:
        lifetime = self.response.expires_in
        return None if lifetime is None else self.obtained_at + lifetime

    def usable(self, now: float) -> bool:
        """Not yet within the renewal margin of its expiry (10% of its lifetime, at most a minute)."""
        if self.expires_at is None or self.response.expires_in is None:
            return True
        margin = min(MAX_RENEWAL_MARGIN_S, 0.1 * self.response.expires_in)
        return now < self.expires_at - margin


async def request_token(token_url: str, form: Mapping[str, str], *, purpose: str) -> TokenResponse:
    """POST a token request (form-encoded); an error answer becomes one :class:`AuthorizationError` line."""
    try:
        async with httpx.AsyncClient(timeout=TOKEN_TIMEOUT_S, verify=default_ssl_context()) as http:
            response = await http.post(token_url, data=dict(form), headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise AuthorizationError(f"{purpose}: the token endpoint {token_url} could not be reached ({exc!r})") from None
    body = _json_object(response)
    if not response.is_success:
        error = body.get("error", f"HTTP {response.status_code}")
        detail = body.get("error_description") or response.text[:200]
        raise AuthorizationError(f"{purpose}: the token endpoint {token_url} refused: {error}: {detail}")
    try:
        token = TokenResponse.model_validate(body)
    except ValidationError as exc:
        raise AuthorizationError(
            f"{purpose}: the token endpoint {token_url} answered without a usable token "
            f"({exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']})"
        ) from None
    if token.token_type.lower() != "bearer":
        raise AuthorizationError(
            f"{purpose}: the token endpoint {token_url} issued a {token.token_type!r} token; "
            "this client sends bearer tokens only"
        )
    return token


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class CachedToken(ABC):
    """A token source: the current access token, obtained again (:meth:`obtain`) when it is near its expiry.
    Concurrent callers share one request for a new token."""

    def __init__(self, issued: IssuedToken | None = None) -> None:
        self.issued = issued
        self.obtained = 0  # tokens obtained by this source (each one a token request)
        self._lock = asyncio.Lock()

    @abstractmethod
    async def obtain(self) -> TokenResponse:
        """A new token from the authorization server."""

    async def access_token(self, *, rejected: str | None = None) -> str:
        """The token to send; ``rejected``: the server refused this one (401), get another unless already done."""
        async with self._lock:
            current = self.issued
            stale = current is None or not current.usable(time.monotonic())
            if stale or (rejected is not None and current is not None and current.response.access_token == rejected):
                response = await self.obtain()
                self.issued = current = IssuedToken(response, time.monotonic())
                self.obtained += 1
            assert current is not None
            return current.response.access_token


class SmartBearerAuth(httpx.Auth):
    """httpx auth sending a :class:`CachedToken`'s bearer token; on a 401 it gets a new token and retries once."""

    def __init__(self, source: CachedToken) -> None:
        self.source = source

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.source.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            renewed = await self.source.access_token(rejected=token)
            if renewed != token:
                request.headers["Authorization"] = f"Bearer {renewed}"
                yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise FhirClientError("SMART tokens need the async FHIR client (httpx.AsyncClient)")
        yield request  # pragma: no cover - makes this a generator, as httpx expects
