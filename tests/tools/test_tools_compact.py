"""Compaction: one line per resource, the budget per call, and an explicit 'N more' marker instead of silent truncation."""

from __future__ import annotations

from datetime import UTC, datetime

from medagent.fhir.client import FhirClient
from medagent.tools import ToolContext
from medagent.tools.compact import Line, clean, code_label, number, render

NOW = datetime(2019, 5, 2, tzinfo=UTC)


def ctx(budget: int) -> ToolContext:
    return ToolContext(client=FhirClient("http://127.0.0.1:9"), now=NOW, token_budget=budget)


def lines(n: int) -> list[Line]:
    return [Line(f"2019-01-{i + 1:02d} | Glucose (LOINC 2339-0) | {90 + i} mg/dL | Observation/o{i}",
                 {"ref": f"Observation/o{i}"}) for i in range(n)]


def test_everything_fits_a_generous_budget() -> None:
    result = render(ctx(800), "observations: 5 found", lines(5))
    assert result.text.splitlines()[0] == "observations: 5 found"
    assert len(result.text.splitlines()) == 6 and result.truncated == 0
    assert result.references == [f"Observation/o{i}" for i in range(5)]
    assert [r["ref"] for r in result.rows] == result.references


def test_budget_cut_is_marked_and_counted() -> None:
    result = render(ctx(100), "observations: 500 found", lines(30), total=500, hint="since/until")
    assert len(result.text) <= 100 * 4
    shown = len(result.rows)
    assert 0 < shown < 30
    assert result.truncated == 500 - shown
    marker = (f"... {500 - shown} more not shown (of 500; rows 1-{shown} shown, cut by the ~100-token budget per "
              f"call); next page: the same arguments with offset={shown}, or narrow by since/until")
    assert result.text.splitlines()[-1] == marker
    assert result.references == [f"Observation/o{i}" for i in range(shown)], "stable order: the first rows are kept"


def test_server_side_limit_is_reported_too() -> None:
    result = render(ctx(800), "header", lines(3), total=10)
    assert result.truncated == 7 and "7 more not shown (of 10; rows 1-3 shown" in result.text
    assert "offset=3" in result.text and "raise limit" not in result.text


def test_empty_result_says_so() -> None:
    result = render(ctx(800), "conditions: 0 found", [], empty="none found; try lookup_codes")
    assert result.text == "conditions: 0 found\nnone found; try lookup_codes" and result.rows == []


def test_formatting_helpers() -> None:
    assert number(175.98241711129813) == "175.98" and number(0.8473) == "0.847" and number(4.0) == "4"
    assert number(-0.0001) == "0" and number(12) == "12"
    assert code_label("http://loinc.org", "4548-4") == "LOINC 4548-4"
    assert code_label("http://snomed.info/sct", "44054006") == "SNOMED 44054006"
    assert code_label("http://example.org/codes", "x") == "codes x"
    assert clean("Hemoglobin\u200b  A1c\n") == "Hemoglobin A1c"
    assert clean("x" * 200, 20) == "x" * 17 + "..."
