"""Who may use the service: the FHIR server's guard, with a bearer token (required beyond loopback) that the
browser holds as an HttpOnly session cookie."""

from __future__ import annotations

import hashlib
import hmac

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Scope

from medagent.request_guard import (
    RequestGuard,
    ServerSecurity,
    is_loopback,  # noqa: F401  (re-exported for medagent.serve)
)
from medagent.request_guard import check_bind as fhir_check_bind
from medagent.serve.smart_launch import LAUNCH_PATHS, SmartLaunch

SESSION_COOKIE = "medagent_session"
OPEN_PATHS = ("/", "/api/health", "/api/session", "/openapi.json")


def check_bind(host: str, token: str | None) -> None:
    """Refuse (ValueError) to serve beyond loopback without a token: the rule of every HTTP surface."""
    fhir_check_bind(host, token, service="the API", token_source="--token or set MEDAGENT_SERVE_TOKEN")


def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, so the cookie never contains the token itself."""
    return hmac.new(token.encode(), b"medagent-serve-ui-session", hashlib.sha256).hexdigest()


def token_matches(token: str, offered: str) -> bool:
    return hmac.compare_digest(token.encode(), offered.encode())


def authorized(connection: HTTPConnection, token: str | None) -> bool:
    if token is None:
        return True
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and token_matches(token, header[7:].strip()):
        return True
    cookie = connection.cookies.get(SESSION_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(token).encode())


SERVE_MAX_BODY_BYTES = 16 * 1024 * 1024  # CDS Hooks calls carry prefetched records (a chart can be megabytes)
_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    413: "body_too_large",
    414: "query_too_long",
    415: "unsupported_media_type",
}


def api_refusal(status: int, message: str) -> tuple[bytes, str]:
    """The guard's refusals in the API's one error shape ``{"error": code, "message": ...}``."""
    body = orjson.dumps({"error": _ERROR_CODES.get(status, "refused"), "message": message})
    return body, "application/json"


def guarded(app: ASGIApp, token: str | None, loopback: bool = True, launch: SmartLaunch | None = None) -> RequestGuard:
    """The app behind the FHIR server's guard (Host allow-list, exact Origin, JSON-only writes, body and query
    caps); with a token, every path but the UI shell, health, session login, the schema and static files needs
    it (bearer header or the UI's session cookie). ``loopback``: bound to loopback, so only loopback Host
    names are served, token or not (beyond loopback a token is required and any Host name is served).
    ``launch``: a SMART app; its launch paths are open and a launched session's cookie also authorizes."""

    def authorize(scope: Scope, headers: dict[str, str]) -> bool:
        if token is None or scope["path"] in OPEN_PATHS or scope["path"].startswith("/static/"):
            return True
        if launch is not None and (scope["path"] in LAUNCH_PATHS or launch.session_for(HTTPConnection(scope))):
            return True
        return authorized(HTTPConnection(scope), token)

    security = ServerSecurity(token=token, loopback_hosts_only=loopback, max_body_bytes=SERVE_MAX_BODY_BYTES)
    return RequestGuard(app, security, authorize=authorize, refusal_body=api_refusal, realm="medagent")
