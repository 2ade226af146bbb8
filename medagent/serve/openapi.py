"""The OpenAPI 3.1 document of the serve API, built from the endpoint table and the pydantic schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from medagent.serve.schemas import ApiErrorBody

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Endpoint:
    """One API operation: what the router serves and what the schema says about it."""

    method: str
    path: str
    summary: str
    handler: Any
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    media: str = "application/json"
    tags: tuple[str, ...] = field(default=("runs",))


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    models = {m for e in endpoints for m in (e.body, e.response) if m is not None} | {ApiErrorBody}
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)], ref_template=REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "tags": list(endpoint.tags),
            "operationId": endpoint.handler.__name__,
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_names(endpoint.path)
        ]
        parameters += [
            {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
            for name, text in endpoint.query
        ]
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=endpoint.body.__name__)}}},
            }
        if endpoint.media == "application/json" and endpoint.response is not None:
            content = {"application/json": {"schema": {"$ref": REF.format(model=endpoint.response.__name__)}}}
        else:
            content = {endpoint.media: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(endpoint.status): {"description": "OK", "content": content}}
        for status in (*endpoint.errors, 401):
            responses[str(status)] = {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiErrorBody")}}},
            }
        operation["responses"] = responses
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
