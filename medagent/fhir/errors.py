"""Typed errors of the FHIR client: a server's OperationOutcome becomes an exception with its message."""

from __future__ import annotations

from typing import Any


class FhirClientError(Exception):
    """Base class for everything the FHIR client raises."""


class FhirTransportError(FhirClientError):
    """The server could not be reached or kept timing out after the allowed retries."""


class FhirUnsafeLinkError(FhirClientError):
    """A paging link points outside the client's base URL; following it could leak credentials."""


class FhirOperationError(FhirClientError):
    """The server answered with an error status (usually carrying an OperationOutcome)."""

    def __init__(self, status: int, message: str, outcome: dict[str, Any] | None = None, url: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.outcome = outcome
        self.url = url

    @property
    def issues(self) -> list[dict[str, Any]]:
        return list((self.outcome or {}).get("issue", []))

    @property
    def expressions(self) -> list[str]:
        return [e for issue in self.issues for e in issue.get("expression", [])]


class FhirNotFound(FhirOperationError):
    """404: no such resource (or type)."""


class FhirGone(FhirOperationError):
    """410: the resource was deleted."""


class FhirInvalid(FhirOperationError):
    """400/422: the request or the resource is invalid."""


class FhirConflict(FhirOperationError):
    """409/412: version conflict or an ambiguous conditional request."""


class FhirForbidden(FhirOperationError):
    """401/403: not allowed."""


class FhirServerError(FhirOperationError):
    """5xx after retries."""


def error_for_status(status: int, message: str, outcome: dict[str, Any] | None, url: str) -> FhirOperationError:
    cls: type[FhirOperationError]
    if status == 404:
        cls = FhirNotFound
    elif status == 410:
        cls = FhirGone
    elif status in (400, 422):
        cls = FhirInvalid
    elif status in (409, 412):
        cls = FhirConflict
    elif status in (401, 403):
        cls = FhirForbidden
    elif status >= 500:
        cls = FhirServerError
    else:
        cls = FhirOperationError
    return cls(status, message, outcome, url)


def outcome_message(outcome: dict[str, Any] | None, fallback: str) -> str:
    """The diagnostics of an OperationOutcome's issues, joined; else the fallback text."""
    if not outcome or outcome.get("resourceType") != "OperationOutcome":
        return fallback
    texts = []
    for issue in outcome.get("issue", []):
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
        if text:
            texts.append(str(text))
    return "; ".join(texts) or fallback
