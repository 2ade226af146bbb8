"""Checking JWTs an authorization server signed: its JWKS fetched once and again only for an unknown ``kid``,
then signature, expiry, issuer and audience (access tokens at the embedded server, ID tokens at launch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import jwt

from medagent.fhir.auth.discovery import fetch_json

REFETCH_INTERVAL_S = 30.0  # an unknown kid fetches the JWKS again at most this often (a forged kid cannot flood it)
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class InvalidToken(Exception):
    """A JWT that does not pass: the message says why in one line (for ``WWW-Authenticate`` and the outcome)."""


class JwksCache:
    """The signing keys at ``jwks_url`` by ``kid``; a key rotation is picked up by the first unknown kid."""

    def __init__(self, jwks_url: str) -> None:
        self.jwks_url = jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._unnamed: list[jwt.PyJWK] = []
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        key = self._find(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._find(kid)
            if key is None and time.monotonic() - self._fetched_at >= REFETCH_INTERVAL_S:
                await self._fetch()
                key = self._find(kid)
        if key is None:
            raise InvalidToken(f"the token is signed with key {kid!r}, which the issuer's JWKS does not hold")
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return self._unnamed[0] if len(self._unnamed) == 1 else None

    async def _fetch(self) -> None:
        body = await fetch_json(self.jwks_url, purpose="the issuer's signing keys")
        self._fetched_at = time.monotonic()
        try:
            keys = jwt.PyJWKSet.from_dict(body).keys
        except jwt.PyJWKSetError as exc:
            raise InvalidToken(f"the issuer's JWKS at {self.jwks_url} holds no usable key ({exc})") from None
        self._keys = {k.key_id: k for k in keys if k.key_id}
        self._unnamed = [k for k in keys if not k.key_id]


async def verify_jwt(
    token: str,
    keys: JwksCache,
    *,
    issuer: str,
    audience: str | Sequence[str] | None,
    leeway_s: float = 0.0,
    required: Sequence[str] = ("exp", "iss"),
    algorithms: Sequence[str] = SIGNING_ALGORITHMS,
) -> dict[str, Any]:
    """The claims of a JWT signed by one of ``keys``, issued by ``issuer`` for ``audience`` (None: not checked),
    unexpired (within ``leeway_s``); otherwise :class:`InvalidToken` saying what failed."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise InvalidToken(f"the token is not a JWT ({exc})") from None
    algorithm = str(header.get("alg"))
    if algorithm not in algorithms:
        raise InvalidToken(f"the token's algorithm {algorithm!r} is not accepted (one of {', '.join(algorithms)})")
    key = await keys.key_for(header.get("kid"))
    options: dict[str, Any] = {
        "require": [*required, *(["aud"] if audience is not None else [])],
        "verify_aud": audience is not None,
    }
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            issuer=issuer,
            audience=list(audience) if isinstance(audience, (list, tuple)) else audience,
            leeway=leeway_s,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken(f"the token is not meant for this server (its audience is not {audience!r})") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken(f"the token was not issued by {issuer}") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("the token's signature does not verify with the issuer's key (forged or altered)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"the token has no {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the token is not valid ({exc})") from None
