"""Talking FHIR: the one async client, its typed errors, and the embedded server (``medagent.fhir.server``)."""

from medagent.fhir.client import BearerAuth, FhirClient
from medagent.fhir.errors import (
    FhirClientError,
    FhirConflict,
    FhirGone,
    FhirInvalid,
    FhirNotFound,
    FhirOperationError,
    FhirServerError,
    FhirTransportError,
    FhirUnsafeLinkError,
)
from medagent.fhir.resources import parse_resource, resource_json

__all__ = [
    "BearerAuth",
    "FhirClient",
    "FhirClientError",
    "FhirConflict",
    "FhirGone",
    "FhirInvalid",
    "FhirNotFound",
    "FhirOperationError",
    "FhirServerError",
    "FhirTransportError",
    "FhirUnsafeLinkError",
    "parse_resource",
    "resource_json",
]
