"""FHIR search: query parameters -> SQL over the index tables -> a searchset Bundle.

Semantics follow the FHIR R4 search page: comma = OR, repeated parameter = AND, date and
number prefixes over implicit ranges, string starts-with (case/accent-insensitive), tokens
``system|code``. Unknown parameters are ignored (lenient) and left out of the self link, or
rejected with a 400 when the server or the request (``Prefer: handling=strict``) is strict.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from medagent.fhir.server.compartment import compartment_condition
from medagent.fhir.server.limits import MAX_OFFSET, check_search_size, plain_int
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.r4_search_names import R4_SEARCH_NAMES
from medagent.fhir.server.search_params import (
    COMMON_PARAMS,
    PARAMS,
    RESULT_PARAMS,
    SearchParam,
    normalize_reference,
    params_for,
)
from medagent.fhir.server.store import Store, now_instant
from medagent.fhir.server.values import (
    epoch_to_instant,
    normalize_string,
    parse_date_param,
    parse_number,
    split_prefix,
)

DEFAULT_COUNT = 50
MAX_COUNT = 1000
MAX_REVINCLUDE = 1000
# standard parameters that filter but that this server does not implement: refused even when lenient
FILTERING_SPECIALS = (
    "_filter",
    "_query",
    "_list",
    "_text",
    "_content",
    "_tag",
    "_profile",
    "_security",
    "_source",
    "_type",
)
_MAX_CHAR = "\U0010ffff"


@dataclass
class IndexCondition:
    """Rows of one index table that match one search parameter (``negate``: must have none)."""

    table: str
    param: str
    sql: str
    args: list[Any]
    negate: bool = False
    selectivity: int = 0


INDEX_TABLE = {
    "token": "idx_token",
    "reference": "idx_ref",
    "date": "idx_date",
    "string": "idx_string",
    "quantity": "idx_quantity",
    "number": "idx_quantity",
}
_SELECTIVITY = {"idx_ref": 3, "idx_token": 2, "idx_string": 2, "idx_quantity": 1, "idx_date": 0}


def compose_where(resource_type: str, query: Query) -> tuple[str, list[Any]]:
    """WHERE clause over ``resource r``: the most selective index condition drives (rowid IN ...),
    the others are correlated EXISTS probes on the (rid, param) indexes."""
    where = ["+r.type = ?", "r.deleted = 0", *query.where]
    args: list[Any] = [resource_type, *query.args]
    positive = [c for c in query.index_conditions if not c.negate]
    driver = max(positive, key=lambda c: c.selectivity) if positive else None
    for condition in query.index_conditions:
        if condition is driver:
            where.insert(
                0, f"r.rid IN (SELECT rid FROM {condition.table} WHERE type = ? AND param = ? AND ({condition.sql}))"
            )
            args = [resource_type, condition.param, *condition.args, *args]
            continue
        probe = f"EXISTS (SELECT 1 FROM {condition.table} x WHERE x.rid = r.rid AND x.param = ? AND ({condition.sql}))"
        where.append(f"NOT {probe}" if condition.negate else probe)
        args += [condition.param, *condition.args]
    if driver is None:
        where[0] = "r.type = ?"
    return " AND ".join(where), args


@dataclass
class Query:
    """SQL conditions over ``resource r`` plus the result controls of one search."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    index_conditions: list[IndexCondition] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)  # (expression over ``r``, ASC or DESC)
    used: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    summary_count: bool = False
    total: bool = True
    includes: list[tuple[str, SearchParam]] = field(default_factory=list)
    revincludes: list[tuple[str, SearchParam]] = field(default_factory=list)
    elements: list[str] | None = None
    local_base: str | None = None


def search(
    store: Store,
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    base_url: str,
    strict: bool = False,
    patient_compartment: str | None = None,
) -> dict[str, Any]:
    """Run a search and return the searchset Bundle (resource bodies as raw JSON fragments);
    ``patient_compartment``: a patient id, for ``GET /Patient/{id}/{type}`` (only that patient's resources)."""
    query = build_query(resource_type, params, strict=strict, local_base=base_url)
    path = resource_type
    if patient_compartment is not None:
        sql, sql_args = compartment_condition(resource_type, patient_compartment)
        query.where.append(sql)
        query.args.extend(sql_args)
        path = f"Patient/{patient_compartment}/{resource_type}"
    where_sql, args = compose_where(resource_type, query)
    with store.reading():
        if patient_compartment is not None:
            live_patient(store, patient_compartment)
        total = None
        rows: list[tuple[Any, ...]] = []
        if not query.summary_count:
            # the sort keys are result columns, ordered by name: a slot's union view (slots.py) is then
            # flattened, each half using its indexes, where an ORDER BY of other expressions would scan it
            keys = "".join(f", {expression} AS sort_{n}" for n, (expression, _) in enumerate(query.order))
            order_sql = ", ".join([*(f"sort_{n} {direction}" for n, (_, direction) in enumerate(query.order)), "r.rid"])
            rows = [
                row[:4]
                for row in store.query(
                    f"SELECT r.rid, r.type, r.id, r.body{keys} FROM resource r WHERE {where_sql} ORDER BY {order_sql} "
                    "LIMIT ? OFFSET ?",
                    [*args, query.count + 1, query.offset],
                )
            ]
        has_next = len(rows) > query.count
        if query.total or query.summary_count:
            if not query.summary_count and not has_next and (rows or query.offset == 0):
                total = query.offset + len(rows)  # the last page: no need to count again
            else:
                total = store.query_one(count_sql(where_sql), args)[0]  # type: ignore[index]
        rows = rows[: query.count]
        included = included_rows(store, [row[0] for row in rows], query.includes)
        rev_included, rev_capped = _revincludes(store, [f"{resource_type}/{row[2]}" for row in rows], query.revincludes)

    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = _links(base_url, path, query, has_next)
    entries = [bundle_entry(base_url, rtype, rid, blob, "match", query.elements) for _, rtype, rid, blob in rows]
    entries += [
        bundle_entry(base_url, rtype, rid, blob, "include", None) for rtype, rid, blob in [*included, *rev_included]
    ]
    warnings = [f"ignored search parameter(s): {'; '.join(query.ignored)}"] if query.ignored else []
    if rev_capped:
        warnings.append(f"_revinclude stopped at {MAX_REVINCLUDE} resources; narrow the search to get the rest")
    if warnings:
        entries.append(search_outcome(warnings))
    if entries:
        bundle["entry"] = entries
    return bundle


def count_sql(where_sql: str) -> str:
    """The number of resources matching ``where_sql``; the inner ``LIMIT -1`` (no limit) keeps SQLite from
    folding the count into the select over a slot's union view (slots.py), which it could then only scan."""
    return f"SELECT COUNT(*) FROM (SELECT r.rid FROM resource r WHERE {where_sql} LIMIT -1)"


def search_outcome(warnings: list[str]) -> dict[str, Any]:
    """The ``search.mode=outcome`` entry that tells a client what the server did not do."""
    return {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": text} for text in warnings],
        },
        "search": {"mode": "outcome"},
    }


def matching_ids(store: Store, resource_type: str, params: list[tuple[str, str]], *, limit: int) -> list[str]:
    """Ids of up to ``limit`` resources matching a condition (conditional create/update/delete).

    Always strict: a parameter this server does not know must not widen a conditional write.
    """
    if not any(name not in RESULT_PARAMS for name, _ in params):
        raise FhirError(412, f"a conditional request on {resource_type} needs at least one search parameter")
    query = build_query(resource_type, params, strict=True)
    where_sql, args = compose_where(resource_type, query)
    rows = store.query(f"SELECT r.id, r.rid FROM resource r WHERE {where_sql} ORDER BY r.rid LIMIT ?", [*args, limit])
    return [row[0] for row in rows]


def build_query(
    resource_type: str, params: list[tuple[str, str]], *, strict: bool, local_base: str | None = None
) -> Query:
    """``local_base``: this server's base URL; absolute references elsewhere never match local data."""
    check_search_size(params)
    known = params_for(resource_type)
    query = Query(local_base=local_base)
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if name == "_has":
            _has(query, resource_type, raw_name, value)
            query.used.append((raw_name, value))
            continue
        if "." in raw_name:
            raise FhirError(
                400,
                f"chained search parameter {raw_name!r} is not supported by this server; search "
                "the referenced type first and pass its ids (e.g. subject=Patient/<id>)",
            )
        if name in FILTERING_SPECIALS:
            raise FhirError(
                400,
                f"search parameter {raw_name!r} is not supported by this server (it would filter "
                "the results, so it is refused rather than ignored)",
            )
        if name in RESULT_PARAMS:
            _result_param(query, resource_type, known, name, value, strict)
            continue
        if value == "" and name in (*known, *COMMON_PARAMS):
            if strict:
                raise FhirError(400, f"search parameter {raw_name!r} has an empty value")
            query.ignored.append(f"{raw_name} (empty value)")
            continue
        if name == "_id":
            ids = [v for v in value.split(",") if v]
            query.where.append(f"r.id IN ({','.join('?' * len(ids))})")
            query.args.extend(ids)
        elif name == "_lastUpdated":
            _last_updated(query, value)
        elif name in known:
            _param_condition(query, resource_type, known[name], modifier, value)
        else:
            supported = ", ".join(sorted([*known, *COMMON_PARAMS]))
            if strict:
                raise FhirError(
                    400, f"unknown search parameter {raw_name!r} for {resource_type}; supported: {supported}"
                )
            if name in R4_SEARCH_NAMES.get(resource_type, ()) or resource_type not in PARAMS:
                raise FhirError(
                    400,
                    f"search parameter {raw_name!r} is not supported on {resource_type} by this "
                    "server; it is refused rather than ignored, since ignoring it would return "
                    f"unfiltered results; supported: {supported}",
                )
            query.ignored.append(raw_name)
            continue
        query.used.append((raw_name, value))
    return query


def _result_param(
    query: Query, resource_type: str, known: dict[str, SearchParam], name: str, value: str, strict: bool
) -> None:
    if name in ("_format", "_pretty"):
        return
    if name in ("_count", "_offset"):
        number = plain_int(name, value, maximum=None if name == "_count" else MAX_OFFSET)
        if name == "_count":
            query.count = min(number, MAX_COUNT)
            query.summary_count = query.summary_count or number == 0
        else:
            query.offset = number
    elif name == "_summary":
        if value == "count":
            query.summary_count = True
        elif value != "false":
            if strict:
                raise FhirError(400, f"_summary={value} is not supported; use count or false")
            query.ignored.append(f"_summary={value}")
            return
        query.used.append((name, value))
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise FhirError(400, f"_total must be none, estimate or accurate, got {value!r}")
        query.total = value != "none"
        query.used.append((name, value))
    elif name == "_sort":
        kept = []
        for key in (k.strip() for k in value.split(",") if k.strip()):
            try:
                query.order.extend(_sort_clause(resource_type, known, key))
                kept.append(key)
            except FhirError as exc:
                if strict:
                    raise
                query.ignored.append(f"_sort={key} ({exc.diagnostics})")
        if kept:
            query.used.append((name, ",".join(kept)))
    elif name == "_include":
        source, _, rest = value.partition(":")
        param_name = rest.split(":")[0]
        param = params_for(source).get(param_name)
        if source != resource_type or param is None or param.kind != "reference":
            message = f"_include={value} is not supported: use {resource_type}:<reference parameter>"
            if strict:
                raise FhirError(400, message)
            query.ignored.append(message)
            return
        query.includes.append((value, param))
        query.used.append((name, value))
    elif name == "_revinclude":
        source, _, rest = value.partition(":")
        param_name, _, target = rest.partition(":")
        param = params_for(source).get(param_name)
        if (
            param is None
            or param.kind != "reference"
            or (target and target != resource_type)
            or (param.targets and resource_type not in param.targets)
        ):
            message = (
                f"_revinclude={value} is not supported: use <Type>:<reference parameter> pointing at "
                f"{resource_type}, e.g. Observation:subject"
            )
            if strict:
                raise FhirError(400, message)
            query.ignored.append(message)
            return
        query.revincludes.append((source, param))
        query.used.append((name, value))
    elif name == "_elements":
        query.elements = [e.strip() for e in value.split(",") if e.strip()]
        query.used.append((name, value))


def _sort_clause(resource_type: str, known: dict[str, SearchParam], key: str) -> list[tuple[str, str]]:
    descending = key.startswith("-")
    name = key.lstrip("-")
    direction = "DESC" if descending else "ASC"
    if name == "_id":
        return [("r.id", direction)]
    if name == "_lastUpdated":
        return [("r.last_updated", direction)]
    param = known.get(name)
    table = {"date": ("idx_date", "lo"), "string": ("idx_string", "norm"), "quantity": ("idx_quantity", "value")}
    if param is None or param.kind not in table:
        sortable = sorted(n for n, p in known.items() if p.kind in table)
        raise FhirError(
            400, f"cannot sort {resource_type} by {name!r}; sortable: {', '.join(['_id', '_lastUpdated', *sortable])}"
        )
    idx, column = table[param.kind]
    # resources without a value sort last either way; COALESCE evaluates the subquery once per row. The
    # largest (smallest) value as the first row in order, not MAX (MIN): the same index seek, and one SQLite
    # can still make on a slot's union view (slots.py), where an aggregate would scan it
    last = (
        ("''" if param.kind == "string" else "-9e999")
        if descending
        else ("char(1114111)" if param.kind == "string" else "9e999")
    )
    return [
        (
            f"COALESCE((SELECT {column} FROM {idx} s WHERE s.rid = r.rid AND s.param = '{param.name}' "
            f"ORDER BY {column} {direction} LIMIT 1), {last})",
            direction,
        )
    ]


def _param_condition(query: Query, resource_type: str, param: SearchParam, modifier: str, value: str) -> None:
    if modifier == "missing":
        if value not in ("true", "false"):
            raise FhirError(400, f"{param.name}:missing must be true or false")
        table = INDEX_TABLE[param.kind]
        query.index_conditions.append(IndexCondition(table, param.name, "1", [], negate=value == "true"))
        return
    alternatives = [v for v in _split_or(value) if v != ""]
    if not alternatives:
        raise FhirError(400, f"search parameter {param.name!r} has an empty value")
    handler = {"token": _token, "reference": _reference, "date": _date, "string": _string, "quantity": _quantity}[
        param.kind
    ]
    ors: list[str] = []
    args: list[Any] = []
    for alternative in alternatives:
        if param.kind == "reference":
            sql, sql_args = _reference(param, modifier, alternative, query.local_base)
        else:
            sql, sql_args = handler(param, modifier, alternative)
        ors.append(sql)
        args.extend(sql_args)
    table = INDEX_TABLE[param.kind]
    negate = modifier == "not" or (param.kind in ("date", "quantity") and _all_ne(alternatives))
    query.index_conditions.append(
        IndexCondition(table, param.name, " OR ".join(ors), args, negate=negate, selectivity=_SELECTIVITY[table])
    )


def _all_ne(alternatives: list[str]) -> bool:
    prefixes = {split_prefix(a)[0] for a in alternatives}
    if "ne" in prefixes and len(prefixes) > 1:
        raise FhirError(400, "cannot mix 'ne' with other prefixes in one parameter value")
    return prefixes == {"ne"}


def _split_or(value: str) -> list[str]:
    """Split on commas not escaped with a backslash (FHIR escaping)."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _token(param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
    if modifier == "text":
        return "text LIKE ? ESCAPE '\\'", [f"%{_like_escape(value)}%"]
    if modifier not in ("", "not"):
        raise FhirError(400, f"modifier :{modifier} is not supported on token parameter {param.name!r}")
    if "|" not in value:
        return "code = ?", [value]
    system, _, code = value.partition("|")
    if system == "":
        return "(system IS NULL AND code = ?)", [code]
    if code == "":
        return "system = ?", [system]
    return "(system = ? AND code = ?)", [system, code]


def _reference(param: SearchParam, modifier: str, value: str, local_base: str | None = None) -> tuple[str, list[Any]]:
    if modifier and not modifier[:1].isupper():
        raise FhirError(400, f"modifier :{modifier} is not supported on reference parameter {param.name!r}")
    reference = normalize_reference(value, local_base)
    if "/" in reference:
        return "ref = ?", [reference]
    target = modifier or (param.targets[0] if len(param.targets) == 1 else "")
    if target:
        return "ref = ?", [f"{target}/{reference}"]
    return "ref LIKE ? ESCAPE '\\'", [f"%/{_like_escape(reference)}"]


def _date(param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
    if modifier:
        raise FhirError(400, f"modifier :{modifier} is not supported on date parameter {param.name!r}")
    prefix, lo, hi = parse_date_param(param.name, value)
    return _range_condition(prefix, lo, hi, "lo", "hi")


def _range_condition(prefix: str, lo: float, hi: float, rlo: str, rhi: str) -> tuple[str, list[Any]]:
    """FHIR prefix semantics between a resource range [rlo, rhi) and a parameter range [lo, hi)."""
    inside = f"({rlo} >= ? AND {rhi} <= ?)"
    if prefix in ("eq", "ne"):
        return inside, [lo, hi]
    if prefix == "gt":
        return f"{rhi} > ?", [hi]
    if prefix == "lt":
        return f"{rlo} < ?", [lo]
    if prefix == "ge":
        return f"({rhi} > ? OR {inside})", [hi, lo, hi]
    if prefix == "le":
        return f"({rlo} < ? OR {inside})", [lo, lo, hi]
    if prefix == "sa":
        return f"{rlo} >= ?", [hi]
    if prefix == "eb":
        return f"{rhi} <= ?", [lo]
    width = (hi - lo) if math.isfinite(hi - lo) else 0.0
    margin = max(width, 0.1 * abs(lo)) if prefix == "ap" else 0.0
    return f"({rhi} > ? AND {rlo} < ?)", [lo - margin, hi + margin]


def _string(param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
    if modifier == "exact":
        return "raw = ?", [value]
    norm = normalize_string(value)
    if modifier == "contains":
        return "norm LIKE ? ESCAPE '\\'", [f"%{_like_escape(norm)}%"]
    if modifier:
        raise FhirError(400, f"modifier :{modifier} is not supported on string parameter {param.name!r}")
    return "(norm >= ? AND norm < ?)", [norm, norm + _MAX_CHAR]


def _quantity(param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
    if modifier:
        raise FhirError(400, f"modifier :{modifier} is not supported on quantity parameter {param.name!r}")
    number_text, _, unit_part = value.partition("|")
    prefix, number_text = split_prefix(number_text)
    number, lo, hi = parse_number(param.name, number_text)
    comparisons = {
        "gt": ("value > ?", [number]),
        "lt": ("value < ?", [number]),
        "ge": ("value >= ?", [number]),
        "le": ("value <= ?", [number]),
        "sa": ("value > ?", [number]),
        "eb": ("value < ?", [number]),
    }
    args: list[Any]  # the numbers, then the unit's system and code
    if prefix in comparisons:
        sql, args = comparisons[prefix]
    elif prefix == "ap":
        margin = abs(number) * 0.1
        sql, args = "(value >= ? AND value <= ?)", [number - margin, number + margin]
    else:
        sql, args = "(value >= ? AND value < ?)", [lo, hi]
    if unit_part:
        system, _, code = unit_part.partition("|")
        if not code:
            raise FhirError(400, f"{param.name}: expected [prefix]number|system|code or number||code, got {value!r}")
        if system:
            sql += " AND system = ? AND code = ?"
            args = [*args, system, code]
        else:
            sql += " AND (code = ? OR unit = ?)"
            args = [*args, code, code]
    return f"({sql})", args


def _last_updated(query: Query, value: str) -> None:
    prefix, lo, hi = parse_date_param("_lastUpdated", value)
    as_text = [epoch_to_instant(v) for v in (lo, hi)]
    if prefix == "ne":
        query.where.append("NOT (r.last_updated >= ? AND r.last_updated < ?)")
        query.args.extend(as_text)
        return
    conditions = {
        "eq": ("(r.last_updated >= ? AND r.last_updated < ?)", as_text),
        "gt": ("r.last_updated >= ?", [as_text[1]]),
        "sa": ("r.last_updated >= ?", [as_text[1]]),
        "lt": ("r.last_updated < ?", [as_text[0]]),
        "eb": ("r.last_updated < ?", [as_text[0]]),
        "ge": ("r.last_updated >= ?", [as_text[0]]),
        "le": ("r.last_updated < ?", [as_text[1]]),
    }
    sql, args = conditions.get(prefix, conditions["eq"])
    query.where.append(sql)
    query.args.extend(args)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def included_rows(
    store: Store, rids: list[int], includes: list[tuple[str, SearchParam]]
) -> list[tuple[str, str, bytes]]:
    if not rids or not includes:
        return []
    marks = ",".join("?" * len(rids))
    seen: set[str] = set()
    found = []
    for _, param in includes:
        refs = store.query(
            f"SELECT DISTINCT ref FROM idx_ref WHERE rid IN ({marks}) AND param = ?", [*rids, param.name]
        )
        for (ref,) in refs:
            if ref in seen or "/" not in ref:
                continue
            seen.add(ref)
            target_type, target_id = ref.split("/", 1)
            stored = store.read(target_type, target_id)
            if stored is not None and stored.blob is not None:
                found.append((target_type, target_id, stored.blob))
    return found


def _revincludes(
    store: Store, refs: list[str], revincludes: list[tuple[str, SearchParam]]
) -> tuple[list[tuple[str, str, bytes]], bool]:
    """Resources of the ``_revinclude`` types whose reference parameter points at one of ``refs``."""
    if not refs or not revincludes:
        return [], False
    marks = ",".join("?" * len(refs))
    rids: list[int] = []
    for source, param in revincludes:
        rows = store.query(
            f"SELECT DISTINCT rid FROM idx_ref WHERE type = ? AND param = ? AND ref IN ({marks}) ORDER BY rid LIMIT ?",
            [source, param.name, *refs, MAX_REVINCLUDE + 1 - len(rids)],
        )
        rids += [row[0] for row in rows if row[0] not in rids]
        if len(rids) > MAX_REVINCLUDE:
            break
    capped = len(rids) > MAX_REVINCLUDE
    return store.rows_by_rid(rids[:MAX_REVINCLUDE]), capped


def _has(query: Query, resource_type: str, raw_name: str, value: str) -> None:
    """One level of reverse chaining: ``_has:Condition:subject:code=X`` keeps the resources that a
    Condition with code X references through its ``subject`` parameter."""
    parts = raw_name.split(":")
    if len(parts) < 4 or not all(parts[1:4]):
        raise FhirError(400, f"malformed {raw_name!r}: use _has:<Type>:<reference parameter>:<parameter>=<value>")
    source, ref_name, inner = parts[1], parts[2], ":".join(parts[3:])
    if inner.startswith("_has"):
        raise FhirError(400, f"{raw_name!r}: only one level of _has is supported")
    if inner.partition(":")[0] in RESULT_PARAMS:
        raise FhirError(400, f"{raw_name!r}: the last part must be a search parameter of {source}")
    if source not in PARAMS:
        raise FhirError(400, f"{raw_name!r}: {source!r} is not a resource type this server can search")
    ref_param = params_for(source).get(ref_name)
    if ref_param is None or ref_param.kind != "reference":
        refs = sorted(n for n, p in params_for(source).items() if p.kind == "reference")
        raise FhirError(
            400, f"{raw_name!r}: {ref_name!r} is not a reference parameter of {source}; use one of {', '.join(refs)}"
        )
    inner_query = build_query(source, [(inner, value)], strict=True)
    inner_sql, inner_args = compose_where(source, inner_query)
    query.where.append(
        "r.id IN (SELECT substr(h.ref, ?) FROM idx_ref h WHERE h.type = ? AND h.param = ? AND h.ref LIKE ? "
        f"AND h.rid IN (SELECT r.rid FROM resource r WHERE {inner_sql}))"
    )
    query.args.extend([len(resource_type) + 2, source, ref_name, f"{resource_type}/%", *inner_args])


def bundle_entry(
    base_url: str, rtype: str, rid: str, blob: bytes, mode: str, elements: list[str] | None
) -> dict[str, Any]:
    resource: Any = orjson.Fragment(blob)
    if elements:
        body = orjson.loads(blob)
        keep = {"resourceType", "id", "meta", *elements}
        body = {k: v for k, v in body.items() if k in keep}
        meta = dict(body.get("meta") or {})
        meta["tag"] = [
            *meta.get("tag", []),
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"},
        ]
        body["meta"] = meta
        resource = body
    return {"fullUrl": f"{base_url}/{rtype}/{rid}", "resource": resource, "search": {"mode": mode}}


def live_patient(store: Store, patient_id: str) -> None:
    """404 for a patient this server never held, 410 for a deleted one."""
    stored = store.read("Patient", patient_id)
    if stored is None:
        raise FhirError(404, f"Patient/{patient_id} not found")
    if stored.deleted:
        raise FhirError(410, f"Patient/{patient_id} was deleted (version {stored.version})")


def _links(base_url: str, path: str, query: Query, has_next: bool) -> list[dict[str, str]]:
    prefix = f"{base_url}/{path}?{urlencode([*query.used, ('_count', str(query.count))])}"  # encoded once

    def url(offset: int) -> str:
        return f"{prefix}&_offset={offset}" if offset else prefix

    links = [{"relation": "self", "url": url(query.offset)}]
    if query.summary_count:
        return links
    if has_next:
        links.append({"relation": "next", "url": url(query.offset + query.count)})
    if query.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, query.offset - query.count))})
    return links
