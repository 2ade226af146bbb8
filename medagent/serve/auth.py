"""Bearer-token access to the service: required beyond loopback; the browser holds an HttpOnly session cookie."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from medagent.fhir.server.guard import check_bind as fhir_check_bind
from medagent.fhir.server.guard import is_loopback  # noqa: F401  (re-exported for medagent.serve)
from medagent.serve.errors import error_response

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


class BearerTokenMiddleware:
    """Every path but the UI shell, health, session login and the schema needs the token (header or cookie)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or scope["path"] in OPEN_PATHS \
                or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if authorized(HTTPConnection(scope), self.token):
            await self.app(scope, receive, send)
            return
        response = error_response(401, "unauthorized", "this service needs a bearer token "
                                  "(Authorization: Bearer ...) or a session from the login box")
        response.headers["WWW-Authenticate"] = 'Bearer realm="medagent"'
        await response(scope, receive, send)
