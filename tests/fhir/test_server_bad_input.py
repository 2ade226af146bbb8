"""Bad requests get a clear OperationOutcome, leave no trace, and the server keeps serving.

Plus the scoring endpoints of the embedded server: ``/$snapshot``, ``/$reset``, ``/$diff``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fhir_expect import dataset
from fhir_support import (
    Cleanup,
    FhirTarget,
    assert_outcome,
    entries,
    link,
    link_params,
    track_if_created,
)

SEKMET_DEVIATIONS: dict[str, str] = {
    "test_invalid_resource_rejected[bogus-status]":
        "validation is structural only: required code bindings (Observation.status) are not enforced",
    "test_invalid_update_leaves_resource_unchanged":
        "validation is structural only: required code bindings (Observation.status) are not enforced",
    "test_transaction_with_one_bad_entry_leaves_nothing[bogus-status]":
        "validation is structural only: required code bindings (Observation.status) are not enforced, "
        "so the whole transaction is committed",
}

LOINC = "http://loinc.org"


def assert_still_serving(fhir: FhirTarget) -> None:
    """A good request right after a bad one succeeds."""
    response = fhir.get("Patient", params={"family": "Mejia"})
    assert response.status_code == 200, response.text
    assert len(entries(response.json(), "Patient")) == 1


def some(rtype: str, family: str = "Rodríguez") -> dict[str, Any]:
    pid = dataset().patient_by_name(family)["id"]
    return dataset().of_type(rtype, pid)[0]


def observation(**changes: Any) -> dict[str, Any]:
    body = {
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": "urn:medagent:bad-input", "value": uuid.uuid4().hex}],
        "code": {"coding": [{"system": LOINC, "code": "8302-2", "display": "Body Height"}]},
        "subject": {"reference": f"Patient/{some('Patient')['id']}"},
        "effectiveDateTime": "2021-03-04T10:00:00Z",
        "valueQuantity": {"value": 170.2, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
    }
    body.update(changes)
    return body


@pytest.fixture
def scratch(fhir: FhirTarget, cleanup: Cleanup) -> dict[str, dict[str, Any]]:
    """A patient of our own with one Observation and one Condition, deleted afterwards: tests
    that try to damage resources aim at these, so a server that wrongly accepts leaves no trace."""
    patient = cleanup.created(fhir.create({"resourceType": "Patient", "name": [{"family": "Zqscratch"}]}))
    subject = {"reference": f"Patient/{patient['id']}"}
    obs = cleanup.created(fhir.create(observation(subject=subject)))
    condition = cleanup.created(fhir.create({
        "resourceType": "Condition", "subject": subject,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]}}))
    return {"Patient": patient, "Observation": obs, "Condition": condition}


# --------------------------------------------------------------------------------------------
# malformed bodies
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["Patient", ""])
def test_malformed_json(fhir: FhirTarget, path: str) -> None:
    response = fhir.request("POST", path, content=b'{"resourceType": "Patient", "name": [',
                            headers={"Content-Type": "application/fhir+json"})
    assert_outcome(response, (400,), "json")
    assert_still_serving(fhir)


def test_create_with_wrong_resource_type(fhir: FhirTarget, cleanup: Cleanup) -> None:
    before = fhir.count("Observation")
    response = fhir.request("POST", "Patient", json=observation())
    track_if_created(cleanup, response)
    assert_outcome(response, (400,), "Observation", "Patient")
    assert fhir.count("Observation") == before
    assert_still_serving(fhir)


def test_update_with_wrong_resource_type(fhir: FhirTarget, scratch: dict[str, dict[str, Any]]) -> None:
    patient = scratch["Patient"]
    response = fhir.request("PUT", f"Patient/{patient['id']}", json=observation(id=patient["id"]))
    assert_outcome(response, (400,), "Observation", "Patient")
    current = fhir.get(f"Patient/{patient['id']}").json()
    assert current["resourceType"] == "Patient" and current["meta"]["versionId"] == patient["meta"]["versionId"]
    assert_still_serving(fhir)


@pytest.mark.parametrize(("case", "changes", "element"), [
    pytest.param("bogus-status", {"status": "bogus"}, "status", id="bogus-status"),
    pytest.param("value-not-a-number", {"valueQuantity": {"value": "tall", "unit": "cm"}}, "valueQuantity",
                 id="value-not-a-number"),
    pytest.param("unknown-element", {"colour": "blue"}, "colour", id="unknown-element"),
    pytest.param("bad-date", {"effectiveDateTime": "2021-13-45"}, "effectiveDateTime", id="bad-date"),
])
def test_invalid_resource_rejected(fhir: FhirTarget, cleanup: Cleanup, case: str, changes: dict[str, Any],
                                   element: str) -> None:
    body = observation(**changes)
    identifier = body["identifier"][0]
    response = fhir.request("POST", "Observation", json=body)
    track_if_created(cleanup, response)
    assert_outcome(response, (400, 422), element)
    assert fhir.count("Observation", {"identifier": f"{identifier['system']}|{identifier['value']}"}) == 0
    assert_still_serving(fhir)


def test_invalid_update_leaves_resource_unchanged(fhir: FhirTarget, scratch: dict[str, dict[str, Any]]) -> None:
    existing = scratch["Observation"]
    response = fhir.request("PUT", f"Observation/{existing['id']}", json={**existing, "status": "bogus"})
    assert_outcome(response, (400, 422), "status")
    current = fhir.get(f"Observation/{existing['id']}").json()
    assert current["status"] == existing["status"]
    assert current["meta"]["versionId"] == existing["meta"]["versionId"]
    assert_still_serving(fhir)


# --------------------------------------------------------------------------------------------
# search parameters
# --------------------------------------------------------------------------------------------

def test_unknown_parameter_is_ignored_when_lenient(fhir: FhirTarget) -> None:
    plain = fhir.search("Patient", {"family": "Mejia"})
    bundle = fhir.search("Patient", [("family", "Mejia"), ("frobnicate", "yes")])
    assert [r["id"] for r in entries(bundle, "Patient")] == [r["id"] for r in entries(plain, "Patient")]
    self_link = link(bundle, "self")
    assert self_link, "a searchset has a self link"
    names = [name for name, _ in link_params(self_link)]
    assert "frobnicate" not in names, f"the ignored parameter is still in the self link: {self_link}"
    assert "family" in names, f"the used parameter is missing from the self link: {self_link}"


def test_unknown_parameter_is_rejected_when_strict(strict_fhir: FhirTarget) -> None:
    response = strict_fhir.get("Patient", params={"family": "Mejia", "frobnicate": "yes"})
    assert_outcome(response, (400,), "frobnicate")
    assert_still_serving(strict_fhir)


def test_prefer_handling_strict_header(fhir: FhirTarget) -> None:
    response = fhir.get("Patient", params={"frobnicate": "yes"}, headers={"Prefer": "handling=strict"})
    assert_outcome(response, (400,), "frobnicate")
    assert_still_serving(fhir)


@pytest.mark.parametrize("value", ["xx2020", "2020-13", "ge2020-02-30", "yesterday"])
def test_bad_date_value(fhir: FhirTarget, value: str) -> None:
    response = fhir.get("Observation", params={"date": value})
    assert_outcome(response, (400,), (value, "date"))
    assert_still_serving(fhir)


@pytest.mark.parametrize("value", ["abc", "gt", "ge5.4.3"])
def test_bad_quantity_value(fhir: FhirTarget, value: str) -> None:
    response = fhir.get("Observation", params={"value-quantity": value})
    assert_outcome(response, (400,), (value, "value-quantity"))
    assert_still_serving(fhir)


def test_huge_count_is_capped_or_refused(fhir: FhirTarget) -> None:
    response = fhir.get("Observation", params={"_count": "1000000"})
    if response.status_code == 400:
        assert_outcome(response, (400,), "_count")
    else:
        assert response.status_code == 200, response.text
        bundle = response.json()
        cap = dict(link_params(link(bundle, "self") or ""))["_count"]
        assert int(cap) < 1_000_000, f"self link claims _count={cap}"
        got = len(entries(bundle, "Observation"))
        assert got == min(int(cap), len(dataset().of_type("Observation"))), (got, cap)
        assert link(bundle, "next"), "capped page of a larger result needs a next link"
    assert_still_serving(fhir)


@pytest.mark.parametrize("value", ["-1", "ten", "2.5"])
def test_bad_count(fhir: FhirTarget, value: str) -> None:
    """Refused with a 400 naming _count, or (lenient) answered with a sane page size shown in the self link."""
    response = fhir.get("Observation", params={"_count": value})
    if response.status_code == 400:
        assert_outcome(response, (400,), "_count")
    else:
        assert response.status_code == 200, response.text
        bundle = response.json()
        used = dict(link_params(link(bundle, "self") or "")).get("_count")
        assert used is not None and used.isdigit(), f"self link does not show the page size used: {bundle['link']}"
        assert len(entries(bundle, "Observation")) <= int(used)
    assert_still_serving(fhir)


# --------------------------------------------------------------------------------------------
# unknown things
# --------------------------------------------------------------------------------------------

def test_unknown_id(fhir: FhirTarget) -> None:
    response = fhir.get("Patient/no-such-patient-4548")
    assert_outcome(response, (404,), "no-such-patient-4548")
    assert_still_serving(fhir)


def test_unknown_version(fhir: FhirTarget) -> None:
    patient = some("Patient")
    assert_outcome(fhir.get(f"Patient/{patient['id']}/_history/99"), (404,))
    assert_outcome(fhir.get("Patient/no-such-patient-4548/_history/1"), (404,))
    assert_still_serving(fhir)


def test_unknown_resource_type(fhir: FhirTarget) -> None:
    assert_outcome(fhir.get("Frobnication"), (400, 404), "Frobnication")
    assert_outcome(fhir.get("Frobnication/1"), (400, 404), "Frobnication")
    assert_still_serving(fhir)


def test_delete_unknown_id(fhir: FhirTarget) -> None:
    response = fhir.request("DELETE", "Patient/no-such-patient-4548")
    # R4 lets a server answer 200/204 (nothing to delete) or 404; it must not fail or create anything
    assert response.status_code in (200, 204, 404), response.text
    assert fhir.get("Patient/no-such-patient-4548").status_code in (404, 410)
    assert_still_serving(fhir)


# --------------------------------------------------------------------------------------------
# transactions are all-or-nothing
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    pytest.param({"status": "bogus"}, id="bogus-status"),
    pytest.param({"valueQuantity": {"value": "tall", "unit": "cm"}}, id="value-not-a-number"),
])
def test_transaction_with_one_bad_entry_leaves_nothing(fhir: FhirTarget, cleanup: Cleanup,
                                                       scratch: dict[str, dict[str, Any]], bad: dict[str, Any]) -> None:
    counts_before = {t: fhir.count(t) for t in ("Patient", "Observation", "Condition")}
    existing, condition = scratch["Observation"], scratch["Condition"]
    family = f"Zqbadtx{uuid.uuid4().hex[:8]}"
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient_urn, "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "name": [{"family": family}]}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Observation"},
         "resource": observation(subject={"reference": patient_urn})},
        {"request": {"method": "PUT", "url": f"Observation/{existing['id']}"},
         "resource": {**existing, "status": "amended"}},
        {"request": {"method": "DELETE", "url": f"Condition/{condition['id']}"}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Observation"},
         "resource": observation(subject={"reference": patient_urn}, **bad)},
    ]}
    response = fhir.request("POST", "", json=bundle)
    track_if_created(cleanup, response)
    assert_outcome(response, (400, 409, 412, 422), next(iter(bad)))
    assert {t: fhir.count(t) for t in counts_before} == counts_before
    assert fhir.count("Patient", {"family": family}) == 0
    current = fhir.get(f"Observation/{existing['id']}").json()
    assert current["status"] == existing["status"]
    assert current["meta"]["versionId"] == existing["meta"]["versionId"]
    assert fhir.get(f"Condition/{condition['id']}").status_code == 200
    assert_still_serving(fhir)


def test_transaction_that_is_not_a_bundle(fhir: FhirTarget) -> None:
    assert_outcome(fhir.request("POST", "", json=observation()), (400, 404, 405, 422))
    assert_outcome(fhir.request("POST", "", json={"resourceType": "Bundle", "type": "searchset"}), (400, 422),
                   "type")
    assert_still_serving(fhir)


# --------------------------------------------------------------------------------------------
# scoring: snapshot, reset, diff (embedded server, --allow-reset)
# --------------------------------------------------------------------------------------------

def diff_changes(target: FhirTarget) -> list[dict[str, Any]]:
    response = target.get("$diff")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "snapshot" in body and isinstance(body["changes"], list), body
    return body["changes"]


def reset(target: FhirTarget) -> None:
    response = target.request("POST", "$reset")
    assert response.status_code == 200, response.text


def test_snapshot_diff_reset(embedded_target: FhirTarget) -> None:
    server = embedded_target
    reset(server)  # back to the snapshot taken after the initial load
    assert diff_changes(server) == []
    assert server.count("Patient") == len(dataset().patients)
    assert server.count("Observation") == len(dataset().of_type("Observation"))
    response = server.request("POST", "$snapshot")
    assert response.status_code == 200, response.text
    assert diff_changes(server) == []

    created = server.create({"resourceType": "Patient", "name": [{"family": "Zqsnapshot"}]}).json()
    original = some("Observation")
    updated = server.request("PUT", f"Observation/{original['id']}", json={**original, "status": "amended"})
    assert updated.status_code == 200, updated.text
    condition = some("Condition")
    assert server.request("DELETE", f"Condition/{condition['id']}").status_code in (200, 204)

    changes = {(c["resourceType"], c["id"]): c for c in diff_changes(server)}
    assert set(changes) == {("Patient", created["id"]), ("Observation", original["id"]),
                            ("Condition", condition["id"])}, changes.keys()
    create = changes[("Patient", created["id"])]
    assert create["action"] == "create" and create["before"] is None
    assert create["after"]["name"][0]["family"] == "Zqsnapshot"
    update = changes[("Observation", original["id"])]
    assert update["action"] == "update"
    assert update["before"]["status"] == original["status"] and update["after"]["status"] == "amended"
    delete = changes[("Condition", condition["id"])]
    assert delete["action"] == "delete" and delete["after"] is None and delete["before"]["id"] == condition["id"]

    reset(server)
    assert diff_changes(server) == []
    assert server.get(f"Patient/{created['id']}").status_code == 404
    restored = server.get(f"Observation/{original['id']}").json()
    assert restored["status"] == original["status"]
    assert {k: v for k, v in restored.items() if k != "meta"} == {k: v for k, v in original.items() if k != "meta"}
    assert server.get(f"Condition/{condition['id']}").status_code == 200
    pid = dataset().patient_of[("Condition", condition["id"])]
    assert server.count("Condition", {"patient": pid}) == len(dataset().of_type("Condition", pid))
    assert server.count("Patient", {"family": "Zqsnapshot"}) == 0


def test_reset_twice_and_diff_after_failed_write(embedded_target: FhirTarget) -> None:
    server = embedded_target
    reset(server)
    reset(server)
    assert_outcome(server.request("POST", "Observation", json=observation(status="bogus")), (400, 422))
    assert diff_changes(server) == [], "a rejected write shows up in the diff"


@pytest.mark.parametrize(("method", "path"), [("POST", "$snapshot"), ("POST", "$reset"), ("GET", "$diff")])
def test_scoring_endpoints_need_allow_reset(embedded_strict_server: Any, method: str, path: str) -> None:
    server = FhirTarget("embedded-no-reset", embedded_strict_server.base_url)
    assert_outcome(server.request(method, path), (403, 404))
    assert server.count("Patient") == len(dataset().patients)
