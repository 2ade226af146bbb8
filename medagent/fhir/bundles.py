"""Preparing Synthea transaction bundles for loading into any FHIR server.

Synthea writes ``POST`` entries, and FHIR create assigns new ids. To keep the bundle's ids (so
scenario provenance like ``Observation/<id>`` stays valid on every server), each entry becomes
an update-as-create ``PUT Type/id``; ``urn:uuid:`` references are resolved by the server.
"""

from __future__ import annotations

from typing import Any


def as_upsert_transaction(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same transaction with ``PUT Type/id`` entries that keep every resource's own id."""
    entries = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if rtype and rid:
            entries.append({**entry, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}})
        else:
            entries.append(entry)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def count_resources(bundle: dict[str, Any]) -> int:
    return sum(1 for entry in bundle.get("entry", []) if entry.get("resource"))
