"""SMART Backend Services: a client_credentials token obtained with a JWT client assertion signed by the
client's own key (RS384 or ES384), cached and renewed before it expires."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from pydantic import BaseModel, Field

from medagent.fhir.auth.discovery import smart_configuration
from medagent.fhir.auth.keys import SigningKey, load_signing_key
from medagent.fhir.auth.tokens import AuthorizationError, CachedToken, TokenResponse, request_token

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 300  # SMART: exp no more than five minutes in the future
DEFAULT_SCOPES = "system/*.rs"


class BackendServicesConfig(BaseModel):
    """A registered backend client: its id, its private key file, and where to ask for tokens."""

    client_id: str = Field(min_length=1)
    key_file: Path
    key_id: str | None = Field(None, description="The kid to sign with (default: the JWK's kid or its thumbprint).")
    token_url: str | None = Field(None, description="Token endpoint; default: discovered from the FHIR server.")
    fhir_url: str = Field(description="The FHIR server (its .well-known/smart-configuration names the token endpoint).")
    scopes: str = DEFAULT_SCOPES


class BackendServicesToken(CachedToken):
    """A cached client_credentials token; ``SmartBearerAuth(BackendServicesToken(config))`` authorizes a client.
    The key file is read (and checked) when this is built, so a bad key is an error before any request."""

    def __init__(self, config: BackendServicesConfig, *, key: SigningKey | None = None) -> None:
        super().__init__()
        self.config = config
        self.key = key or load_signing_key(config.key_file, kid=config.key_id)
        self._token_url = config.token_url

    async def token_url(self) -> str:
        if self._token_url is None:
            found = await smart_configuration(self.config.fhir_url)
            if "client_credentials" not in found.grant_types_supported and found.grant_types_supported:
                raise AuthorizationError(
                    f"SMART discovery: {self.config.fhir_url} does not offer the client_credentials "
                    f"grant (it offers {', '.join(found.grant_types_supported)})"
                )
            self._token_url = found.token_endpoint
        return self._token_url

    def client_assertion(self, token_url: str) -> str:
        """The signed JWT proving this client's identity to ``token_url`` (single use: a fresh ``jti``)."""
        now = int(time.time())
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        return self.key.sign(claims)

    async def obtain(self) -> TokenResponse:
        url = await self.token_url()
        form = {
            "grant_type": "client_credentials",
            "scope": self.config.scopes,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(url),
        }
        return await request_token(url, form, purpose=f"backend services token for client {self.config.client_id!r}")
