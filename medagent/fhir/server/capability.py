"""The CapabilityStatement: generated from the search parameter registry, so it cannot drift."""

from __future__ import annotations

from typing import Any

from medagent.fhir.server.search_params import PARAMS
from medagent.fhir.server.store import now_instant
from medagent.version import __version__

_INTERACTIONS = ["read", "vread", "search-type", "create", "update", "patch", "delete", "history-instance",
                 "history-type"]
_VALIDATE = {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
_LASTN = {"name": "lastn", "definition": "http://hl7.org/fhir/OperationDefinition/Observation-lastn"}


def capability_statement(base_url: str) -> dict[str, Any]:
    resources = []
    for resource_type, params in sorted(PARAMS.items()):
        resources.append({
            "type": resource_type,
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "interaction": [{"code": code} for code in _INTERACTIONS],
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
                *({"name": p.name, "type": p.kind} for p in params),
            ],
            "searchInclude": [f"{resource_type}:{p.name}" for p in params if p.kind == "reference"],
            "searchRevInclude": sorted(
                f"{source}:{p.name}" for source, source_params in PARAMS.items() for p in source_params
                if p.kind == "reference" and (not p.targets or resource_type in p.targets)),
            "operation": [_VALIDATE, *([_LASTN] if resource_type == "Observation" else [])],
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
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": (
                "Searches are lenient by default (unknown parameters ignored, left out of Bundle.link self and "
                "reported in a search.mode=outcome entry); send 'Prefer: handling=strict' or start with --strict "
                "to get 400 instead. Parameters that would filter but are not implemented (standard R4 parameters "
                "of the type, any parameter on a type without search parameters here, chained parameters, "
                "_filter, _query, _list, _text, _content, _tag, _profile, _security, _source, _type) are refused "
                "even when lenient. _has works one level deep (_has:Type:reference-param:param=value). "
                "Conditional update/delete searches are always strict. Other resource types known to FHIR R4 "
                "can be stored and read. Paging uses _count (max 1000) and _offset. JSON only: other "
                "_format/Accept values get 406. PATCH takes JSON Patch (application/json-patch+json)."
            ),
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "searchParam": [{"name": "_has", "type": "special"}],
            "operation": [
                _VALIDATE,
                {"name": "snapshot", "definition": "urn:medagent:operation:snapshot"},
                {"name": "reset", "definition": "urn:medagent:operation:reset"},
                {"name": "diff", "definition": "urn:medagent:operation:diff"},
            ],
        }],
    }
