"""The embedded server as a SMART protected resource server (an ASGI middleware; off unless configured).

Every request but ``/metadata`` and ``/.well-known/smart-configuration`` needs a JWT access token from the
configured issuer: its signature checked with the issuer's JWKS, its expiry, issuer and audience (401 when any
fails). Its SMART scopes must allow each interaction on each resource type (c, r, u, d, s: 403 otherwise).
``patient/`` scopes also limit the token to the patient in its ``patient`` claim: a search must name that
patient, a write must be about them and may not change another patient's resource, and every resource an
answer would carry is checked before it is sent (an answer holding another patient's data is a 403).
Refusals are OperationOutcomes with ``WWW-Authenticate``; a refused request reaches no handler, so nothing is
written. ``/metadata`` gains ``rest.security`` (SMART-on-FHIR, the issuer's endpoints) and the server serves
the SMART configuration that clients discover.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import jsonpatch
import orjson
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medagent.fhir.auth.discovery import OpenIdConfiguration, openid_configuration
from medagent.fhir.auth.jwks import InvalidToken, JwksCache, verify_jwt
from medagent.fhir.errors import FhirClientError
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.patient_compartment import outside_compartment, search_limited_to
from medagent.fhir.server.smart_scopes import PERMISSIONS, Grant, Permission, parse_scopes, scope_name

if TYPE_CHECKING:
    from medagent.fhir.server.app import FhirApp

SMART_CONFIGURATION = "/.well-known/smart-configuration"
FHIR_JSON = "application/fhir+json; charset=utf-8"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "sso-openid-connect",
]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPERATOR_OPERATIONS = ("$snapshot", "$reset", "$diff")
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


class AccessTokenPolicy(BaseModel):
    """Which tokens the server accepts: signed by ``issuer`` (keys at ``jwks_url``, default: the issuer's
    OpenID discovery), for ``audience`` (the base URL clients use), unexpired within ``leeway_s``."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: str | None = None
    leeway_s: float = Field(10.0, ge=0, le=300)


class Refusal(Exception):
    """A request refused before (or an answer withheld after) the handler: 400, 401, 403 or 503."""

    def __init__(
        self, status: int, message: str, *, error: str | None = None, scope: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.error, self.scope, self.code = status, message, error, scope, code

    def parts(self, realm: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        body = orjson.dumps(FhirError(self.status, self.message, code=self.code).outcome())
        headers = [(b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(body)).encode())]
        if self.status in (401, 403):
            challenge = f'Bearer realm="{realm}"'
            if self.error:
                challenge += f', error="{self.error}", error_description="{_quotable(self.message)}"'
            if self.scope:
                challenge += f', scope="{self.scope}"'
            headers.append((b"www-authenticate", challenge.encode()))
        return self.status, body, headers


def _quotable(text: str) -> str:
    return re.sub(r'[^\x20-\x7e]|["\\]', "'", text)[:300]


@dataclass(frozen=True)
class Operation:
    """One interaction a request asks for: a permission on a type, and what limits a patient scope checks."""

    permissions: tuple[Permission, ...]  # any one of them suffices
    resource_type: str  # "*": every type (history of the whole server, $everything)
    resource_id: str | None = None
    search: tuple[tuple[str, str], ...] | None = None  # a search that must be limited to the patient
    resource: Any = None  # a resource to be written
    patch: Any = None  # JSON Patch operations on resource_id
    across_patients: bool = False  # type or system history: no patient limit can apply
    conditional_patch: bool = False
    operator: bool = False  # snapshot, reset, diff: the whole server's state

    @property
    def reads(self) -> bool:
        return bool({"r", "s"} & set(self.permissions))


@dataclass
class TokenAccess:
    """What a verified token allows: its grants and, for ``patient/`` scopes, its patient."""

    grants: list[Grant]
    patient: str | None
    subject: str = ""

    def limited(self, permissions: Sequence[Permission], resource_type: str) -> bool:
        """False: a user/ or system/ scope allows it; True: only a patient/ scope does; else a 403."""
        for permission in permissions:
            if any(g.context != "patient" and g.covers(permission, resource_type) for g in self.grants):
                return False
        for permission in permissions:
            if any(g.context == "patient" and g.covers(permission, resource_type) for g in self.grants):
                if self.patient is None:
                    raise Refusal(
                        403,
                        "the token's patient/ scopes need a patient context, and it has none (no 'patient' claim)",
                        error="insufficient_scope",
                    )
                return True
        wanted = " or ".join(scope_name("patient", p, resource_type) for p in permissions)
        what = "every resource type" if resource_type == "*" else resource_type
        raise Refusal(
            403,
            f"the token's scopes do not allow {_verbs(permissions)} {what} (a scope such as {wanted} would)",
            error="insufficient_scope",
            scope=" ".join(scope_name("patient", p, resource_type) for p in permissions),
        )

    def system_wide(self) -> bool:
        return all(any(g.context == "system" and g.covers(p, "*") for g in self.grants) for p in PERMISSIONS)  # type: ignore[arg-type]


_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def _verbs(permissions: Sequence[Permission]) -> str:
    return " or ".join(_VERBS[p] for p in permissions)


def classify(method: str, path: str, params: list[tuple[str, str]], body: Any) -> list[Operation]:
    """The interactions one request (or each entry of a batch/transaction Bundle) performs; a request this
    server does not know how to authorize is refused (default deny)."""
    method = "GET" if method == "HEAD" else method
    parts = [p for p in path.split("/") if p]
    if not parts:
        if method == "POST":
            return _bundle_operations(body)
        raise Refusal(405, f"{method} / is not an interaction of this server")
    head = parts[0]
    if head not in OPERATOR_OPERATIONS and head != "_history" and not _RESOURCE_TYPE.match(head):
        raise Refusal(403, f"{method} {path} is not an interaction this server authorizes with SMART scopes")
    if len(parts) == 1:
        if head == "_history" and method == "GET":
            return [Operation(("r",), "*", across_patients=True)]
        if head in OPERATOR_OPERATIONS:
            return [Operation(("c", "r", "u", "d", "s"), "*", operator=True)]
        searched = tuple(params)
        by_method = {
            "GET": Operation(("s",), head, search=searched),
            "POST": Operation(("c",), head, resource=body),
            "PUT": Operation(("u",), head, search=searched, resource=body),
            "DELETE": Operation(("d",), head, search=searched),
            "PATCH": Operation(("u",), head, search=searched, patch=body, conditional_patch=True),
        }
        if method in by_method:
            return [by_method[method]]
    elif len(parts) == 2:
        second = parts[1]
        if second == "_search" and method == "POST":
            form = parse_qsl(body, keep_blank_values=True) if isinstance(body, str) else []
            return [Operation(("s",), head, search=(*params, *form))]
        if second == "_history" and method == "GET":
            return [Operation(("r",), head, across_patients=True)]
        if second == "$validate" and method == "POST":
            return [Operation(("c", "u"), head)]
        if second == "$lastn" and method == "GET":
            return [Operation(("s",), head, search=tuple(params))]
        if second == "$everything" and method == "GET":  # every patient's everything
            return [Operation(("r",), "*", across_patients=True), Operation(("s",), "*", across_patients=True)]
        if not second.startswith("$"):
            by_method = {
                "GET": Operation(("r",), head, second),
                "PUT": Operation(("u",), head, second, resource=body),
                "PATCH": Operation(("u",), head, second, patch=body),
                "DELETE": Operation(("d",), head, second),
            }
            if method in by_method:
                return [by_method[method]]
    elif method == "GET" and parts[2] == "_history" and len(parts) <= 4:
        return [Operation(("r",), head, parts[1])]
    elif method == "GET" and head == "Patient" and len(parts) == 3 and parts[2] == "$everything":
        # everything about one patient: every type, limited to that patient
        return [Operation(("r",), "*"), Operation(("s",), "*", search=(("patient", parts[1]),))]
    elif method == "GET" and len(parts) == 3 and _RESOURCE_TYPE.match(parts[2]):
        # compartment search GET /Patient/{id}/{type}: a search of type within that patient's data
        within = (("patient", parts[1]),) if head == "Patient" else ()
        return [Operation(("s",), parts[2], search=(*within, *params))]
    elif len(parts) == 3 and parts[2] == "$validate" and method == "POST":
        return [Operation(("c", "u"), head)]
    raise Refusal(403, f"{method} {path} is not an interaction this server authorizes with SMART scopes")


def _bundle_operations(body: Any) -> list[Operation]:
    if not isinstance(body, dict) or not isinstance(body.get("entry", []), list):
        raise Refusal(400, "POST / expects a batch or transaction Bundle")
    operations: list[Operation] = []
    for index, entry in enumerate(body.get("entry") or []):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            raise Refusal(400, f"Bundle.entry[{index}].request.url is missing")
        url = urlsplit(request["url"])
        entry_params = parse_qsl(url.query, keep_blank_values=True)
        try:
            operations += classify(
                str(request.get("method", "")).upper(), url.path, entry_params, entry.get("resource")
            )
        except Refusal as refusal:
            raise Refusal(
                refusal.status, f"Bundle.entry[{index}]: {refusal.message}", error=refusal.error, scope=refusal.scope
            ) from None
    return operations


class SmartAccess:
    """ASGI middleware enforcing :class:`AccessTokenPolicy` and SMART scopes in front of the FHIR routes."""

    def __init__(self, app: ASGIApp, policy: AccessTokenPolicy, fhir: FhirApp, realm: str = "medagent-fhir") -> None:
        self.app = app
        self.policy = policy
        self.fhir = fhir
        self.realm = realm
        self._issuer: OpenIdConfiguration | None = None
        self._keys: JwksCache | None = None
        self._lock = asyncio.Lock()

    async def issuer(self) -> OpenIdConfiguration:
        """The issuer's discovery document (fetched once)."""
        async with self._lock:
            if self._issuer is None:
                try:
                    self._issuer = await openid_configuration(self.policy.issuer)
                except FhirClientError as exc:
                    raise Refusal(503, f"cannot check access tokens now: {exc}", code="transient") from None
            return self._issuer

    async def keys(self) -> JwksCache:
        if self._keys is None:
            url = self.policy.jwks_url or (await self.issuer()).jwks_uri
            self._keys = JwksCache(url)
        return self._keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == SMART_CONFIGURATION and method in ("GET", "HEAD"):
                await _send_json(send, 200, await self.smart_configuration(), "application/json")
                return
            if path == "/metadata" and method in ("GET", "HEAD"):
                await self.app(scope, receive, await self._with_security(send))
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            access = await self.authenticate(headers.get("authorization", ""))
            body, receive = await _buffered(method, headers, receive)
            params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            operations = classify(method, path, params, body)
            limited = await self.authorize(access, operations)
        except Refusal as refusal:
            await _send_refusal(send, refusal, self.realm)
            return
        reads = any(op.reads for op in operations)
        if reads or limited:  # a limited write's answer too: a conditional create may find another's resource
            send = self._checking_answer(send, access, reads=reads)
        await self.app(scope, receive, send)

    async def authenticate(self, authorization: str) -> TokenAccess:
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            raise Refusal(
                401, "this server needs an access token: Authorization: Bearer <SMART access token>", code="login"
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(
                401, "the Authorization header must be 'Bearer <access token>'", error="invalid_request", code="login"
            )
        try:
            claims = await verify_jwt(
                token.strip(),
                await self.keys(),
                issuer=self.policy.issuer,
                audience=self.policy.audience,
                leeway_s=self.policy.leeway_s,
            )
        except InvalidToken as exc:
            expired = "expired" in str(exc)
            raise Refusal(
                401, f"access token refused: {exc}", error="invalid_token", code="expired" if expired else "login"
            ) from None
        except FhirClientError as exc:
            raise Refusal(503, f"cannot check access tokens now: {exc}", code="transient") from None
        scope_claim = claims.get("scope", "")
        scopes = scope_claim if isinstance(scope_claim, str) else " ".join(map(str, scope_claim))
        patient = claims.get("patient")
        return TokenAccess(
            parse_scopes(scopes),
            str(patient) if patient else None,
            str(claims.get("sub") or claims.get("client_id") or ""),
        )

    async def authorize(self, access: TokenAccess, operations: list[Operation]) -> bool:
        """Scopes for every operation; for patient-limited ones, the patient limits (before anything runs).
        True when a patient/ scope (not a user/ or system/ one) allowed some operation."""
        if any(op.operator for op in operations):
            if not access.system_wide():
                raise Refusal(
                    403,
                    "snapshot, reset and diff act on the whole server: they need a system/*.cruds token",
                    error="insufficient_scope",
                    scope="system/*.cruds",
                )
            return False
        limited = [(op, access.limited(op.permissions, op.resource_type)) for op in operations]
        writes = [op for op, lim in limited if lim and not op.reads]
        if len(operations) > 1 and writes and any(op.reads for op, lim in limited if lim):
            raise Refusal(
                403,
                "under a patient/ scope a Bundle may read or write, not both: its reads are "
                "checked in the answer, which comes after its writes",
                error="insufficient_scope",
            )
        for op, lim in limited:
            if lim:
                assert access.patient is not None
                await self._within_patient(op, access.patient)
        return any(lim for _, lim in limited)

    async def _within_patient(self, op: Operation, patient: str) -> None:
        where = f"{op.resource_type}/{op.resource_id}" if op.resource_id else op.resource_type
        if op.across_patients:
            raise Refusal(
                403,
                f"the history of {'the whole server' if op.resource_type == '*' else where} spans "
                "patients; a patient/ scope allows a resource's own history only",
                error="insufficient_scope",
            )
        if op.conditional_patch:
            raise Refusal(
                403,
                "a conditional PATCH is not allowed under a patient/ scope; PATCH Type/id instead",
                error="insufficient_scope",
            )
        if op.search is not None and not search_limited_to(op.resource_type, op.search, patient):
            limit = "_id" if op.resource_type == "Patient" else "patient"
            raise Refusal(
                403,
                f"under a patient/ scope a search of {op.resource_type} must be limited to the "
                f"patient in context: add {limit}={patient}",
                error="insufficient_scope",
            )
        if op.resource_type == "Patient" and op.resource_id is not None and op.resource_id != patient:
            raise Refusal(403, f"Patient/{op.resource_id} is not the patient in context", error="insufficient_scope")
        if op.resource is not None:
            if not isinstance(op.resource, dict):
                raise Refusal(400, f"the body of a write to {where} is not a FHIR resource")
            problem = outside_compartment({**op.resource, "id": op.resource.get("id") or op.resource_id}, patient)
            if problem:
                raise Refusal(
                    403, f"this write is not about the patient in context: {problem}", error="insufficient_scope"
                )
        if op.resource_id is not None and (op.resource is not None or op.patch is not None or op.permissions == ("d",)):
            await self._current_within(op, patient)

    async def _current_within(self, op: Operation, patient: str) -> None:
        """An update, patch or delete may only change a resource that is this patient's (and stays theirs)."""
        assert op.resource_id is not None
        stored = await self.fhir.reading(self.fhir.store.read, op.resource_type, op.resource_id)
        if stored is None or stored.deleted or stored.body is None:
            return
        problem = outside_compartment(stored.body, patient)
        if problem:
            raise Refusal(
                403,
                f"{op.resource_type}/{op.resource_id} is not the patient in context's: {problem}",
                error="insufficient_scope",
            )
        if op.patch is not None and isinstance(op.patch, list):
            try:
                patched = jsonpatch.JsonPatch(op.patch).apply(stored.body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, AttributeError):
                return  # the handler refuses the same patch (400/422): nothing is written
            problem = outside_compartment(patched, patient) if isinstance(patched, dict) else None
            if problem:
                raise Refusal(
                    403,
                    f"this patch would move {op.resource_type}/{op.resource_id} away from the patient "
                    f"in context: {problem}",
                    error="insufficient_scope",
                )

    def _checking_answer(self, send: Send, access: TokenAccess, *, reads: bool) -> Send:
        """``send`` that holds a successful answer until every resource in it is one the token may see (``reads``:
        its type must be readable too; a write's answer is checked for the patient only)."""
        held: list[Message] = []

        async def checking(message: Message) -> None:
            held.append(message)
            if message["type"] != "http.response.body" or message.get("more_body"):
                return
            start = held[0]
            body = b"".join(m.get("body", b"") for m in held[1:])
            refusal = _answer_refusal(body, access, reads=reads) if 200 <= start["status"] < 300 else None
            if refusal is not None:
                await _send_refusal(send, refusal, self.realm)
                return
            for item in held:
                await send(item)

        return checking

    async def _with_security(self, send: Send) -> Send:
        """``send`` adding ``rest.security`` to the CapabilityStatement."""
        security = await self._security()
        held: list[Message] = []

        async def adding(message: Message) -> None:
            held.append(message)
            if message["type"] != "http.response.body" or message.get("more_body"):
                return
            start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
            if start["status"] == 200 and body:
                statement = orjson.loads(body)
                for rest in statement.get("rest", []):
                    rest["security"] = security
                body = orjson.dumps(statement)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        return adding

    async def _security(self) -> dict[str, Any]:
        issuer = await self.issuer()
        uris = [
            {"url": name, "valueUri": value}
            for name, value in (("authorize", issuer.authorization_endpoint), ("token", issuer.token_endpoint))
            if value
        ]
        return {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ],
                    "text": "OAuth2 using SMART-on-FHIR profile",
                }
            ],
            "extension": [{"url": OAUTH_URIS, "extension": uris}],
            "description": f"SMART App Launch 2.x and Backend Services: JWT access tokens from {self.policy.issuer} "
            f"for audience {self.policy.audience}; v2 scopes per interaction and type; "
            "patient/ scopes limited to the token's patient.",
        }

    async def smart_configuration(self) -> dict[str, Any]:
        """``.well-known/smart-configuration``: where to get tokens for this server, and what it enforces."""
        issuer = await self.issuer()
        return {
            "issuer": issuer.issuer,
            "jwks_uri": issuer.jwks_uri,
            "authorization_endpoint": issuer.authorization_endpoint,
            "token_endpoint": issuer.token_endpoint,
            "grant_types_supported": [
                g
                for g in issuer.grant_types_supported
                if g in ("authorization_code", "client_credentials", "refresh_token")
            ],
            "token_endpoint_auth_methods_supported": issuer.token_endpoint_auth_methods_supported,
            "token_endpoint_auth_signing_alg_values_supported": issuer.token_endpoint_auth_signing_alg_values_supported,
            "scopes_supported": [
                "openid",
                "fhirUser",
                "launch",
                "launch/patient",
                "offline_access",
                "online_access",
                "patient/*.cruds",
                "user/*.cruds",
                "system/*.cruds",
                "patient/*.rs",
                "user/*.rs",
                "system/*.rs",
            ],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": CAPABILITIES,
        }


def _answer_refusal(body: bytes, access: TokenAccess, *, reads: bool) -> Refusal | None:
    """Why the token may not see an answer (a resource, or a Bundle's resources), or None."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    for resource in _carried(answer):
        resource_type = str(resource.get("resourceType"))
        if resource_type == "OperationOutcome":
            continue
        try:
            limited = access.limited(("r", "s"), resource_type) if reads else access.patient is not None
        except Refusal as refusal:
            return Refusal(
                403,
                f"the answer holds {resource_type} resources: {refusal.message}",
                error="insufficient_scope",
                scope=refusal.scope,
            )
        if limited:
            assert access.patient is not None
            problem = outside_compartment(resource, access.patient)
            if problem:
                return Refusal(
                    403,
                    f"the answer holds data of another patient ({problem}); a patient/ scope "
                    "allows the patient in context only",
                    error="insufficient_scope",
                )
    return None


def _carried(answer: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(answer, dict):
        return
    if answer.get("resourceType") == "Bundle":
        for entry in answer.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield from _carried(entry["resource"])
        return
    yield answer


async def _buffered(method: str, headers: dict[str, str], receive: Receive) -> tuple[Any, Receive]:
    """The request body (JSON, or the form text of ``_search``) read once, and a ``receive`` that replays it."""
    if method not in WRITES:
        return None, receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    content_type = headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return raw.decode("utf-8", "replace"), replay
    try:
        return (orjson.loads(raw) if raw else None), replay
    except orjson.JSONDecodeError:
        return None, replay  # the handler answers the malformed body with its own 400


async def _send_refusal(send: Send, refusal: Refusal, realm: str) -> None:
    status, body, headers = refusal.parts(realm)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, body: dict[str, Any], media_type: str) -> None:
    raw = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
