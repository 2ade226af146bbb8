"""The embedded FHIR server's exposure settings: the request guard's (:mod:`medagent.request_guard`) plus SMART
access tokens (:mod:`medagent.fhir.server.smart_access`) as another proof of who sends a request."""

from __future__ import annotations

from pydantic import Field

from medagent.fhir.server.smart_access import AccessTokenPolicy
from medagent.request_guard import ServerSecurity

__all__ = ["FhirServerSecurity"]


class FhirServerSecurity(ServerSecurity):
    """``medagent fhir serve``'s flags: a static bearer token, or SMART access tokens, or neither on loopback."""

    access_tokens: AccessTokenPolicy | None = Field(
        None, description="SMART: JWT access tokens and scopes are required instead of a static token (smart_access)."
    )

    @property
    def protected(self) -> bool:
        return self.token is not None or self.access_tokens is not None
