"""Every error the API gives is one JSON shape: ``{"error": code, "message": what was wrong}``."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def describe(exc: ValidationError) -> str:
    """'question: String should have at least 1 character; now: ...' — each field named."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "body"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


async def json_object(request: Request, *, not_object: tuple[int, str]) -> dict[str, Any]:
    """The request body as a JSON object: invalid JSON is a 400; anything but an object is ``not_object``
    (status, message)."""
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ApiError(not_object[0], "invalid_body", not_object[1])
    return data
