"""fhir.resources R4B models: parsing server JSON into typed resources and back.

R4B models are used because Synthea and most production servers speak R4; the default R5
models reject R4 content such as ``Encounter.class`` as a single Coding.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel


def parse_resource(data: dict[str, Any]) -> BaseModel:
    """Validate JSON into its R4B model class, chosen by ``resourceType``."""
    return get_fhir_model_class(data["resourceType"]).model_validate(data)


def resource_json(resource: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """JSON-ready dict of a model (by FHIR alias) or a dict passed through."""
    if isinstance(resource, dict):
        return resource
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)
