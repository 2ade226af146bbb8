"""The one settings object. Env vars MEDAGENT_*; CLI flags override; nothing else reads os.environ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class UserError(Exception):
    """A mistake in what the person running medagent asked for (a path, an option, a run folder): the CLI
    prints its message in one line and exits with code 2. Anything else is a bug and keeps its traceback."""


def _default_home() -> Path:
    return Path.home() / ".medagent"


class Settings(BaseSettings):
    """Runtime settings shared by the CLI, the server, the client, the agent and the runner."""

    model_config = SettingsConfigDict(env_prefix="MEDAGENT_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Folder for databases, caches and runs.")
    fhir_url: str | None = Field(None, description="FHIR base URL; None means the embedded server.")
    fhir_token: str | None = Field(None, description="Bearer token sent to the FHIR server.")
    # SMART Backend Services (the client obtains its own tokens): medagent/fhir/auth/README.md
    fhir_client_id: str | None = Field(
        None, description="Backend-services client id registered at the authorization server."
    )
    fhir_key_file: Path | None = Field(None, description="The client's private key (PEM, or a JWK/JWKS JSON file).")
    fhir_key_id: str | None = Field(None, description="kid of that key (default: the JWK's kid or its thumbprint).")
    fhir_token_url: str | None = Field(
        None, description="Token endpoint; default: FHIR .well-known/smart-configuration."
    )
    fhir_scopes: str = Field("system/*.rs", description="Scopes the backend client asks for.")
    fhir_timeout: float = Field(30.0, gt=0, description="Seconds per FHIR HTTP request.")
    fhir_retries: int = Field(3, ge=0, description="Retries of safe FHIR requests on 429/5xx/timeouts.")
    # the embedded server as a SMART protected resource server (off unless an issuer is set)
    fhir_server_issuer: str | None = Field(None, description="Accept JWT access tokens from this OAuth issuer only.")
    fhir_server_audience: str | None = Field(
        None, description="The tokens' audience: the server's base URL as clients use it (default http://HOST:PORT)."
    )
    fhir_server_jwks_url: str | None = Field(None, description="The issuer's JWKS (default: its OpenID discovery).")
    fhir_server_leeway: float = Field(10.0, ge=0, le=300, description="Clock skew allowed on token expiry, seconds.")
    host: str = "127.0.0.1"
    port: int = Field(8321, ge=1, le=65535, description="Port of the embedded FHIR server.")
    db: Path | None = Field(None, description="SQLite file of the embedded server; default HOME/fhir.sqlite.")
    strict_search: bool = Field(False, description="Reject unknown search parameters with 400.")
    allow_reset: bool = Field(False, description="Enable POST /$snapshot, /$reset and GET /$diff.")
    # medagent serve as a SMART app (EHR and standalone launch): medagent/serve/README.md
    smart_client_id: str | None = Field(None, description="The app's client id at the EHR's authorization server.")
    smart_issuers: str | None = Field(
        None, description="FHIR base URLs the app may be launched from, space-separated (default: the FHIR URL)."
    )
    smart_scopes: str | None = Field(
        None,
        description="Scopes the app asks for (default: launch launch/patient "
        "patient/*.rs openid fhirUser offline_access).",
    )
    smart_redirect_uri: str | None = Field(
        None, description="The registered redirect URI (default BASE/launch/callback)."
    )
    model: str = Field("embedded", description="'embedded' or an OpenAI-compatible base URL (vLLM).")
    model_name: str | None = None
    read_only: bool = Field(True, description="Refuse writes unless a run explicitly allows them.")

    @property
    def db_path(self) -> Path:
        return self.db if self.db is not None else self.home / "fhir.sqlite"

    @property
    def embedded_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def effective_fhir_url(self) -> str:
        return (self.fhir_url or self.embedded_url).rstrip("/")


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment with explicit (non-None) overrides, e.g. from CLI flags; a value out of
    range is a :class:`UserError` naming the flag and the variable (``--port (MEDAGENT_PORT): ...``)."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "settings"
        raise UserError(
            f"--{name.replace('_', '-')} (MEDAGENT_{name.upper()}): {first['msg']}; "
            f"got {str(first.get('input'))[:80]!r}"
        ) from None
