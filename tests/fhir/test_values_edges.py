"""FHIR date ranges and search prefixes at their exact edges, in-process on a real (empty) SQLite store.

Expected sets come from the FHIR R4 search rules (https://hl7.org/fhir/R4/search.html#prefix), worked
out by hand for hand-made resources one second either side of each boundary: month ends (28/29/30/31
days), the last second of a day, ``sa``/``eb`` where the ranges touch. These run in the test process
(not through the server subprocess) so that mutation testing can see them; the HTTP-level behaviour is
covered by test_server_conformance.py against the bundles.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from medagent.fhir.server import store as store_module
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.search import search
from medagent.fhir.server.serve import open_store
from medagent.fhir.server.store import Store
from medagent.fhir.server.values import (
    date_range,
    normalize_string,
    parse_date_param,
    parse_number,
    split_prefix,
)


def epoch(*args: int, tz: timezone = UTC) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


# ---------- date_range: the half-open range a FHIR date covers ----------

@pytest.mark.parametrize(("text", "lo", "hi"), [
    ("2019", epoch(2019, 1, 1), epoch(2020, 1, 1)),
    ("2019-02", epoch(2019, 2, 1), epoch(2019, 3, 1)),       # 28 days
    ("2020-02", epoch(2020, 2, 1), epoch(2020, 3, 1)),       # leap year: 29 days
    ("2019-04", epoch(2019, 4, 1), epoch(2019, 5, 1)),       # 30 days
    ("2019-12", epoch(2019, 12, 1), epoch(2020, 1, 1)),      # 31 days, across the year end
    ("2019-03-31", epoch(2019, 3, 31), epoch(2019, 4, 1)),
    ("2019-12-31", epoch(2019, 12, 31), epoch(2020, 1, 1)),
    ("2019-03-10T10:30", epoch(2019, 3, 10, 10, 30), epoch(2019, 3, 10, 10, 31)),
    ("2019-03-10T10:30:15Z", epoch(2019, 3, 10, 10, 30, 15), epoch(2019, 3, 10, 10, 30, 16)),
    ("2019-03-10T23:59:59Z", epoch(2019, 3, 10, 23, 59, 59), epoch(2019, 3, 11)),
    ("2019-03-10T10:30:15.5Z", epoch(2019, 3, 10, 10, 30, 15) + 0.5, epoch(2019, 3, 10, 10, 30, 15) + 0.6),
    ("2019-03-10T10:30:15.250Z", epoch(2019, 3, 10, 10, 30, 15) + 0.25, epoch(2019, 3, 10, 10, 30, 15) + 0.251),
    ("2019-03-10T10:30:15.1234567Z", epoch(2019, 3, 10, 10, 30, 15) + 0.123456,
     epoch(2019, 3, 10, 10, 30, 15) + 0.123457),
    ("2019-03-10T10:30:00+02:00", epoch(2019, 3, 10, 8, 30), epoch(2019, 3, 10, 8, 30, 1)),
    ("2019-03-10T10:30:00-05:30", epoch(2019, 3, 10, 16, 0), epoch(2019, 3, 10, 16, 0, 1)),
    (" 2019-03-10 ", epoch(2019, 3, 10), epoch(2019, 3, 11)),
])
def test_date_range(text: str, lo: float, hi: float) -> None:
    got_lo, got_hi = date_range(text)
    assert got_lo == pytest.approx(lo, abs=1e-6)
    assert got_hi == pytest.approx(hi, abs=1e-6)


@pytest.mark.parametrize("text", ["2019-3", "19-03-10", "2019-03-10T10", "2019-03-10 10:00", "march 2019", "",
                                  "2019-03-10T10:30:00+0200"])
def test_date_range_rejects_non_fhir_dates(text: str) -> None:
    with pytest.raises(ValueError, match="not a FHIR date"):
        date_range(text)


@pytest.mark.parametrize("value", ["2019-13", "2019-02-30", "ge2019-02-29", "xyz", "ge"])
def test_parse_date_param_names_the_parameter(value: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_date_param("birthdate", value)
    assert caught.value.status == 400
    assert "'birthdate'" in str(caught.value) and repr(value) in str(caught.value)


def test_parse_date_param_returns_prefix_and_range() -> None:
    assert parse_date_param("date", "sa2019-03") == ("sa", epoch(2019, 3, 1), epoch(2019, 4, 1))
    assert parse_date_param("date", "2019-03-10") == ("eq", epoch(2019, 3, 10), epoch(2019, 3, 11))


# ---------- split_prefix ----------

@pytest.mark.parametrize(("value", "expected"), [
    ("ge2019", ("ge", "2019")),
    ("2019", ("eq", "2019")),
    ("sa-5", ("sa", "-5")),
    ("lt+5", ("lt", "+5")),
    ("gt.5", ("gt", ".5")),
    ("eb2019-03-10", ("eb", "2019-03-10")),
    ("ne7", ("ne", "7")),
    ("ap10", ("ap", "10")),
    ("ge", ("eq", "ge")),          # a prefix alone is a value, not a prefix
    ("apple", ("eq", "apple")),    # a word that starts like a prefix is a value
    ("5.5", ("eq", "5.5")),
])
def test_split_prefix(value: str, expected: tuple[str, str]) -> None:
    assert split_prefix(value) == expected


@pytest.mark.parametrize("value", ["xx2019", "Ge2019", "be5"])
def test_unknown_prefix_is_a_clear_400(value: str) -> None:
    with pytest.raises(FhirError) as caught:
        split_prefix(value)
    assert caught.value.status == 400
    assert repr(value[:2]) in str(caught.value) and "ge" in str(caught.value) and "sa" in str(caught.value)


# ---------- strings and numbers ----------

@pytest.mark.parametrize(("text", "expected"), [
    ("Müller ", "muller"), ("ÅSA", "asa"), ("Straße", "strasse"), ("  José María", "jose maria"), ("", ""),
])
def test_normalize_string(text: str, expected: str) -> None:
    assert normalize_string(text) == expected


@pytest.mark.parametrize(("text", "value", "lo", "hi"), [
    ("100", 100.0, 99.5, 100.5),
    ("100.0", 100.0, 99.95, 100.05),
    ("5.4", 5.4, 5.35, 5.45),
    ("-2", -2.0, -2.5, -1.5),
    ("1e2", 100.0, 50.0, 150.0),   # one significant digit: the hundreds
])
def test_parse_number_implicit_range(text: str, value: float, lo: float, hi: float) -> None:
    got = parse_number("value-quantity", text)
    assert got == pytest.approx((value, lo, hi))


@pytest.mark.parametrize(("text", "why"), [("abc", "is not a number"), ("NaN", "not a finite number"),
                                          ("Infinity", "not a finite number"), ("", "is not a number")])
def test_parse_number_rejects(text: str, why: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_number("value-quantity", text)
    assert caught.value.status == 400 and why in str(caught.value) and "'value-quantity'" in str(caught.value)


# ---------- prefixes over a real store ----------

PATIENT = "Patient/p1"

# name -> effective[x]; ranges are [lo, hi) by date_range's rules
DATED: dict[str, dict[str, Any]] = {
    "A_last_second_before": {"effectiveDateTime": "2019-03-09T23:59:59Z"},
    "B_whole_day": {"effectiveDateTime": "2019-03-10"},
    "C_noon": {"effectiveDateTime": "2019-03-10T12:00:00Z"},
    "C2_last_second_of_day": {"effectiveDateTime": "2019-03-10T23:59:59Z"},
    "D_first_second_after": {"effectiveDateTime": "2019-03-11T00:00:00Z"},
    "E_whole_month": {"effectiveDateTime": "2019-03"},
    "F_last_second_of_month": {"effectiveDateTime": "2019-03-31T23:59:59Z"},
    "G_next_month": {"effectiveDateTime": "2019-04-01T00:00:00Z"},
    "H_straddles_start": {"effectivePeriod": {"start": "2019-03-09T12:00:00Z", "end": "2019-03-10T12:00:00Z"}},
    "I_feb_28_noon": {"effectiveDateTime": "2019-02-28T12:00:00Z"},
    "J_last_second_of_2019": {"effectiveDateTime": "2019-12-31T23:59:59Z"},
    "K_leap_day": {"effectiveDateTime": "2020-02-29T08:00:00Z"},
    "L_2021": {"effectiveDateTime": "2021-06-01"},
}
VALUES = {"q5": 5.0, "q5_4": 5.4, "q5_5": 5.5, "q5_56": 5.56, "q6": 6.0}


def observation(name: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": PATIENT},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}], "text": name}, **extra}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """An empty real store (no Synthea load) holding the hand-made observations above."""
    db: Path = tmp_path_factory.mktemp("edges") / "edges.sqlite"
    opened = open_store(db, load_default=False)
    for name, effective in DATED.items():
        opened.create(observation(name, **effective))
    for name, value in VALUES.items():
        opened.create(observation(name, effectiveDateTime="2018-01-01",
                                  valueQuantity={"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                                 "code": "mmol/L"}))
    yield opened
    opened.close()


def names(store: Store, params: list[tuple[str, str]], resource_type: str = "Observation") -> set[str]:
    found = search(store, resource_type, [*params, ("_count", "100")], base_url="http://test/fhir")
    bundle = orjson.loads(orjson.dumps(found))  # entries hold stored JSON as orjson fragments, spliced in as sent
    return {e["resource"]["code"]["text"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def dated(store: Store, value: str) -> set[str]:
    return names(store, [("date", value)]) & set(DATED)


DAY = "2019-03-10"  # parameter range [03-10T00:00Z, 03-11T00:00Z)


@pytest.mark.parametrize(("value", "expected"), [
    # eq: the resource range lies inside the parameter range
    (DAY, {"B_whole_day", "C_noon", "C2_last_second_of_day"}),
    # ne: everything else that has a date
    ("ne" + DAY, set(DATED) - {"B_whole_day", "C_noon", "C2_last_second_of_day"}),
    # sa: starts at or after the parameter's end (D starts exactly at 03-11T00:00)
    ("sa" + DAY, {"D_first_second_after", "F_last_second_of_month", "G_next_month", "J_last_second_of_2019",
                  "K_leap_day", "L_2021"}),
    # eb: ends at or before the parameter's start (A ends exactly at 03-10T00:00)
    ("eb" + DAY, {"A_last_second_before", "I_feb_28_noon"}),
    # gt: some of the resource lies above the parameter range
    ("gt" + DAY, {"D_first_second_after", "E_whole_month", "F_last_second_of_month", "G_next_month",
                  "J_last_second_of_2019", "K_leap_day", "L_2021"}),
    # lt: some of the resource lies below it
    ("lt" + DAY, {"A_last_second_before", "E_whole_month", "H_straddles_start", "I_feb_28_noon"}),
    ("ge" + DAY, {"B_whole_day", "C_noon", "C2_last_second_of_day", "D_first_second_after", "E_whole_month",
                  "F_last_second_of_month", "G_next_month", "J_last_second_of_2019", "K_leap_day", "L_2021"}),
    ("le" + DAY, {"A_last_second_before", "B_whole_day", "C_noon", "C2_last_second_of_day", "E_whole_month",
                  "H_straddles_start", "I_feb_28_noon"}),
])
def test_date_prefixes_at_day_edges(store: Store, value: str, expected: set[str]) -> None:
    assert dated(store, value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2019-02", {"I_feb_28_noon"}),                                   # a 28-day month includes Feb 28
    ("2020-02", {"K_leap_day"}),                                      # and a leap February its 29th
    ("2019-03", {"A_last_second_before", "B_whole_day", "C_noon", "C2_last_second_of_day",
                 "D_first_second_after", "E_whole_month", "F_last_second_of_month", "H_straddles_start"}),
    ("2019-12", {"J_last_second_of_2019"}),
    ("2019", set(DATED) - {"K_leap_day", "L_2021"}),
    ("sa2019-03", {"G_next_month", "J_last_second_of_2019", "K_leap_day", "L_2021"}),
    ("eb2019-03", {"I_feb_28_noon"}),
    ("sa2019", {"K_leap_day", "L_2021"}),
    ("eb2020", set(DATED) - {"K_leap_day", "L_2021"}),
    ("2019-03-10T23:59:59Z", {"C2_last_second_of_day"}),
    ("sa2019-03-10T23:59:59Z", {"D_first_second_after", "F_last_second_of_month", "G_next_month",
                                "J_last_second_of_2019", "K_leap_day", "L_2021"}),
    ("eb2019-03-10T00:00:00Z", {"A_last_second_before", "I_feb_28_noon"}),
])
def test_date_prefixes_at_month_and_year_edges(store: Store, value: str, expected: set[str]) -> None:
    assert dated(store, value) == expected


def test_ap_matches_near_dates_and_not_far_ones(store: Store) -> None:
    near = dated(store, "ap2019-03-10")
    assert {"A_last_second_before", "B_whole_day", "C_noon", "D_first_second_after", "H_straddles_start"} <= near
    assert dated(store, "ap1990-01-01") == set()


def test_or_of_ne_values_excludes_both(store: Store) -> None:
    assert dated(store, "ne2019,ne2020") == {"L_2021"}
    assert dated(store, "2019-02,2020-02") == {"I_feb_28_noon", "K_leap_day"}


def test_ne_cannot_mix_with_other_prefixes(store: Store) -> None:
    with pytest.raises(FhirError) as caught:
        dated(store, "ne2019,ge2020")
    assert caught.value.status == 400 and "'ne'" in str(caught.value)


@pytest.mark.parametrize(("value", "expected"), [
    ("5", {"q5", "q5_4"}),                  # implicit range [4.5, 5.5)
    ("5.5", {"q5_5"}),                      # [5.45, 5.55)
    ("5.0", {"q5"}),                        # [4.95, 5.05)
    ("gt5.5", {"q5_56", "q6"}),
    ("ge5.5", {"q5_5", "q5_56", "q6"}),
    ("lt5.5", {"q5", "q5_4"}),
    ("le5.5", {"q5", "q5_4", "q5_5"}),
    ("sa5.5", {"q5_56", "q6"}),
    ("eb5.5", {"q5", "q5_4"}),
    ("ap5", {"q5", "q5_4", "q5_5"}),        # within 10 % of 5, both ends included
    ("ap6.2", {"q6"}),                      # [5.58, 6.82]: 5.56 is just outside
    ("5.5|http://unitsofmeasure.org|mmol/L", {"q5_5"}),
    ("5.5||mmol/L", {"q5_5"}),
    ("5.5|http://unitsofmeasure.org|mg/dL", set()),
    ("5.5||mg/dL", set()),
])
def test_quantity_prefixes(store: Store, value: str, expected: set[str]) -> None:
    assert names(store, [("value-quantity", value)]) & set(VALUES) == expected


def test_quantity_ne_excludes_the_value(store: Store) -> None:
    assert names(store, [("value-quantity", "ne5.5")]) & set(VALUES) == {"q5", "q5_4", "q5_56", "q6"}


def test_quantity_with_unit_but_no_code_is_a_400(store: Store) -> None:
    with pytest.raises(FhirError) as caught:
        names(store, [("value-quantity", "5.5|http://unitsofmeasure.org|")])
    assert caught.value.status == 400 and "5.5|http://unitsofmeasure.org|" in str(caught.value)


# ---------- _lastUpdated: instants with millisecond precision ----------

STAMPS = {
    "u_before": "2019-03-09T23:59:59.999+00:00",
    "u_start": "2019-03-10T00:00:00.000+00:00",
    "u_end": "2019-03-10T23:59:59.999+00:00",
    "u_after": "2019-03-11T00:00:00.000+00:00",
}


@pytest.fixture(scope="module")
def stamped_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Patients written at hand-picked instants (the store's clock replaced while writing them)."""
    db = tmp_path_factory.mktemp("stamps") / "stamps.sqlite"
    opened = open_store(db, load_default=False)
    real_clock = store_module.now_instant
    try:
        for name, instant in STAMPS.items():
            store_module.now_instant = lambda instant=instant: instant  # type: ignore[misc]
            opened.create({"resourceType": "Patient", "name": [{"family": name}]})
    finally:
        store_module.now_instant = real_clock
    yield opened
    opened.close()


def stamped(store: Store, value: str) -> set[str]:
    bundle = orjson.loads(orjson.dumps(
        search(store, "Patient", [("_lastUpdated", value), ("_count", "100")], base_url="http://test/fhir")))
    return {e["resource"]["name"][0]["family"] for e in bundle.get("entry", [])}


@pytest.mark.parametrize(("value", "expected"), [
    (DAY, {"u_start", "u_end"}),
    ("ne" + DAY, {"u_before", "u_after"}),
    ("gt" + DAY, {"u_after"}),
    ("sa" + DAY, {"u_after"}),
    ("lt" + DAY, {"u_before"}),
    ("eb" + DAY, {"u_before"}),
    ("ge" + DAY, {"u_start", "u_end", "u_after"}),
    ("le" + DAY, {"u_before", "u_start", "u_end"}),
    ("ap" + DAY, {"u_start", "u_end"}),  # unsupported prefixes fall back to eq
])
def test_last_updated_prefixes(stamped_store: Store, value: str, expected: set[str]) -> None:
    assert stamped(stamped_store, value) == expected


def test_timestamps_are_utc_milliseconds() -> None:
    # the stamps above are in the store's own format: a clock change would make these tests vacuous
    stamp = store_module.now_instant()
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0) and len(stamp.split(".")[1]) == len("000+00:00")


# ---------- error messages name the parameter and the value ----------

def test_bad_last_updated_value_names_the_parameter(stamped_store: Store) -> None:
    with pytest.raises(FhirError) as caught:
        stamped(stamped_store, "ge2019-13")
    assert caught.value.status == 400
    assert "search parameter '_lastUpdated': 'ge2019-13' is not a valid [prefix]date" in str(caught.value)


def test_date_error_message_in_full() -> None:
    with pytest.raises(FhirError) as caught:
        parse_date_param("date", "2019-3")
    assert ("search parameter 'date': '2019-3' is not a valid [prefix]date; expected e.g. 2019, 2019-03, "
            "ge2019-03-01 or lt2019-03-01T10:00:00Z") in str(caught.value)


def test_unknown_prefix_message_in_full() -> None:
    with pytest.raises(FhirError) as caught:
        split_prefix("xx2019")
    assert "unknown search prefix 'xx' in 'xx2019'; use one of eq, ne, gt, lt, ge, le, sa, eb, ap" in str(caught.value)


def test_quantity_modifier_and_number_errors(store: Store) -> None:
    with pytest.raises(FhirError) as caught:
        names(store, [("value-quantity:exact", "5.5")])
    assert caught.value.status == 400
    assert "modifier :exact is not supported on quantity parameter 'value-quantity'" in str(caught.value)
    with pytest.raises(FhirError) as caught:
        names(store, [("value-quantity", "gtfive")])
    assert caught.value.status == 400 and "'value-quantity'" in str(caught.value)


def test_ne_mixing_message_in_full(store: Store) -> None:
    with pytest.raises(FhirError) as caught:
        dated(store, "ne2019,2020")
    assert "cannot mix 'ne' with other prefixes in one parameter value" in str(caught.value)


def test_two_digit_offsets() -> None:
    assert date_range("2019-03-10T10:30:00+10:00")[0] == epoch(2019, 3, 10, 0, 30)
    assert date_range("2019-03-10T10:30:00-11:45")[0] == epoch(2019, 3, 10, 22, 15)


# --- the access log's parameter names (hand-made query strings; parse_qsl's decoding) ----------

@pytest.mark.parametrize(("query", "names"), [
    ("", set()),
    ("patient=p1&code=a&code=b", {"patient", "code"}),
    ("&&_count=&flag", {"_count", "flag"}),
    ("given+name=Ana&_has%3ACondition%3Asubject%3Acode=x", {"given name", "_has:Condition:subject:code"}),
    ("a=b=c&=v&%ZZ=1", {"a", "", "%ZZ"}),
])
def test_access_log_keeps_the_decoded_parameter_names_only(query: str, names: set[str]) -> None:
    from medagent.access_log import query_names

    assert query_names(query) == names
