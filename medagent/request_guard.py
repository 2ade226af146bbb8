"""Who may talk to an HTTP surface of medagent, and how much one request may send (an ASGI middleware).

A neutral module (it imports nothing of the FHIR server, the tools or the service): the embedded FHIR server,
the MCP HTTP app and ``medagent serve`` each wrap their app in :class:`RequestGuard`. Checked before any route
runs, each refusal in the surface's own error shape (``refusal_body``: the FHIR server's is an
OperationOutcome; the default a JSON ``{"error": status, "message": ...}``):

* ``Host`` must be a loopback name (``127.0.0.0/8``, ``localhost``, ``::1``) unless the server was
  given other allowed hosts or a bearer token: a DNS-rebinding page names its own host (403).
* a browser's ``Origin``, when sent, must be the same origin as ``Host`` (403): a page elsewhere
  cannot write, reset or read through a user's browser.
* with a bearer token every request needs ``Authorization: Bearer <token>`` (401).
* writes with a body must say ``application/fhir+json`` or ``application/json`` (``PATCH``: also
  ``application/json-patch+json``; ``_search``: also a form); anything else is a 415 (a cross-site
  form or ``text/plain`` fetch cannot post a resource).
* the body may not exceed ``max_body_bytes``: refused from ``Content-Length`` before reading, and
  counted while reading when there is none (413).
* the query string is capped in length (414).

Every request ends with one line in the append-only access log (:mod:`medagent.access_log`).

Other HTTP surfaces reuse the middleware as it is: the MCP HTTP app, and ``medagent serve`` with its own
auth hook (bearer header or UI session cookie, open UI shell) and its own error shape (``refusal_body``).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medagent.access_log import AccessLog

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_QUERY_BYTES = 16 * 1024
WRITE_METHODS = ("POST", "PUT", "PATCH")
JSON_TYPES = ("application/fhir+json", "application/json")
EXTRA_TYPES = {"PATCH": ("application/json-patch+json",)}
FORM_TYPE = "application/x-www-form-urlencoded"
LOOPBACK_NAMES = ("localhost",)


class ServerSecurity(BaseModel):
    """An HTTP surface's exposure settings (e.g. the ``medagent fhir serve`` flags)."""

    token: str | None = Field(None, description="Bearer token every request must carry (required beyond loopback).")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host names accepted besides loopback ('*': any)."
    )
    loopback_hosts_only: bool = Field(
        False, description="Only loopback Host names, even with a token (a service bound to loopback)."
    )
    max_body_bytes: int = Field(MAX_BODY_BYTES, gt=0)
    access_log: str | None = Field(None, description="Append-only access log file (None: no log).")

    @property
    def protected(self) -> bool:
        """Every request must prove who sends it (here a static token; a surface may add other proofs)."""
        return self.token is not None

    def host_allowed(self, host: str) -> bool:
        if is_loopback(host) or "*" in self.allowed_hosts or host.lower() in (h.lower() for h in self.allowed_hosts):
            return True
        return self.protected and not self.allowed_hosts and not self.loopback_hosts_only


@lru_cache(maxsize=256)  # a pure function of the name, asked on every request
def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; every other name (0.0.0.0 included) is beyond loopback."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(
    host: str,
    token: str | None,
    *,
    service: str = "the FHIR server",
    token_source: str = "--token or set MEDAGENT_FHIR_SERVER_TOKEN",
    access_tokens: bool = False,
) -> None:
    """Refuse (ValueError) to bind beyond loopback without a bearer token (every HTTP surface uses this rule);
    ``access_tokens``: SMART access tokens protect it instead."""
    if token is not None and access_tokens:
        raise ValueError(f"{service} takes a static token or SMART access tokens, not both")
    if not is_loopback(host) and not token and not access_tokens:
        raise ValueError(
            f"refusing to bind {host}: beyond loopback {service} needs a bearer token (pass {token_source})"
        )
    if token is not None and len(token) < 16:
        raise ValueError(f"the {service.removeprefix('the ')} token must be at least 16 characters")


def host_name(host_header: str) -> str:
    """``127.0.0.1:8321`` -> ``127.0.0.1``; ``[::1]:8321`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


RefusalBody = Callable[[int, str], tuple[bytes, str]]  # (status, message) -> (body, content type)
Authorize = Callable[[Scope, dict[str, str]], bool]  # (scope, lower-cased headers) -> may this request go on


def json_refusal(status: int, message: str) -> tuple[bytes, str]:
    """The default refusal: ``{"error": status, "message": ...}``."""
    return orjson.dumps({"error": status, "message": message}), "application/json"


class RequestGuard:
    """ASGI middleware: the checks of this module, then the app; one access-log line per request.

    ``authorize`` replaces the bearer-token comparison (e.g. a session cookie too); ``refusal_body`` shapes
    the refusals (default: :func:`json_refusal`); ``realm`` names the service in ``WWW-Authenticate``."""

    def __init__(
        self,
        app: ASGIApp,
        security: ServerSecurity,
        *,
        authorize: Authorize | None = None,
        refusal_body: RefusalBody = json_refusal,
        realm: str = "medagent-fhir",
    ) -> None:
        self.app = app
        self.security = security
        self.authorize = authorize
        self.refusal_body = refusal_body
        self.realm = realm
        self.log = AccessLog(security.access_log) if security.access_log else None

    def _refuse(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        body, content_type = self.refusal_body(status, message)
        return status, body, {"Content-Type": content_type, **(headers or {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status_seen: dict[str, int] = {}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        refusal = self.refusal(scope, headers)
        try:
            if refusal is not None:
                status, body, extra = refusal
                await _send_outcome(send_logged, status, body, extra)
            else:
                await self.app(scope, self._capped(receive, send_logged, status_seen), send_logged)
        finally:
            if self.log is not None:
                self.log.write(
                    scope,
                    headers,
                    status_seen.get("status", 0),
                    time.perf_counter() - started,
                    authenticated=self.security.token is not None and refusal is None,
                )

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]] | None:
        host = headers.get("host", "")
        if not self.security.host_allowed(host_name(host)):
            return self._refuse(
                403,
                f"Host {host!r} is not allowed: this server answers loopback names only "
                "(start it with --allowed-host or --token to serve other names)",
            )
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in (f"http://{host}".lower(), f"https://{host}".lower()):
            return self._refuse(403, f"Origin {origin!r} is not this server ({host}): cross-site requests are refused")
        if self.authorize is not None:
            if not self.authorize(scope, headers):
                return self._refuse(
                    401,
                    "this service needs Authorization: Bearer <token>",
                    {"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
                )
        elif self.security.token is not None:
            given = headers.get("authorization", "")
            expected = f"Bearer {self.security.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return self._refuse(
                    401,
                    "this server needs Authorization: Bearer <token>",
                    {"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
                )
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            return self._refuse(
                414,
                f"the query string is over {MAX_QUERY_BYTES} bytes; send fewer or shorter "
                "parameters (or POST /Type/_search)",
            )
        method = scope["method"]
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or not length.isascii()):
            return self._refuse(400, f"Content-Length {length!r} is not a number")
        if length is not None and int(length) > self.security.max_body_bytes:
            return self._refuse(
                413, f"request body of {int(length)} bytes is over the limit of {self.security.max_body_bytes} bytes"
            )
        has_body = (length is not None and int(length) > 0) or "chunked" in headers.get("transfer-encoding", "")
        if method in WRITE_METHODS and has_body:
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            allowed = (*JSON_TYPES, *EXTRA_TYPES.get(method, ()))
            if scope["path"].endswith("/_search"):
                allowed = (*allowed, FORM_TYPE)
            if content_type not in allowed:
                return self._refuse(
                    415, f"{method} needs Content-Type {' or '.join(allowed)}; got {content_type or 'none'!r}"
                )
        return None

    def _capped(self, receive: Receive, send: Send, status_seen: dict[str, int]) -> Receive:
        """``receive`` that stops a body growing past the limit (chunked uploads have no Content-Length)."""
        limit = self.security.max_body_bytes
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return capped


class BodyTooLarge(Exception):
    """A body that grew past the limit while it was read (no Content-Length to refuse it by): status 413."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is over the limit of {limit} bytes")
        self.limit = limit


async def _send_outcome(send: Send, status: int, body: bytes, extra: dict[str, str]) -> None:
    header_list: list[Any] = [(b"content-length", str(len(body)).encode())]
    header_list += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": body})
