"""The CapabilityStatement: generated from the search parameter registry, so it cannot drift."""

from __future__ import annotations

from typing import Any

from medagent.fhir.server.compartment import COMPARTMENT_DEFINITION, NOT_INDEXED, PATIENT_COMPARTMENT
from medagent.fhir.server.search_params import PARAMS
from medagent.fhir.server.store import now_instant
from medagent.version import __version__

_PREFER = "Prefer: return=minimal | representation (the default) | OperationOutcome"
_INTERACTIONS = [
    {"code": "read"},
    {"code": "vread"},
    {"code": "search-type", "documentation": "also GET /Patient/<id>/<type> for the types in the Patient compartment"},
    {"code": "create", "documentation": _PREFER},
    {"code": "update", "documentation": _PREFER},
    {
        "code": "patch",
        "documentation": "JSON Patch; conditional patch PATCH /<type>?<search> patches the one match "
        f"(none: 404, several: 412); {_PREFER}",
    },
    {"code": "delete"},
    {"code": "history-instance"},
    {"code": "history-type"},
]
_VALIDATE = {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
_LASTN = {"name": "lastn", "definition": "http://hl7.org/fhir/OperationDefinition/Observation-lastn"}
_EVERYTHING = {
    "name": "everything",
    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "documentation": "GET /Patient/$everything and /Patient/<id>/$everything with _since, _type, _count "
    "(paged by next links); start/end are refused",
}


def capability_statement(base_url: str) -> dict[str, Any]:
    resources = []
    for resource_type, params in sorted(PARAMS.items()):
        resources.append(
            {
                "type": resource_type,
                "versioning": "versioned",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "interaction": _INTERACTIONS,
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                    *({"name": p.name, "type": p.kind} for p in params),
                ],
                "searchInclude": [f"{resource_type}:{p.name}" for p in params if p.kind == "reference"],
                "searchRevInclude": sorted(
                    f"{source}:{p.name}"
                    for source, source_params in PARAMS.items()
                    for p in source_params
                    if p.kind == "reference" and (not p.targets or resource_type in p.targets)
                ),
                "operation": [
                    _VALIDATE,
                    *([_LASTN] if resource_type == "Observation" else []),
                    *([_EVERYTHING] if resource_type == "Patient" else []),
                ],
            }
        )
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
        "rest": [
            {
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
                    "_format/Accept values get 406. PATCH takes JSON Patch (application/json-patch+json), also as a "
                    "conditional patch (PATCH /Type?search). Creates, updates and patches honour Prefer: return=minimal, "
                    "representation or OperationOutcome. Compartment search: GET /Patient/<id>/<type> for "
                    f"{', '.join(sorted(PATIENT_COMPARTMENT))}; membership by the CompartmentDefinition's parameters "
                    "this server indexes (not by " + _not_indexed() + "). A batch may hold GET entries (read, vread, "
                    "search, compartment search, $everything); a transaction may hold reads but not searches."
                ),
                "resource": resources,
                "compartment": [COMPARTMENT_DEFINITION],
                "interaction": [
                    {"code": "transaction", "documentation": "GET entries: reads only, no searches"},
                    {
                        "code": "batch",
                        "documentation": "GET entries: read, vread, search, compartment search, $everything, $lastn",
                    },
                    {"code": "history-system"},
                ],
                "searchParam": [{"name": "_has", "type": "special"}],
                "operation": [
                    _VALIDATE,
                    {"name": "snapshot", "definition": "urn:medagent:operation:snapshot"},
                    {"name": "reset", "definition": "urn:medagent:operation:reset"},
                    {"name": "diff", "definition": "urn:medagent:operation:diff"},
                ],
            }
        ],
    }


def _not_indexed() -> str:
    return "; ".join(f"{rtype}.{', '.join(names)}" for rtype, names in sorted(NOT_INDEXED.items()) if names)
