"""The one FHIR vocabulary: the server's search-parameter table, the tools and the scenarios agree with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from medagent import vocabulary
from medagent.fhir.server.search_params import PARAMS
from medagent.tools import manifest, search_args
from medagent.vocabulary import CLINICAL_DATES, SYSTEM_ALIASES, SYSTEM_LABELS, parse_instant


@pytest.mark.parametrize("resource_type", sorted(t for t, d in CLINICAL_DATES.items() if d.search_param))
def test_each_date_search_parameter_is_a_server_date_parameter_over_the_date_the_tools_show(resource_type: str) -> None:
    dates = CLINICAL_DATES[resource_type]
    server = {p.name: p for p in PARAMS.get(resource_type, ())}
    assert dates.search_param in server, f"the server has no {resource_type} search parameter {dates.search_param!r}"
    param = server[dates.search_param]
    assert param.kind == "date"
    shown = dates.paths[0].split(".")[0]  # the element a row's date comes from first
    assert shown in param.paths, (resource_type, shown, param.paths)


def test_types_without_a_date_search_parameter_have_none_on_the_server_either() -> None:
    for resource_type, dates in CLINICAL_DATES.items():
        if dates.search_param is None:
            server_dates = [p.paths for p in PARAMS.get(resource_type, ()) if p.kind == "date"]
            assert all(dates.paths[0] not in paths for paths in server_dates), resource_type


def test_every_type_the_manifest_scans_has_a_date_parameter() -> None:
    assert set(manifest.CLINICAL_TYPES) <= {t for t, d in CLINICAL_DATES.items() if d.search_param}


def test_code_systems_and_the_labels_a_model_may_write() -> None:
    assert SYSTEM_LABELS[vocabulary.LOINC] == "LOINC" and SYSTEM_LABELS[vocabulary.RXNORM] == "RxNorm"
    for alias, url in {"loinc": "http://loinc.org", "sct": "http://snomed.info/sct", "snomed": "http://snomed.info/sct",
                       "rx": "http://www.nlm.nih.gov/research/umls/rxnorm", "cvx": "http://hl7.org/fhir/sid/cvx",
                       "ndc": "http://hl7.org/fhir/sid/ndc"}.items():
        assert SYSTEM_ALIASES[alias] == url
    assert all(alias == alias.lower() for alias in SYSTEM_ALIASES)
    assert search_args.parse_codes("rxnorm|197361") == search_args.parse_codes(f"{vocabulary.RXNORM}|197361") == [(vocabulary.RXNORM, "197361")]


def test_the_scenarios_use_the_same_code_systems() -> None:
    from medagent.scenarios import codes

    assert (codes.LOINC, codes.SNOMED, codes.RXNORM, codes.CVX, codes.NDC, codes.UCUM) == (
        vocabulary.LOINC, vocabulary.SNOMED, vocabulary.RXNORM, vocabulary.CVX, vocabulary.NDC, vocabulary.UCUM)


@pytest.mark.parametrize(("text", "expected"), [
    ("2020", datetime(2020, 1, 1, tzinfo=UTC)),
    ("2020-06", datetime(2020, 6, 1, tzinfo=UTC)),
    ("2020-06-01", datetime(2020, 6, 1, tzinfo=UTC)),
    ("2020-06-01T10:15:00Z", datetime(2020, 6, 1, 10, 15, tzinfo=UTC)),
    ("2020-06-01T10:15:00", datetime(2020, 6, 1, 10, 15, tzinfo=UTC)),
    (" 2020-06-01T10:15:00-05:00 ", datetime(2020, 6, 1, 10, 15, tzinfo=timezone(timedelta(hours=-5)))),
])
def test_one_instant_parser(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


def test_a_bad_instant_names_the_value() -> None:
    with pytest.raises(ValueError, match="'June 1st' is not a FHIR date"):
        parse_instant("June 1st")


def test_the_scenarios_clock_and_the_tools_parse_with_it() -> None:
    from medagent.scenarios.clock import parse_instant as scenario_parse
    from medagent.tools.dates import parse_fhir
    from medagent.tools.mcp_server import parse_now

    assert scenario_parse is parse_instant
    assert parse_fhir("2019-05-02") == parse_now("2019-05-02") == datetime(2019, 5, 2, tzinfo=UTC)
    assert parse_fhir("not a date") is None and parse_fhir(None) is None
