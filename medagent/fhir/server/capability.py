"""The CapabilityStatement: generated from the search parameter registry, so it cannot drift."""

from __future__ import annotations

from typing import Any

from medagent import __version__
from medagent.fhir.server.search_params import PARAMS
from medagent.fhir.server.store import now_instant

_INTERACTIONS = ["read", "vread", "search-type", "create", "update", "delete"]


def capability_statement(base_url: str) -> dict[str, Any]:
    resources = []
    for resource_type, params in sorted(PARAMS.items()):
        resources.append({
            "type": resource_type,
            "versioning": "versioned",
            "readHistory": False,
            "updateCreate": True,
            "conditionalCreate": True,
            "interaction": [{"code": code} for code in _INTERACTIONS],
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
                *({"name": p.name, "type": p.kind} for p in params),
            ],
            "searchInclude": [f"{resource_type}:{p.name}" for p in params if p.kind == "reference"],
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now_instant(),
        "kind": "instance",
        "software": {"name": "medagent embedded FHIR server", "version": __version__},
        "implementation": {"description": "medagent embedded FHIR R4 server (SQLite)", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": (
                "Searches are lenient by default (unknown parameters ignored and left out of Bundle.link self); "
                "send 'Prefer: handling=strict' or start with --strict to get 400 instead. Other resource types "
                "known to FHIR R4 can be stored and read. Paging uses _count (max 1000) and _offset."
            ),
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "operation": [
                {"name": "snapshot", "definition": "urn:medagent:operation:snapshot"},
                {"name": "reset", "definition": "urn:medagent:operation:reset"},
                {"name": "diff", "definition": "urn:medagent:operation:diff"},
            ],
        }],
    }
