"""Audit tags are append-only: a write keeps the audit trail (actor/run tags, audit extensions) of the version it replaces.

The write tools stamp each resource they create with ``meta.tag`` entries of the audit systems and an
audit extension (:mod:`medagent.vocabulary`). A later PUT, PATCH or transaction entry that drops or
changes them would erase who wrote the record, so :func:`keep_audit_trail` carries the prior entries
into the new version (new audit entries may be added beside them; none is ever removed).
"""

from __future__ import annotations

from typing import Any

from medagent.vocabulary import AUDIT_EXTENSION_URL, AUDIT_TAG_SYSTEMS


def audit_tags(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t
        for t in (body.get("meta") or {}).get("tag", [])
        if isinstance(t, dict) and t.get("system") in AUDIT_TAG_SYSTEMS
    ]


def audit_extensions(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in body.get("extension", []) if isinstance(e, dict) and e.get("url") == AUDIT_EXTENSION_URL]


def keep_audit_trail(prior: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with every audit tag and audit extension of ``prior`` that it lacks put back (a copy when any is)."""
    lost_tags = [t for t in audit_tags(prior) if t not in audit_tags(new)]
    lost_extensions = [e for e in audit_extensions(prior) if e not in audit_extensions(new)]
    if not lost_tags and not lost_extensions:
        return new
    kept = dict(new)
    if lost_tags:
        meta = dict(new.get("meta") or {})
        meta["tag"] = [*meta.get("tag", []), *lost_tags]
        kept["meta"] = meta
    if lost_extensions:
        kept["extension"] = [*new.get("extension", []), *lost_extensions]
    return kept
