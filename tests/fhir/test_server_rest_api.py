"""The rest of the R4 REST API that real clients use: PATCH, conditional update/delete, history,
``$validate``, ``Observation/$lastn``, ``_revinclude``, ``_has``; errors as OperationOutcomes
(routing included), 404 for unknown types, 406 for formats the server cannot produce.

Runs against every server under test (see conftest.py). Expected search results come from the
bundle files (fhir_expect.py); writes use resources the test creates and deletes again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import pytest
from fhir_expect import dataset, parse_date, token_matches
from fhir_support import (
    Cleanup,
    FhirTarget,
    assert_outcome,
    entries,
    link,
    track_if_created,
)

# Deviations of sekmet-fhir 0.1.x found by this module (strict xfails on sekmet only).
SEKMET_DEVIATIONS: dict[str, str] = {
    "test_capability_statement_lists_the_interactions": "no Observation/$lastn operation",
    "test_lastn": "no Observation/$lastn operation (404)",
    "test_lastn_by_code": "no Observation/$lastn operation (404)",
    "test_instance_history_of_unknown_resource":
        "history of an id that never existed answers an empty 200 history Bundle instead of 404",
    "test_type_and_system_history":
        "history `next` links drop `_since`, so the second page onward is unfiltered",
    "test_bad_has_is_refused_even_when_lenient":
        "a malformed `_has` (no parameter, not a reference parameter, unknown parameter) is ignored: "
        "every Patient comes back",
    "test_unsupported_filtering_parameters_are_refused_or_filter":
        "`_filter`, `_list`, `_text` and `_content` are ignored: the whole unfiltered result comes back",
    "test_routing_errors_are_operation_outcomes": "an unknown path answers 400 instead of 404",
    "test_parameter_on_a_type_without_search_parameters_is_refused_or_filters":
        "`patient` on CareTeam is ignored: every CareTeam comes back",
    "test_transaction_bundle_is_validated_as_a_whole":
        "the transaction Bundle itself is not validated: an unknown top-level field or a bad "
        "Bundle.timestamp is accepted and the entries are committed",
}

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MOST_OBSERVATIONS = "Rodríguez"


def patient_id(family: str) -> str:
    return dataset().patient_by_name(family)["id"]


def new_patient(fhir: FhirTarget, cleanup: Cleanup, **extra: Any) -> dict[str, Any]:
    body = {"resourceType": "Patient", "name": [{"family": f"Zqrest{uuid.uuid4().hex[:8]}", "given": ["Api"]}],
            "gender": "unknown", "birthDate": "1990-05-06", **extra}
    return cleanup.created(fhir.create(body))


def identifier() -> tuple[str, str]:
    return "urn:medagent:rest-api", uuid.uuid4().hex


# --------------------------------------------------------------------------------------------
# capability
# --------------------------------------------------------------------------------------------

def test_capability_statement_lists_the_interactions(fhir: FhirTarget) -> None:
    rest = fhir.get("metadata").json()["rest"][0]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "history-instance", "history-type",
            "search-type", "create"} <= codes, codes
    assert patient.get("conditionalUpdate") is True
    assert patient.get("conditionalDelete") in ("single", "multiple")
    observation = next(r for r in rest["resource"] if r["type"] == "Observation")
    operations = {o["name"] for o in [*observation.get("operation", []), *rest.get("operation", [])]}
    assert {"validate", "lastn"} <= operations, operations


# --------------------------------------------------------------------------------------------
# PATCH (JSON Patch)
# --------------------------------------------------------------------------------------------

def test_json_patch(fhir: FhirTarget, cleanup: Cleanup) -> None:
    created = new_patient(fhir, cleanup)
    path = f"Patient/{created['id']}"
    operations = [{"op": "replace", "path": "/gender", "value": "female"},
                  {"op": "add", "path": "/telecom", "value": [{"system": "phone", "value": "555-0100"}]}]
    response = fhir.request("PATCH", path, json=operations, headers=JSON_PATCH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "female" and body["telecom"] == [{"system": "phone", "value": "555-0100"}]
    assert body["meta"]["versionId"] == "2"
    assert body["name"] == created["name"] and body["birthDate"] == created["birthDate"]
    read = fhir.get(path).json()
    assert read["gender"] == "female" and read["meta"]["versionId"] == "2"


def test_json_patch_with_if_match(fhir: FhirTarget, cleanup: Cleanup) -> None:
    created = new_patient(fhir, cleanup)
    path = f"Patient/{created['id']}"
    operations = [{"op": "replace", "path": "/gender", "value": "male"}]
    stale = fhir.request("PATCH", path, json=operations, headers={**JSON_PATCH, "If-Match": 'W/"5"'})
    assert stale.status_code in (409, 412), stale.text
    assert fhir.get(path).json()["meta"]["versionId"] == "1"
    fresh = fhir.request("PATCH", path, json=operations, headers={**JSON_PATCH, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["gender"] == "male"


@pytest.mark.parametrize("case, operations, statuses, mention", [
    pytest.param("failed-test-op", [{"op": "test", "path": "/gender", "value": "female"},
                                    {"op": "replace", "path": "/gender", "value": "male"}], (409, 412, 422), ("gender", "female"),
                 id="failed-test-op"),
    pytest.param("missing-path", [{"op": "replace", "path": "/maritalStatus/text", "value": "x"}], (400, 409, 422),
                 "maritalStatus", id="missing-path"),
    pytest.param("invalid-result", [{"op": "replace", "path": "/birthDate", "value": "the fifth of may"}],
                 (400, 422), "birthDate", id="invalid-result"),
    pytest.param("not-a-patch", {"op": "replace", "path": "/gender", "value": "male"}, (400, 415, 422), None,
                 id="not-an-array"),
])
def test_bad_json_patch_changes_nothing(fhir: FhirTarget, cleanup: Cleanup, case: str, operations: Any,
                                        statuses: tuple[int, ...], mention: Any) -> None:
    created = new_patient(fhir, cleanup)
    path = f"Patient/{created['id']}"
    response = fhir.request("PATCH", path, json=operations, headers=JSON_PATCH)
    assert_outcome(response, statuses, *([mention] if mention else []))
    after = fhir.get(path).json()
    assert after["meta"]["versionId"] == "1" and after["gender"] == "unknown" and after["birthDate"] == "1990-05-06"


def test_patch_of_unknown_resource(fhir: FhirTarget) -> None:
    response = fhir.request("PATCH", "Patient/no-such-patient-4548",
                            json=[{"op": "replace", "path": "/gender", "value": "male"}], headers=JSON_PATCH)
    assert_outcome(response, (404,), "no-such-patient-4548")


def test_patch_needs_a_patch_content_type(fhir: FhirTarget, cleanup: Cleanup) -> None:
    created = new_patient(fhir, cleanup)
    response = fhir.request("PATCH", f"Patient/{created['id']}", json={**created, "gender": "male"},
                            headers={"Content-Type": "application/fhir+json"})
    assert_outcome(response, (400, 415, 422))
    assert fhir.get(f"Patient/{created['id']}").json()["gender"] == "unknown"


# --------------------------------------------------------------------------------------------
# conditional update and delete
# --------------------------------------------------------------------------------------------

def test_conditional_update_no_one_and_many_matches(fhir: FhirTarget, cleanup: Cleanup) -> None:
    system, value = identifier()
    query = f"identifier={system}|{value}"
    body = {"resourceType": "Patient", "identifier": [{"system": system, "value": value}],
            "name": [{"family": "Zqcondput"}], "gender": "female"}
    # no match: created, with a server-assigned id
    first = fhir.request("PUT", f"Patient?{query}", json=body)
    assert first.status_code == 201, first.text
    rid = cleanup.created(first)["id"]
    # one match: that resource is updated
    second = fhir.request("PUT", f"Patient?{query}", json={**body, "gender": "male"})
    assert second.status_code == 200, second.text
    assert second.json()["id"] == rid and second.json()["meta"]["versionId"] == "2"
    assert fhir.get(f"Patient/{rid}").json()["gender"] == "male"
    # one match but the body names another id: refused
    other = fhir.request("PUT", f"Patient?{query}", json={**body, "id": "some-other-id-4548"})
    track_if_created(cleanup, other)
    assert_outcome(other, (400, 409, 412))
    # several matches: 412, nothing changed
    cleanup.created(fhir.create(body))
    many = fhir.request("PUT", f"Patient?{query}", json={**body, "gender": "other"})
    assert_outcome(many, (412,))
    assert fhir.count("Patient", {"identifier": f"{system}|{value}", "gender": "other"}) == 0
    assert fhir.count("Patient", {"identifier": f"{system}|{value}"}) == 2


def test_conditional_delete(fhir: FhirTarget, cleanup: Cleanup) -> None:
    system, value = identifier()
    query = f"identifier={system}|{value}"
    body = {"resourceType": "Patient", "identifier": [{"system": system, "value": value}],
            "name": [{"family": "Zqconddel"}]}
    none = fhir.request("DELETE", f"Patient?{query}")
    assert none.status_code in (200, 204), none.text
    one = cleanup.created(fhir.create(body))
    deleted = fhir.request("DELETE", f"Patient?{query}")
    assert deleted.status_code in (200, 204), deleted.text
    assert fhir.get(f"Patient/{one['id']}").status_code in (404, 410)
    kept = [cleanup.created(fhir.create(body)) for _ in range(2)]
    many = fhir.request("DELETE", f"Patient?{query}")
    if many.status_code == 412:  # a server that deletes one resource per conditional delete
        assert_outcome(many, (412,))
        assert all(fhir.get(f"Patient/{p['id']}").status_code == 200 for p in kept)
    else:  # conditionalDelete=multiple
        assert many.status_code in (200, 204), many.text
        assert fhir.count("Patient", {"identifier": f"{system}|{value}"}) == 0
    # the loaded patients are untouched
    assert fhir.count("Patient", {"identifier": f"{system}|"}) <= 2
    assert fhir.get(f"Patient/{patient_id(MOST_OBSERVATIONS)}").status_code == 200


def test_conditional_delete_with_unknown_parameter_deletes_nothing(fhir: FhirTarget, cleanup: Cleanup) -> None:
    """A condition the server cannot evaluate must not be dropped: that would widen the delete."""
    created = new_patient(fhir, cleanup)
    response = fhir.request("DELETE", f"Patient?_id={created['id']}&frobnicate-4548=yes")
    assert_outcome(response, (400, 412), "frobnicate-4548")
    assert fhir.get(f"Patient/{created['id']}").status_code == 200


# --------------------------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------------------------

def history(fhir: FhirTarget, path: str, params: Any = None) -> dict[str, Any]:
    response = fhir.get(path, params=params)
    assert response.status_code == 200, f"GET {path} {params}: {response.status_code} {response.text[:500]}"
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history", bundle
    return bundle


def all_history_pages(fhir: FhirTarget, path: str, params: Any = None) -> list[dict[str, Any]]:
    bundle = history(fhir, path, params)
    found = list(bundle.get("entry", []))
    while (nxt := link(bundle, "next")) is not None:
        assert len(found) < 5000
        bundle = history(fhir, nxt)
        found += bundle.get("entry", [])
    return found


def test_instance_history_of_a_loaded_resource(fhir: FhirTarget) -> None:
    patient = dataset().patients[patient_id("Huels")]
    bundle = history(fhir, f"Patient/{patient['id']}/_history")
    assert bundle.get("total") in (None, 1)
    [entry] = bundle["entry"]
    resource = entry["resource"]
    assert {k: v for k, v in resource.items() if k != "meta"} == {k: v for k, v in patient.items() if k != "meta"}
    assert entry["response"]["status"].startswith(("200", "201"))


def test_instance_history_create_update_delete(fhir: FhirTarget, cleanup: Cleanup) -> None:
    created = new_patient(fhir, cleanup)
    path = f"Patient/{created['id']}"
    updated = fhir.request("PUT", path, json={**created, "gender": "female"})
    assert updated.status_code == 200, updated.text
    assert fhir.request("DELETE", path).status_code in (200, 204)
    bundle = history(fhir, f"{path}/_history")
    assert bundle.get("total") in (None, 3)
    items = bundle["entry"]
    assert len(items) == 3
    assert [e["request"]["method"] for e in items] == ["DELETE", "PUT", "POST"]
    assert "resource" not in items[0]
    assert [e["resource"]["meta"]["versionId"] for e in items[1:]] == ["2", "1"]
    assert items[1]["resource"]["gender"] == "female" and items[2]["resource"]["gender"] == "unknown"
    paged = all_history_pages(fhir, f"{path}/_history", {"_count": 1})
    assert [e["request"]["method"] for e in paged] == ["DELETE", "PUT", "POST"]
    since = items[1]["resource"]["meta"]["lastUpdated"]
    recent = history(fhir, f"{path}/_history", {"_since": since}).get("entry", [])
    assert [e["request"]["method"] for e in recent] == ["DELETE", "PUT"]


def test_instance_history_of_unknown_resource(fhir: FhirTarget) -> None:
    assert_outcome(fhir.get("Patient/no-such-patient-4548/_history"), (404,))


def test_type_and_system_history(fhir: FhirTarget, cleanup: Cleanup) -> None:
    first = new_patient(fhir, cleanup)
    since = first["meta"]["lastUpdated"]
    second = new_patient(fhir, cleanup)
    observation = cleanup.created(fhir.create({
        "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": LOINC, "code": "8302-2"}]},
        "subject": {"reference": f"Patient/{second['id']}"}, "effectiveDateTime": "2021-01-01T10:00:00Z"}))
    typed = all_history_pages(fhir, "Patient/_history", {"_since": since, "_count": 1})
    typed_keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in typed if "resource" in e]
    assert ("Patient", first["id"]) in typed_keys and ("Patient", second["id"]) in typed_keys
    assert all(t == "Patient" for t, _ in typed_keys)
    assert all(e["resource"]["meta"]["lastUpdated"] >= since for e in typed if "resource" in e)
    system = all_history_pages(fhir, "_history", {"_since": since})
    system_keys = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in system if "resource" in e}
    assert {("Patient", second["id"]), ("Observation", observation["id"])} <= system_keys
    stamps = [e["response"].get("lastModified") or e["resource"]["meta"]["lastUpdated"] for e in system]
    assert stamps == sorted(stamps, reverse=True), "history is newest first"
    assert history(fhir, "Patient/_history", {"_since": "2999-01-01T00:00:00Z"}).get("entry", []) == []


def test_type_history_total_counts_the_loaded_resources(fhir: FhirTarget) -> None:
    bundle = history(fhir, "Goal/_history", {"_count": 5})
    if "total" in bundle:
        assert bundle["total"] >= len(dataset().of_type("Goal"))
    assert len(bundle.get("entry", [])) == 5


# --------------------------------------------------------------------------------------------
# $validate
# --------------------------------------------------------------------------------------------

def errors_in(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def test_validate_a_bundle_resource(fhir: FhirTarget) -> None:
    condition = dataset().of_type("Condition", patient_id("Huels"))[0]
    response = fhir.request("POST", "Condition/$validate", json=condition)
    assert response.status_code == 200, response.text
    assert errors_in(response.json()) == []
    wrapped = fhir.request("POST", "Condition/$validate",
                           json={"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": condition}]})
    assert wrapped.status_code == 200, wrapped.text
    assert errors_in(wrapped.json()) == []


def test_validate_reports_problems_and_stores_nothing(fhir: FhirTarget) -> None:
    family = f"Zqvalidate{uuid.uuid4().hex[:6]}"
    bad = {"resourceType": "Patient", "name": [{"family": family}], "birthDate": "the fifth of may"}
    response = fhir.request("POST", "Patient/$validate", json=bad)
    assert response.status_code in (200, 400, 422), response.text
    problems = errors_in(response.json())
    assert problems and "birthDate" in str(problems)
    good = fhir.request("POST", "Patient/$validate", json={**bad, "birthDate": "1990-05-06"})
    assert good.status_code == 200 and errors_in(good.json()) == []
    assert fhir.count("Patient", {"family": family}) == 0


# --------------------------------------------------------------------------------------------
# Observation/$lastn
# --------------------------------------------------------------------------------------------

def code_key(observation: dict[str, Any]) -> str:
    return min(f"{c.get('system', '')}|{c.get('code', '')}" for c in observation["code"]["coding"])


def expected_lastn(pid: str, category: str, maximum: int) -> dict[str, list[float]]:
    """code -> effective times of the newest ``maximum`` Observations, from the bundles."""
    groups: dict[str, list[float]] = defaultdict(list)
    for obs in dataset().of_type("Observation", pid):
        if token_matches(category, obs.get("category", [])):
            groups[code_key(obs)].append(parse_date(obs["effectiveDateTime"]).lo)
    return {code: sorted(times, reverse=True)[:maximum] for code, times in groups.items()}


@pytest.mark.parametrize("maximum", [1, 3])
def test_lastn(fhir: FhirTarget, maximum: int) -> None:
    pid = patient_id(MOST_OBSERVATIONS)
    category = f"{OBS_CATEGORY}|vital-signs"
    expected = expected_lastn(pid, category, maximum)
    assert len(expected) > 3 and any(len(v) == maximum for v in expected.values())
    response = fhir.get("Observation/$lastn", params={"patient": pid, "category": category, "max": maximum})
    assert response.status_code == 200, response.text
    got: dict[str, list[float]] = defaultdict(list)
    for obs in entries(response.json(), "Observation"):
        assert obs["subject"]["reference"].endswith(pid)
        got[code_key(obs)].append(parse_date(obs["effectiveDateTime"]).lo)
    assert {k: sorted(v, reverse=True) for k, v in got.items()} == expected


def test_lastn_by_code(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    hba1c = f"{LOINC}|4548-4"
    times = sorted((parse_date(o["effectiveDateTime"]).lo for o in dataset().of_type("Observation", pid)
                    if token_matches(hba1c, o["code"])), reverse=True)
    response = fhir.get("Observation/$lastn", params={"patient": pid, "code": hba1c, "max": 2})
    assert response.status_code == 200, response.text
    got = sorted((parse_date(o["effectiveDateTime"]).lo for o in entries(response.json(), "Observation")),
                 reverse=True)
    assert got == times[:2]


# --------------------------------------------------------------------------------------------
# _revinclude and _has
# --------------------------------------------------------------------------------------------

def test_revinclude(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    expected = {c["id"] for c in dataset().of_type("Condition", pid)}
    assert expected
    result = fhir.search_all("Patient", {"_id": pid, "_revinclude": "Condition:subject"})
    assert result.ids == [pid]
    assert {(r["resourceType"], r["id"]) for r in result.included} == {("Condition", c) for c in expected}


def test_revinclude_of_encounter(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    encounter = dataset().of_type("Encounter", pid)[3]
    expected = {o["id"] for o in dataset().of_type("Observation", pid)
                if (o.get("encounter") or {}).get("reference") == f"Encounter/{encounter['id']}"}
    assert expected
    result = fhir.search_all("Encounter", {"_id": encounter["id"], "_revinclude": "Observation:encounter"})
    assert result.ids == [encounter["id"]]
    assert {r["id"] for r in result.included if r["resourceType"] == "Observation"} == expected


def patients_with(rtype: str, token_path: str, value: str) -> set[str]:
    data = dataset()
    return {data.patient_of[(rtype, r["id"])] for r in data.of_type(rtype)
            if token_matches(value, r.get(token_path)) and (rtype, r["id"]) in data.patient_of}


@pytest.mark.parametrize("rtype, param, value", [
    pytest.param("Condition", "code", f"{SNOMED}|49436004", id="atrial-fibrillation"),
    pytest.param("Condition", "code", f"{SNOMED}|84757009,{SNOMED}|230690007", id="epilepsy-or-stroke"),
    pytest.param("Observation", "code", f"{LOINC}|4548-4", id="hba1c"),
])
def test_has(fhir: FhirTarget, rtype: str, param: str, value: str) -> None:
    expected = patients_with(rtype, param, value)
    assert 0 < len(expected) < 100
    result = fhir.search_all("Patient", [(f"_has:{rtype}:subject:{param}", value), ("_count", "7")])
    assert sorted(result.ids) == sorted(expected)


def test_has_combined_with_another_parameter(fhir: FhirTarget) -> None:
    expected = patients_with("Condition", "code", f"{SNOMED}|15777000")  # prediabetes
    women = {p for p in expected if dataset().patients[p]["gender"] == "female"}
    assert 0 < len(women) < len(expected)
    result = fhir.search_all("Patient", {"_has:Condition:subject:code": f"{SNOMED}|15777000", "gender": "female"})
    assert sorted(result.ids) == sorted(women)


@pytest.mark.parametrize("name", [
    "_has:Condition:subject",  # no parameter
    "_has:Condition:frobnicate:code",  # not a reference parameter
    "_has:Condition:subject:frobnicate-4548",  # unknown parameter of the other type
])
def test_bad_has_is_refused_even_when_lenient(fhir: FhirTarget, name: str) -> None:
    assert_outcome(fhir.get("Patient", params={name: f"{SNOMED}|49436004"}), (400,))


# --------------------------------------------------------------------------------------------
# never silently wrong: a filter is implemented or refused
# --------------------------------------------------------------------------------------------

def test_chained_parameter_is_implemented_or_refused(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    family = dataset().patients[pid]["name"][0]["family"]
    response = fhir.get("Condition", params={"subject:Patient.family": family, "_count": 1000})
    if response.status_code == 200:
        got = {r["id"] for r in entries(response.json(), "Condition")}
        assert got == {c["id"] for c in dataset().of_type("Condition", pid)}
    else:
        assert_outcome(response, (400,), "subject:Patient.family")


@pytest.mark.parametrize("name, value", [("_filter", "code eq 4548-4"), ("_list", "some-list"),
                                          ("_text", "diabetes"), ("_content", "diabetes")])
def test_unsupported_filtering_parameters_are_refused_or_filter(fhir: FhirTarget, name: str, value: str) -> None:
    response = fhir.get("Condition", params={"patient": patient_id("Huels"), name: value})
    everything = {c["id"] for c in dataset().of_type("Condition", patient_id("Huels"))}
    if response.status_code == 200:
        got = {r["id"] for r in entries(response.json(), "Condition")}
        assert got < everything, f"{name} was ignored: every Condition of the patient came back"
    else:
        assert_outcome(response, (400, 501), name)


# --------------------------------------------------------------------------------------------
# errors: unknown types, routing, formats, whole-Bundle validation
# --------------------------------------------------------------------------------------------

def test_unknown_type_is_404(fhir: FhirTarget) -> None:
    for path in ("Frobnication", "Frobnication/1", "Frobnication/1/_history"):
        assert_outcome(fhir.get(path), (404,), "Frobnication")


def test_routing_errors_are_operation_outcomes(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    assert_outcome(fhir.get(f"Patient/{pid}/_history/1/extra/parts"), (404,))
    not_allowed = fhir.request("POST", f"Patient/{pid}", json={"resourceType": "Patient"})
    assert_outcome(not_allowed, (405,))
    allowed = {m.strip() for m in not_allowed.headers.get("Allow", "").split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed, not_allowed.headers.get("Allow")


@pytest.mark.parametrize("params, headers", [
    pytest.param({"_format": "xml"}, {}, id="format-xml"),
    pytest.param({"_format": "application/fhir+xml"}, {}, id="format-fhir-xml"),
    pytest.param({}, {"Accept": "application/fhir+xml"}, id="accept-xml"),
    pytest.param({}, {"Accept": "text/turtle"}, id="accept-turtle"),
])
def test_format_the_server_cannot_produce(fhir: FhirTarget, params: dict[str, str], headers: dict[str, str]) -> None:
    response = fhir.get("Patient", params={"_id": patient_id("Huels"), **params}, headers=headers)
    if response.status_code == 200:  # a server that can produce it must actually do so
        assert not response.headers.get("content-type", "").startswith(("application/fhir+json", "application/json"))
        assert response.text.lstrip()[:1] in ("<", "@"), response.text[:100]
    else:
        assert_outcome(response, (406, 415))


def test_json_formats_are_accepted(fhir: FhirTarget) -> None:
    for params, headers in (({"_format": "json"}, {}), ({"_format": "application/fhir+json"}, {}),
                            ({}, {"Accept": "application/fhir+xml;q=0.9, application/fhir+json"}),
                            ({}, {"Accept": "*/*"})):
        response = fhir.get("Patient", params={"_id": patient_id("Huels"), **params}, headers=headers)
        assert response.status_code == 200, (params, headers, response.text[:300])
        assert response.json()["resourceType"] == "Bundle"


@pytest.mark.parametrize("change, mention", [
    pytest.param({"frobnicate": True}, "frobnicate", id="unknown-top-level-field"),
    pytest.param({"timestamp": "yesterday"}, "timestamp", id="bad-timestamp"),
])
def test_transaction_bundle_is_validated_as_a_whole(fhir: FhirTarget, cleanup: Cleanup, change: dict[str, Any],
                                                    mention: str) -> None:
    family = f"Zqbundle{uuid.uuid4().hex[:8]}"
    bundle = {"resourceType": "Bundle", "type": "transaction", **change, "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "name": [{"family": family}]}}]}
    response = fhir.request("POST", "", json=bundle)
    track_if_created(cleanup, response)
    assert_outcome(response, (400, 422), mention)
    assert fhir.count("Patient", {"family": family}) == 0


def test_standard_parameter_not_implemented_is_refused_or_filters(fhir: FhirTarget) -> None:
    """Observation ``performer`` is a standard R4 parameter; no Observation in the bundles has a
    performer, so a server that implements it returns nothing for this patient."""
    pid = patient_id("Huels")
    response = fhir.get("Observation", params={"patient": pid, "performer": "Practitioner/no-such-4548"})
    if response.status_code == 200:
        assert entries(response.json(), "Observation") == []
    else:
        assert_outcome(response, (400,), "performer")


def test_parameter_on_a_type_without_search_parameters_is_refused_or_filters(fhir: FhirTarget,
                                                                              cleanup: Cleanup) -> None:
    """CareTeam (stored, not indexed here): a ``patient`` filter must not return every CareTeam."""
    mine = new_patient(fhir, cleanup)
    team = cleanup.created(fhir.create({"resourceType": "CareTeam", "status": "active",
                                        "subject": {"reference": f"Patient/{mine['id']}"}}))
    other = cleanup.created(fhir.create({"resourceType": "CareTeam", "status": "active",
                                         "subject": {"reference": f"Patient/{patient_id('Huels')}"}}))
    response = fhir.get("CareTeam", params={"patient": mine["id"]})
    if response.status_code == 200:
        got = {r["id"] for r in entries(response.json(), "CareTeam")}
        assert team["id"] in got and other["id"] not in got
    else:
        assert_outcome(response, (400,), "patient")
