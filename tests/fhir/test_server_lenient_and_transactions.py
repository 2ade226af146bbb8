"""Lenient handling of unsupported result parameters and empty values; GET searches inside a transaction."""

from __future__ import annotations

import httpx


def _ignored(bundle: dict) -> str:
    outcomes = [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
    return " ".join(i["diagnostics"] for o in outcomes for i in o["issue"])


def test_unknown_sort_and_include_are_ignored_when_lenient_and_rejected_when_strict(fhir_url: str) -> None:
    lenient = httpx.get(f"{fhir_url}/Observation", params={"_sort": "foo,-date", "_include": "Observation:foo",
                                                            "_count": 1})
    assert lenient.status_code == 200
    bundle = lenient.json()
    assert "_sort=foo" in _ignored(bundle) and "_include=Observation:foo" in _ignored(bundle)
    self_link = bundle["link"][0]["url"]
    assert "foo" not in self_link and "_sort=-date" in self_link
    strict = httpx.get(f"{fhir_url}/Observation", params={"_sort": "foo"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "foo" in strict.text


def test_empty_values_are_ignored_consistently(fhir_url: str) -> None:
    total = httpx.get(f"{fhir_url}/Patient", params={"_summary": "count"}).json()["total"]
    for name in ("_id", "family", "birthdate"):
        response = httpx.get(f"{fhir_url}/Patient", params={name: "", "_summary": "count"})
        assert response.status_code == 200 and response.json()["total"] == total, name
    strict = httpx.get(f"{fhir_url}/Patient", params={"family": ""}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "empty value" in strict.text


def test_search_inside_a_transaction_is_a_clear_400(fhir_url: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "GET", "url": "Patient?family=Mejia"}}]}
    response = httpx.post(fhir_url, json=bundle)
    assert response.status_code == 400
    assert "searches are not supported inside a transaction" in response.text
