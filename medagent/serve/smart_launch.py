"""``medagent serve`` as a SMART app: the EHR launch (``/launch?iss=...&launch=...``) and the standalone launch
(``/launch``), the redirect back (``/launch/callback``), and the server-side sessions they open.

The browser holds only an opaque, HttpOnly session cookie; the state, nonce, PKCE verifier, tokens and FHIR
client stay here. A session's runs read and write the EHR's FHIR server with the session's token (refreshed
before it expires), about the patient the EHR had open; writes still wait for the one approval path.
Sessions live in this process only: a restart ends them (launch again).
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from medagent.config import Settings, UserError
from medagent.fhir.auth.app_launch import DEFAULT_APP_SCOPES, PendingLaunch, begin_launch, complete_launch
from medagent.fhir.auth.tokens import SmartBearerAuth
from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirClientError

LAUNCH_COOKIE = "medagent_launch"
LAUNCH_PATHS = ("/launch", "/launch/callback")
PENDING_SECONDS = 600.0  # an authorization request not answered in ten minutes is forgotten
MAX_PENDING = 256
MAX_SESSIONS = 256
log = logging.getLogger("medagent.serve.smart")


def smart_app_config(settings: Settings, fhir_url: str) -> SmartAppConfig | None:
    """The SMART app registration the settings describe (None: not a SMART app); a bad one is a UserError."""
    if settings.smart_client_id is None:
        if settings.smart_issuers or settings.smart_scopes or settings.smart_redirect_uri:
            raise UserError(
                "the SMART app options need --smart-client-id (MEDAGENT_SMART_CLIENT_ID): the client id "
                "the EHR's authorization server registered this app under"
            )
        return None
    try:
        return SmartAppConfig(
            client_id=settings.smart_client_id,
            issuers=(settings.smart_issuers or fhir_url).split(),
            scopes=settings.smart_scopes or DEFAULT_APP_SCOPES,
            redirect_uri=settings.smart_redirect_uri,
        )
    except ValidationError as exc:
        raise UserError(f"SMART app settings: {exc.errors()[0]['msg']}") from None


class SmartAppConfig(BaseModel):
    """The app's registration at the EHR's authorization server (``medagent serve --smart-client-id ...``)."""

    client_id: str = Field(min_length=1, description="The client id the EHR registered this app under (public client).")
    issuers: list[str] = Field(min_length=1, description="FHIR base URLs (iss) this app may be launched from.")
    scopes: str = Field(DEFAULT_APP_SCOPES, description="Scopes asked for (SMART v2).")
    redirect_uri: str | None = Field(None, description="The registered redirect URI (default: BASE/launch/callback).")
    session_seconds: float = Field(8 * 3600, gt=0, description="How long a launched session lasts.")

    @field_validator("issuers")
    @classmethod
    def _urls(cls, issuers: list[str]) -> list[str]:
        for iss in issuers:
            if not iss.startswith(("http://", "https://")):
                raise ValueError(f"SMART issuer {iss!r} is not an http(s) FHIR base URL")
        return [iss.rstrip("/") for iss in issuers]


@dataclass
class LaunchSession:
    """One launched app session: the EHR's FHIR server, the token's client, the patient in context."""

    id: str
    iss: str
    patient: str | None
    fhir_user: str | None
    scopes: str
    client: FhirClient
    runs: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)


class LaunchRefused(Exception):
    """A launch that cannot go on: the status and the one line the browser shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class SmartLaunch:
    """The launch endpoints and the sessions they open (one per successful launch)."""

    def __init__(self, config: SmartAppConfig) -> None:
        self.config = config
        self._pending: OrderedDict[str, tuple[str, PendingLaunch]] = OrderedDict()  # state -> (browser, request)
        self._sessions: OrderedDict[str, LaunchSession] = OrderedDict()

    def routes(self) -> list[Route]:
        return [
            Route("/launch", self.launch, methods=["GET"]),
            Route("/launch/callback", self.callback, methods=["GET"]),
        ]

    # endpoints ------------------------------------------------------------------------------
    async def launch(self, request: Request) -> Response:
        """Start a launch: EHR (``iss`` and ``launch``) or standalone (neither; the first registered issuer)."""
        iss, launch = request.query_params.get("iss"), request.query_params.get("launch")
        try:
            if launch is not None and not iss:
                raise LaunchRefused(400, "an EHR launch needs both launch and iss; this request has no iss")
            iss = (iss or self.config.issuers[0]).rstrip("/")
            if iss not in self.config.issuers:
                raise LaunchRefused(
                    403,
                    f"iss {iss} is not a FHIR server this app is registered with "
                    f"(registered: {', '.join(self.config.issuers)})",
                )
            redirect_uri = self.config.redirect_uri or f"{str(request.base_url).rstrip('/')}/launch/callback"
            try:
                pending = await begin_launch(
                    iss=iss,
                    client_id=self.config.client_id,
                    redirect_uri=redirect_uri,
                    scopes=self.config.scopes,
                    launch=launch,
                )
            except FhirClientError as exc:
                raise LaunchRefused(502, str(exc)) from None
        except LaunchRefused as refused:
            return _launch_failed(refused)
        browser = secrets.token_urlsafe(24)
        self._remember(pending, browser)
        response = RedirectResponse(pending.authorize_url, status_code=302)
        self._set_cookie(response, request, browser)
        log.info("SMART %s launch from %s started", "EHR" if launch else "standalone", iss)
        return response

    async def callback(self, request: Request) -> Response:
        """The authorization server's redirect: check state against this browser, exchange the code, open a session."""
        params = request.query_params
        try:
            state = params.get("state", "")
            held = self._pending.pop(state, None)
            if held is None or time.monotonic() - held[1].created > PENDING_SECONDS:
                raise LaunchRefused(
                    400,
                    "this launch's state is unknown or expired (the link was used already, "
                    "is too old, or did not start here); launch the app again",
                )
            browser, pending = held
            if not secrets.compare_digest(request.cookies.get(LAUNCH_COOKIE, ""), browser):
                raise LaunchRefused(
                    400,
                    "this launch was started in another browser (its state does not match this "
                    "browser's session); launch the app again",
                )
            if "error" in params:
                raise LaunchRefused(
                    403,
                    f"the authorization server refused the launch: {params['error']}: "
                    f"{params.get('error_description', '')}".rstrip(": "),
                )
            if not params.get("code"):
                raise LaunchRefused(400, "the authorization server's redirect has no code")
            session = await self._open_session(pending, params["code"])
        except LaunchRefused as refused:
            return _launch_failed(refused)
        response = RedirectResponse("/", status_code=303)
        self._set_cookie(response, request, session.id)
        log.info(
            "SMART launch from %s opened a session (patient in context: %s)",
            session.iss,
            "yes" if session.patient else "none",
        )
        return response

    async def _open_session(self, pending: PendingLaunch, code: str) -> LaunchSession:
        try:
            completed = await complete_launch(pending, code)
        except FhirClientError as exc:
            raise LaunchRefused(400 if "patient context" in str(exc) else 502, str(exc)) from None
        client = FhirClient(pending.iss, auth=SmartBearerAuth(completed.token))
        if completed.patient is not None:
            try:
                await client.read_json("Patient", completed.patient)
            except FhirClientError as exc:
                await client.aclose()
                raise LaunchRefused(
                    502,
                    f"the FHIR server {pending.iss} did not give this launch's patient "
                    f"Patient/{completed.patient}: {exc}",
                ) from None
        session = LaunchSession(
            id=secrets.token_urlsafe(32),
            iss=pending.iss,
            patient=completed.patient,
            fhir_user=completed.fhir_user,
            scopes=completed.scopes,
            client=client,
        )
        self._sessions[session.id] = session
        while len(self._sessions) > MAX_SESSIONS:
            _, oldest = self._sessions.popitem(last=False)
            await oldest.client.aclose()
        return session

    # sessions -------------------------------------------------------------------------------
    def session_for(self, connection: HTTPConnection) -> LaunchSession | None:
        """The launched session this browser (its cookie) belongs to, if any and not expired."""
        session = self._sessions.get(connection.cookies.get(LAUNCH_COOKIE, ""))
        if session is None or time.monotonic() - session.started > self.config.session_seconds:
            return None
        return session

    async def end(self, connection: HTTPConnection) -> None:
        session = self._sessions.pop(connection.cookies.get(LAUNCH_COOKIE, ""), None)
        if session is not None:
            await session.client.aclose()

    async def aclose(self) -> None:
        while self._sessions:
            await self._sessions.popitem()[1].client.aclose()

    def _remember(self, pending: PendingLaunch, browser: str) -> None:
        now = time.monotonic()
        for state in [s for s, (_, p) in self._pending.items() if now - p.created > PENDING_SECONDS]:
            del self._pending[state]
        self._pending[pending.state] = (browser, pending)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    @staticmethod
    def _set_cookie(response: Response, request: Request, value: str) -> None:
        # SameSite=Lax: the authorization server's redirect back is a top-level navigation from another site
        response.set_cookie(
            LAUNCH_COOKIE, value, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
        )


def _launch_failed(refused: LaunchRefused) -> HTMLResponse:
    log.info("SMART launch refused (%s): %s", refused.status, refused.message)
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Launch failed - medagent</title>"
        f"<main><h1>The launch did not work</h1><p id=launch-error>{html.escape(refused.message)}</p>"
        "<p>Nothing was written. Launch the app again from the EHR.</p></main></html>"
    )
    return HTMLResponse(page, status_code=refused.status, headers={"Cache-Control": "no-store"})
