"""Expected search results computed straight from the Synthea bundle files, never through a server.

Everything here follows the FHIR R4 search specification (http://hl7.org/fhir/R4/search.html):

* date (§3.1.1.4.7 / "date"): every date, dateTime, instant and Period is a *range* (its implicit
  precision: ``2019`` is all of 2019, ``2019-03-05T10:00:00Z`` one second). With [lo, hi) the
  search range and [tlo, thi) the target range, the prefixes mean
    eq  search range fully contains target range        lo <= tlo and thi <= hi
    ne  not eq
    gt  the range above the search value overlaps       thi > hi
    lt  the range below the search value overlaps       tlo < lo
    ge  gt or eq                                        le  lt or eq
    sa  starts after (no overlap, target above)         tlo >= hi
    eb  ends before (no overlap, target below)          thi <= lo
  A value without a time zone (a partial date, a FHIR ``date``) is "local time". When both sides
  lack a zone they are compared as the same local clock; when only one side has a zone the spec
  leaves the offset open, so a resource whose outcome would change under any offset within
  ±14 h is *ambiguous*: tests accept it either way (and assert that few resources are).
* number/quantity: ``eq`` uses the implicit precision of the search value (5.4 means
  [5.35, 5.45)); ``gt lt ge le`` compare with the exact value; ``value|system|code`` also
  requires the quantity's system and code.
* string: case- and accent-insensitive "equals or starts with" on each string field;
  ``:contains`` anywhere; ``:exact`` the whole string, case and accents included.
* token: ``code`` any system, ``system|code``, ``|code`` only codings without a system,
  ``system|`` any code of the system; a comma means OR, a repeated parameter AND.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from medagent.data import iter_bundles

# --------------------------------------------------------------------------------------------
# the data set, references resolved the way a server must store them
# --------------------------------------------------------------------------------------------

Key = tuple[str, str]  # (resourceType, id)


@dataclass
class Dataset:
    resources: dict[Key, dict[str, Any]] = field(default_factory=dict)  # urn:uuid -> Type/id rewritten
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    bundle_of: dict[Key, str] = field(default_factory=dict)
    patient_of: dict[Key, str] = field(default_factory=dict)  # resource -> patient id (compartment)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, rtype: str, patient: str | None = None) -> list[dict[str, Any]]:
        items = self.by_type.get(rtype, [])
        if patient is None:
            return list(items)
        return [r for r in items if self.patient_of.get((rtype, r["id"])) == patient]

    def patient_by_name(self, family: str, given: str | None = None) -> dict[str, Any]:
        found = [p for p in self.patients.values()
                 if p["name"][0].get("family") == family and (given is None or given in p["name"][0].get("given", []))]
        assert len(found) == 1, f"{len(found)} patients named {given} {family}"
        return found[0]


# R4 search parameter registry, the parts these tests use: the element(s) behind each parameter.
PATIENT_PARAM_PATH = {
    "Observation": "subject", "Condition": "subject", "Encounter": "subject", "MedicationRequest": "subject",
    "Procedure": "subject", "DiagnosticReport": "subject", "CarePlan": "subject", "Goal": "subject",
    "ImagingStudy": "subject", "Immunization": "patient", "AllergyIntolerance": "patient", "Claim": "patient",
    "ExplanationOfBenefit": "patient",
}
DATE_PARAM_PATHS = {
    ("Observation", "date"): ("effectiveDateTime", "effectivePeriod", "effectiveInstant"),
    ("DiagnosticReport", "date"): ("effectiveDateTime", "effectivePeriod"),
    ("Encounter", "date"): ("period",),
    ("CarePlan", "date"): ("period",),
    ("Procedure", "date"): ("performedDateTime", "performedPeriod"),
    ("Immunization", "date"): ("occurrenceDateTime",),
    ("Condition", "onset-date"): ("onsetDateTime", "onsetPeriod"),
    ("Condition", "abatement-date"): ("abatementDateTime", "abatementPeriod"),
    ("Condition", "recorded-date"): ("recordedDate",),
    ("MedicationRequest", "authoredon"): ("authoredOn",),
    ("Patient", "birthdate"): ("birthDate",),
}


def walk_references(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict holding a string ``reference`` (Reference datatypes), depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from walk_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_references(item)


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, mapping) for k, v in node.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in mapping:
            out["reference"] = mapping[out["reference"]]
        return out
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node


@lru_cache(maxsize=1)
def dataset() -> Dataset:
    data = Dataset()
    for name, bundle in iter_bundles():
        entries = bundle.get("entry", [])
        mapping = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
                   for e in entries if e.get("fullUrl") and e.get("resource")}
        for entry in entries:
            resource = _rewrite(entry["resource"], mapping)
            key = (resource["resourceType"], resource["id"])
            if key in data.resources:  # shared Organizations/Practitioners repeat, identically
                assert data.resources[key] == resource, f"{key} differs between bundles ({name})"
                continue
            data.resources[key] = resource
            data.by_type[key[0]].append(resource)
            data.bundle_of[key] = name
            if key[0] == "Patient":
                data.patients[key[1]] = resource
    for key, resource in data.resources.items():
        if key[0] == "Patient":
            data.patient_of[key] = key[1]
        elif key[0] in PATIENT_PARAM_PATH:
            ref = (resource.get(PATIENT_PARAM_PATH[key[0]]) or {}).get("reference", "")
            if ref.startswith("Patient/"):
                data.patient_of[key] = ref.split("/", 1)[1]
    return data


def values_at(resource: dict[str, Any], path: str) -> list[Any]:
    nodes: list[Any] = [resource]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(node, dict) and part in node:
                value = node[part]
                nxt.extend(value if isinstance(value, list) else [value])
        nodes = nxt
    return nodes


# --------------------------------------------------------------------------------------------
# three-valued logic: True, False, or None (ambiguous under the spec)
# --------------------------------------------------------------------------------------------

def any3(values: Iterable[bool | None]) -> bool | None:
    result: bool | None = False
    for v in values:
        if v is True:
            return True
        if v is None:
            result = None
    return result


def all3(values: Iterable[bool | None]) -> bool | None:
    result: bool | None = True
    for v in values:
        if v is False:
            return False
        if v is None:
            result = None
    return result


# every UTC offset in use is a multiple of 15 minutes between -12:00 and +14:00
ZONE_OFFSETS = tuple(quarter * 900.0 for quarter in range(-56, 57))


@dataclass
class Expected:
    """Ids a conformant server must return, and the ids whose outcome the spec leaves to the server.

    ``decide(id, offset)`` re-evaluates an ambiguous id as if the server's local time zone were
    ``offset`` seconds east of UTC (None: still free, e.g. a server-defined string field). The
    server may pick its zone, but one zone for all values of a query.
    """

    must: set[str]
    ambiguous: set[str]
    decide: Callable[[str, float], bool | None] | None = None

    @property
    def may(self) -> set[str]:
        return self.must | self.ambiguous

    def check(self, got: Iterable[str], what: str = "") -> None:
        got_set = set(got)
        missing = sorted(self.must - got_set)
        extra = sorted(got_set - self.may)
        assert not missing and not extra, (
            f"{what}: {len(got_set)} returned, {len(self.must)} expected (+{len(self.ambiguous)} ambiguous); "
            f"missing {len(missing)} e.g. {missing[:5]}, unexpected {len(extra)} e.g. {extra[:5]}")
        if not self.ambiguous or self.decide is None:
            return
        for offset in ZONE_OFFSETS:
            if all((v := self.decide(rid, offset)) is None or v == (rid in got_set) for rid in self.ambiguous):
                return
        raise AssertionError(
            f"{what}: the time-zone dependent matches fit no single server time zone: "
            f"returned {sorted(self.ambiguous & got_set)[:5]}, left out {sorted(self.ambiguous - got_set)[:5]}")


Predicate = Callable[[dict[str, Any], "float | None"], "bool | None"]


def expect(resources: Iterable[dict[str, Any]], predicate: Predicate) -> Expected:
    """``predicate(resource, offset)``: offset None -> True/False/None (ambiguous)."""
    must, ambiguous, by_id = set(), set(), {}
    for r in resources:
        verdict = predicate(r, None)
        if verdict is True:
            must.add(r["id"])
        elif verdict is None:
            ambiguous.add(r["id"])
            by_id[r["id"]] = r
    return Expected(must, ambiguous, lambda rid, offset: predicate(by_id[rid], offset))


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?P<f>\.\d+)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?$")
AMBIGUITY = 14 * 3600.0  # the widest UTC offset: how far "local time" can be from UTC
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class DateRange:
    lo: float  # seconds since the epoch; a value without a zone is taken as if in UTC ...
    hi: float  # ... exclusive upper bound
    floating: bool  # ... and flagged: its real offset is the server's local one

    def __post_init__(self) -> None:
        assert self.lo < self.hi


def parse_date(value: str) -> DateRange:
    """The implicit range of a FHIR date, dateTime or instant."""
    m = _DATE_RE.match(value)
    if not m:
        raise ValueError(f"not a FHIR date/dateTime: {value!r}")
    g = m.groupdict()
    year = int(g["y"])
    if g["H"] is None:
        if g["m"] is None:
            lo, hi = datetime(year, 1, 1), datetime(year + 1, 1, 1)
        elif g["d"] is None:
            month = int(g["m"])
            lo = datetime(year, month, 1)
            hi = datetime(year + month // 12, month % 12 + 1, 1)
        else:
            lo = datetime(year, int(g["m"]), int(g["d"]))
            hi = lo + timedelta(days=1)
        return DateRange(_seconds(lo), _seconds(hi), floating=True)
    tz = g["tz"]
    offset = timedelta(0) if tz == "Z" else (1 if tz[0] == "+" else -1) * timedelta(
        hours=int(tz[1:3]), minutes=int(tz[4:6]))
    lo = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), int(g["S"])) - offset
    if g["f"]:
        frac = Decimal(g["f"])
        step = Decimal(1).scaleb(-(len(g["f"]) - 1))
        return DateRange(_seconds(lo) + float(frac), _seconds(lo) + float(frac + step), floating=False)
    return DateRange(_seconds(lo), _seconds(lo) + 1, floating=False)


def _seconds(naive: datetime) -> float:
    return (naive.replace(tzinfo=timezone.utc) - EPOCH).total_seconds()


def target_range(value: Any) -> DateRange | None:
    """The range of an element value: a date/dateTime string or a Period (open ends are infinite)."""
    if isinstance(value, str):
        return parse_date(value)
    if isinstance(value, dict) and ("start" in value or "end" in value):
        start = parse_date(value["start"]) if value.get("start") else None
        end = parse_date(value["end"]) if value.get("end") else None
        floating = (start.floating if start else False) or (end.floating if end else False)
        return DateRange(start.lo if start else -math.inf, end.hi if end else math.inf, floating)
    return None


DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def split_prefix(value: str, prefixes: tuple[str, ...] = DATE_PREFIXES) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in prefixes:
        return value[:2], value[2:]
    return "eq", value


def _date_prefix_holds(prefix: str, s: DateRange, t: DateRange) -> bool:
    eq = s.lo <= t.lo and t.hi <= s.hi
    return {
        "eq": eq,
        "ne": not eq,
        "gt": t.hi > s.hi,
        "lt": t.lo < s.lo,
        "ge": t.hi > s.hi or eq,
        "le": t.lo < s.lo or eq,
        "sa": t.lo >= s.hi,
        "eb": t.hi <= s.lo,
    }[prefix]


def _shift(rng: DateRange, offset: float) -> DateRange:
    """A zone-less range read in a zone ``offset`` seconds east of UTC (its UTC instants)."""
    return DateRange(rng.lo - offset, rng.hi - offset, floating=False) if rng.floating else rng


def date_value_matches(search: str, target: DateRange, offset: float | None = None) -> bool | None:
    """One search value (with prefix) against one target range.

    offset None: None when the result depends on the server's local time zone (only one side
    has a zone and an end of the target lies within 14 h of an end of the search range).
    offset given: the zone-less side is read in that zone.
    """
    prefix, value = split_prefix(search)
    s = parse_date(value)
    if s.floating == target.floating:
        return _date_prefix_holds(prefix, s, target)
    if offset is not None:
        return _date_prefix_holds(prefix, _shift(s, offset), _shift(target, offset))
    ends_t = [x for x in (target.lo, target.hi) if math.isfinite(x)]
    if any(abs(a - b) <= AMBIGUITY for a in ends_t for b in (s.lo, s.hi)):
        return None
    return _date_prefix_holds(prefix, s, target)


def date_param_matches(resource: dict[str, Any], paths: Iterable[str], values: list[str],
                       offset: float | None = None) -> bool | None:
    """``values``: the repeated parameter (AND), each possibly comma-separated (OR)."""
    ranges = [rng for path in paths for v in values_at(resource, path) if (rng := target_range(v)) is not None]

    def one(param_value: str) -> bool | None:
        return any3(date_value_matches(alt, rng, offset) for alt in param_value.split(",") for rng in ranges)

    return all3(one(v) for v in values)


def sort_key_date(resource: dict[str, Any], paths: Iterable[str], descending: bool = False) -> float:
    """_sort on a date parameter: ascending by the start of the range, descending by its end."""
    ranges = [rng for path in paths for v in values_at(resource, path) if (rng := target_range(v)) is not None]
    if not ranges:
        return math.inf if not descending else -math.inf
    return max(r.hi for r in ranges) if descending else min(r.lo for r in ranges)


# --------------------------------------------------------------------------------------------
# quantities
# --------------------------------------------------------------------------------------------

NUMBER_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def quantity_matches(search: str, quantity: dict[str, Any]) -> bool | None:
    prefix, rest = split_prefix(search, NUMBER_PREFIXES)
    number, *unit = rest.split("|")
    if unit:
        system, code = unit[0], unit[1] if len(unit) > 1 else ""
        if system and quantity.get("system") != system:
            return False
        if code and code not in (quantity.get("code"),) + (() if system else (quantity.get("unit"),)):
            return False
    value = quantity.get("value")
    if not isinstance(value, (int, float)):
        return False
    exact = Decimal(number)
    target = Decimal(repr(value))
    if prefix == "eq":
        half = Decimal(1).scaleb(exact.as_tuple().exponent) / 2
        if target in (exact - half, exact + half):
            return None  # on the edge of the implicit range: left open by the spec
        return exact - half < target < exact + half
    return {"gt": target > exact, "lt": target < exact, "ge": target >= exact, "le": target <= exact}[prefix]


# --------------------------------------------------------------------------------------------
# tokens and strings
# --------------------------------------------------------------------------------------------

def codings(value: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict):
        if "coding" in value:
            return [(c.get("system"), c.get("code")) for c in value["coding"]]
        if "value" in value and "code" not in value:
            return [(value.get("system"), str(value["value"]))]
        if "code" in value:
            return [(value.get("system"), value.get("code"))]
    return []


def token_matches(search: str, value: Any) -> bool:
    """One token parameter value (comma = OR) against one element value (or a list of them)."""
    values = value if isinstance(value, list) else [value]
    pairs = [pair for v in values for pair in codings(v)]
    for alt in search.split(","):
        if "|" in alt:
            system, code = alt.split("|", 1)
            for s, c in pairs:
                if system == "" and s is None and c == code:
                    return True
                if system and s == system and (code == "" or c == code):
                    return True
        elif any(c == alt for _, c in pairs):
            return True
    return False


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def string_matches(search: str, text: str, modifier: str = "") -> bool:
    if modifier == "exact":
        return text == search
    if modifier == "contains":
        return normalize(search) in normalize(text)
    return normalize(text).startswith(normalize(search))


NAME_FIELDS_CERTAIN = ("family", "given", "text")
NAME_FIELDS_SERVER_DEFINED = ("prefix", "suffix")  # "any of the string fields": a server may search these too


def expect_patient_string(param: str, search: str, modifier: str = "") -> Expected:
    """Patient ``name``/``family``/``given`` (comma = OR)."""

    def fields(patient: dict[str, Any], names: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for human in patient.get("name", []):
            for key in names:
                value = human.get(key)
                out.extend(value if isinstance(value, list) else [value] if isinstance(value, str) else [])
        return out

    def predicate(p: dict[str, Any], offset: float | None) -> bool | None:
        alts = search.split(",")
        if param in ("family", "given"):
            return any(string_matches(a, t, modifier) for a in alts for t in fields(p, (param,)))
        if any(string_matches(a, t, modifier) for a in alts for t in fields(p, NAME_FIELDS_CERTAIN)):
            return True
        if any(string_matches(a, t, modifier) for a in alts for t in fields(p, NAME_FIELDS_SERVER_DEFINED)):
            return None
        return False

    return expect(dataset().patients.values(), predicate)


# --------------------------------------------------------------------------------------------
# a whole query
# --------------------------------------------------------------------------------------------

TOKEN_PATHS = {
    ("Observation", "code"): "code", ("Observation", "category"): "category", ("Observation", "status"): "status",
    ("Condition", "code"): "code", ("Condition", "clinical-status"): "clinicalStatus",
    ("Condition", "category"): "category",
    ("MedicationRequest", "status"): "status", ("MedicationRequest", "code"): "medicationCodeableConcept",
    ("MedicationRequest", "intent"): "intent",
    ("Encounter", "class"): "class", ("Encounter", "type"): "type", ("Immunization", "vaccine-code"): "vaccineCode",
    ("Procedure", "code"): "code", ("Patient", "gender"): "gender", ("Patient", "identifier"): "identifier",
    ("CarePlan", "status"): "status",
}
REFERENCE_PATHS = {  # (type, param) -> (element, the one target type a bare id means, if any)
    ("Observation", "encounter"): ("encounter", "Encounter"), ("Condition", "encounter"): ("encounter", "Encounter"),
    ("MedicationRequest", "encounter"): ("encounter", "Encounter"),
    ("DiagnosticReport", "result"): ("result", "Observation"),
    ("Encounter", "service-provider"): ("serviceProvider", "Organization"),
    ("Encounter", "practitioner"): ("participant.individual", "Practitioner"),
}


def reference_matches(search: str, values: list[Any], target: str | None, base_url: str = "") -> bool:
    """``[id]``, ``[type]/[id]`` or an absolute URL against Reference values (comma = OR)."""
    refs = {v.get("reference") for v in values if isinstance(v, dict)}
    for alt in search.split(","):
        if base_url and alt.startswith(base_url + "/"):
            alt = alt[len(base_url) + 1:]
        if "/" in alt and alt in refs:
            return True
        if "/" not in alt and target and f"{target}/{alt}" in refs:
            return True
    return False


def expect_search(rtype: str, params: list[tuple[str, str]]) -> Expected:
    """What ``GET [rtype]?params`` must return: AND over the parameters (repeats included), each
    parameter's value an OR over commas. Parameters: patient/subject, _id, the token, date and
    value-quantity and reference parameters of the tables above, and Patient name/family/given (+ modifiers)."""
    data = dataset()
    dates: dict[str, list[str]] = {}
    checks: list[Callable[[dict[str, Any], float | None], bool | None]] = []
    for name, value in params:
        base, _, modifier = name.partition(":")
        if base in ("patient", "subject"):
            pid = value.rsplit("/", 1)[-1]
            checks.append(lambda r, o, pid=pid: data.patient_of.get((rtype, r["id"])) == pid)
        elif base == "_id":
            ids = set(value.split(","))
            checks.append(lambda r, o, ids=ids: r["id"] in ids)
        elif (rtype, base) in TOKEN_PATHS:
            checks.append(lambda r, o, v=value, p=TOKEN_PATHS[(rtype, base)]: token_matches(v, values_at(r, p)))
        elif (rtype, base) in REFERENCE_PATHS:
            path, target = REFERENCE_PATHS[(rtype, base)]
            checks.append(lambda r, o, v=value, p=path, t=target: reference_matches(v, values_at(r, p), t))
        elif (rtype, base) in DATE_PARAM_PATHS:
            dates.setdefault(base, []).append(value)
        elif base == "value-quantity":
            checks.append(lambda r, o, v=value: any3(quantity_matches(alt, q) for alt in v.split(",")
                                                     for q in values_at(r, "valueQuantity")))
        elif base in ("family", "given", "name") and rtype == "Patient":
            names = expect_patient_string(base, value, modifier)
            checks.append(lambda r, o, e=names: True if r["id"] in e.must else None if r["id"] in e.ambiguous
                          else False)
        else:
            raise AssertionError(f"no expectation rule for {rtype}?{name}")
    for base, values in dates.items():
        checks.append(lambda r, o, p=DATE_PARAM_PATHS[(rtype, base)], v=values: date_param_matches(r, p, v, o))
    return expect(data.of_type(rtype), lambda r, offset: all3(check(r, offset) for check in checks))
