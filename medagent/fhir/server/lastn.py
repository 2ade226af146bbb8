"""``Observation/$lastn``: the newest ``max`` Observations per patient and code, as a searchset."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from medagent.fhir.server.limits import plain_int
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search import (
    MAX_COUNT,
    build_query,
    bundle_entry,
    compose_where,
    included_rows,
    search_outcome,
)
from medagent.fhir.server.store import Store, now_instant


def last_n(store: Store, params: list[tuple[str, str]], *, base_url: str, strict: bool) -> dict[str, Any]:
    """``Observation/$lastn``: the ``max`` most recent Observations per patient and code.

    Grouped by subject and by the code's coding (``system|code``; with several codings the
    first in sort order), newest ``effective[x]`` first; any Observation search parameter filters.
    """
    maximum = 1
    rest = []
    for name, value in params:
        if name == "max":
            maximum = plain_int("$lastn max", value, maximum=MAX_COUNT)
            if maximum < 1:
                raise FhirError(400, f"$lastn max must be a positive integer, got {value!r}")
        elif name in ("_count", "_offset", "_sort", "_summary", "_total"):
            raise FhirError(400, f"$lastn does not take {name}: it returns the newest 'max' per patient and code")
        else:
            rest.append((name, value))
    query = build_query("Observation", rest, strict=strict, local_base=base_url)
    where_sql, args = compose_where("Observation", query)
    # first-in-order subqueries rather than MIN/MAX, and LIMIT -1: shapes SQLite also plans well over a
    # slot's union views (slots.py; search.count_sql)
    sql = f"""
        WITH m AS (
          SELECT r.rid,
            (SELECT x.ref FROM idx_ref x WHERE x.rid = r.rid AND x.param = 'subject' ORDER BY x.ref LIMIT 1) AS subject,
            (SELECT COALESCE(t.system, '') || '|' || COALESCE(t.code, '') AS k FROM idx_token t
              WHERE t.rid = r.rid AND t.param = 'code' ORDER BY k LIMIT 1) AS code_key,
            (SELECT d.lo FROM idx_date d WHERE d.rid = r.rid AND d.param = 'date' ORDER BY d.lo DESC LIMIT 1) AS effective
          FROM resource r WHERE {where_sql} LIMIT -1)
        SELECT rid FROM (
          SELECT rid, subject, code_key, effective,
            ROW_NUMBER() OVER (PARTITION BY subject, code_key ORDER BY effective IS NULL, effective DESC, rid DESC) AS n
          FROM m)
        WHERE n <= ? ORDER BY subject, code_key, n"""
    with store.reading():
        rids = [row[0] for row in store.query(sql, [*args, maximum])]
        rows = store.rows_by_rid(rids)
        included = included_rows(store, rids, query.includes)
    entries = [bundle_entry(base_url, rtype, rid, blob, "match", query.elements) for rtype, rid, blob in rows]
    entries += [bundle_entry(base_url, rtype, rid, blob, "include", None) for rtype, rid, blob in included]
    if query.ignored:
        entries.append(search_outcome([f"ignored search parameter(s): {'; '.join(query.ignored)}"]))
    used = urlencode([*query.used, ("max", str(maximum))])
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset",
        "total": len(rows),
        "link": [{"relation": "self", "url": f"{base_url}/Observation/$lastn?{used}"}],
    }
    if entries:
        bundle["entry"] = entries
    return bundle
