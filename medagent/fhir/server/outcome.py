"""FHIR errors as OperationOutcome: one exception type the whole server raises for user mistakes."""

from __future__ import annotations

from typing import Any

import orjson

_CODE_BY_STATUS = {
    400: "invalid",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
}


class FhirError(Exception):
    """A request the server refuses, carried back to the client as an OperationOutcome."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: list[str] | None = None,
        issues: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or _CODE_BY_STATUS.get(status, "exception")
        self.expression = expression
        self.extra_issues = issues or []

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return operation_outcome([issue, *self.extra_issues])


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}


def information(diagnostics: str) -> dict[str, Any]:
    return operation_outcome([{"severity": "information", "code": "informational", "diagnostics": diagnostics}])


def outcome_body(status: int, message: str) -> tuple[bytes, str]:
    """A refusal of the server's request guard as the FHIR server gives every error: an OperationOutcome."""
    return orjson.dumps(FhirError(status, message).outcome()), "application/fhir+json; charset=utf-8"
