"""``Patient/$everything`` and ``Patient/{id}/$everything``: a patient's compartment (every patient's at type
level) and the shared resources it references, as a paged searchset Bundle.

What is returned: the Patient, every resource in its compartment (compartment.py), and the resources of
types outside any patient compartment (Practitioner, Organization, Medication) that those reference through
an indexed reference parameter. Parameters: ``_since`` (updated after, as in ``_history``), ``_type``
(comma-separated types), ``_count`` (page size) and ``_offset`` (what the paging links carry). ``start`` and
``end`` (the clinical date window) are refused: ignoring them would return more than was asked for.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from medagent.fhir.server.compartment import SHARED_TYPES, members_sql
from medagent.fhir.server.history import offset_links, since_instant
from medagent.fhir.server.limits import MAX_OFFSET, plain_int
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search import (
    DEFAULT_COUNT,
    MAX_COUNT,
    bundle_entry,
    live_patient,
)
from medagent.fhir.server.store import Store, now_instant
from medagent.fhir.server.validation import check_resource_type

_IGNORED = ("_format", "_pretty")


def everything(store: Store, patient_id: str | None, params: list[tuple[str, str]], *, base_url: str) -> dict[str, Any]:
    """The searchset Bundle of one page; ``patient_id`` None: every patient (``GET /Patient/$everything``)."""
    since_text, since, types, count, offset = None, None, None, DEFAULT_COUNT, 0
    for name, value in params:
        if name == "_since":
            since_text, since = value, since_instant(value)
        elif name == "_type":
            types = [t.strip() for t in value.split(",") if t.strip()]
            if not types:
                raise FhirError(400, "_type is empty; name resource types, e.g. _type=Condition,Observation")
            for rtype in types:
                check_resource_type(rtype)
        elif name in ("_count", "_offset"):
            number = plain_int(name, value, maximum=None if name == "_count" else MAX_OFFSET)
            if name == "_count":
                count = max(1, min(number, MAX_COUNT))
            else:
                offset = number
        elif name in ("start", "end"):
            raise FhirError(
                400,
                f"$everything parameter {name!r} (the care date window) is not supported by this "
                "server; use _since (last updated) or _type, or search the types with date=",
            )
        elif name not in _IGNORED:
            raise FhirError(400, f"$everything parameter {name!r} is not supported; use _since, _type, _count")
    members, member_args = members_sql(patient_id)
    shared_marks = ",".join("?" * len(SHARED_TYPES))
    referenced = (
        "SELECT t.rid FROM idx_ref x JOIN resource t ON t.type = substr(x.ref, 1, instr(x.ref, '/') - 1) "
        "AND t.id = substr(x.ref, instr(x.ref, '/') + 1) "
        f"WHERE x.rid IN (SELECT rid FROM members) AND substr(x.ref, 1, instr(x.ref, '/') - 1) IN ({shared_marks})"
    )
    where, args = ["r.deleted = 0"], []
    if since is not None:
        where.append("r.last_updated >= ?")
        args.append(since)
    if types is not None:
        where.append(f"r.type IN ({','.join('?' * len(types))})")
        args += types
    members_cte = f"WITH members(rid) AS ({members}) "
    matching = (
        f"SELECT {{columns}} FROM resource r WHERE r.rid IN (SELECT rid FROM members UNION {referenced}) "
        f"AND {' AND '.join(where)}"
    )
    sql_args = [*member_args, *SHARED_TYPES, *args]
    with store.reading():
        if patient_id is not None:
            live_patient(store, patient_id)
        # the count over a LIMIT -1 subquery and the sort key a result column: shapes SQLite also plans well
        # over a slot's union views (slots.py; search.count_sql)
        total = int(
            store.query_one(
                members_cte + f"SELECT COUNT(*) FROM ({matching.format(columns='r.rid')} LIMIT -1)", sql_args
            )[0]  # type: ignore[index]
        )
        rows = [
            row[:3]
            for row in store.query(
                members_cte
                + matching.format(columns="r.type, r.id, r.body, r.type <> 'Patient' AS later, r.rid")
                + " ORDER BY later, r.rid LIMIT ? OFFSET ?",
                [*sql_args, count, offset],
            )
        ]
    path = f"{base_url}/Patient/{patient_id}/$everything" if patient_id else f"{base_url}/Patient/$everything"
    query = urlencode(
        [
            *([("_since", since_text)] if since_text else []),
            *([("_type", ",".join(types))] if types else []),
            ("_count", str(count)),
        ]
    )
    links = offset_links(f"{path}?{query}", offset=offset, count=count, total=total)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if rows:
        bundle["entry"] = [bundle_entry(base_url, rtype, rid, blob, "match", None) for rtype, rid, blob in rows]
    return bundle
