"""The interactions EHR clients use beyond plain search: compartment search (``GET /Patient/{id}/{type}``),
``Patient/$everything`` (``_since``, ``_type``, ``_count``, paging), searches inside a batch, ``Prefer:
return=`` on create/update/patch, and conditional PATCH (FHIR R4 http.html, compartmentdefinition.html,
patient-operation-everything.html).

Runs against every server under test (conftest.py). Expected results come from the bundle files
(fhir_expect.py): a patient's compartment there is every resource whose patient reference (subject or
patient) names them. Writes use resources the test creates and deletes again.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from fhir_expect import dataset, token_matches, walk_references
from fhir_support import Cleanup, FhirTarget, assert_outcome, entries, link

# Deviations of sekmet-fhir 0.1.x found by this module (strict xfails on sekmet only).
SEKMET_DEVIATIONS: dict[str, str] = {
    "test_capability_statement_names_everything_and_the_compartment":
        "the CapabilityStatement declares no rest.compartment (the Patient CompartmentDefinition it searches)",
    "test_compartment_search_is_the_patients_resources":
        "compartment search paging links drop the compartment (Patient/<id>/Condition?_count=3 links `next` to "
        "Condition?_count=3&_offset=3), so the second page onward holds every patient's resources; and Goal is "
        "not in the Patient compartment (no patient parameter on Goal)",
    "test_compartment_search_takes_search_parameters":
        "compartment search paging links drop the compartment and the parameters: the second page is unfiltered",
    "test_everything_holds_the_compartment_and_what_it_references":
        "$everything ignores _count: the whole record comes back in one page, without paging links",
    "test_everything_type_filter": "$everything ignores _type: every resource type comes back",
    "test_everything_paging_links_keep_the_parameters": "$everything ignores _count and _type: one page, no next link",
    "test_everything_since": "$everything ignores _since: resources loaded before it come back",
    "test_everything_of_all_patients":
        "no type-level Patient/$everything (400: requires a patient id)",
    "test_batch_with_searches_reads_and_a_failing_entry":
        "a compartment search (GET Patient/<id>/Condition) inside a batch is refused as an unsupported request; "
        "plain searches and reads in a batch work",
    "test_conditional_patch": "no conditional PATCH: PATCH [base]/Observation?identifier=... answers 405",
}

LOINC = "http://loinc.org"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MOST_OBSERVATIONS = "Rodríguez"  # Mayte Rodríguez: 423 observations, conditions, care plans, medications
COMPARTMENT_TYPES = ("Condition", "Observation", "MedicationRequest", "Encounter", "Procedure", "Immunization",
                     "DiagnosticReport", "CarePlan", "Goal", "Claim", "ExplanationOfBenefit")


def patient_id(family: str) -> str:
    return dataset().patient_by_name(family)["id"]


def compartment(pid: str, rtype: str) -> set[str]:
    return {r["id"] for r in dataset().of_type(rtype, pid)}


def read_all(fhir: FhirTarget, path: str, params: Any = None, *, limit: int = 5000) -> tuple[list[dict[str, Any]],
                                                                                           list[dict[str, Any]]]:
    """(every match across pages, the page Bundles), following ``next`` links; more than ``limit`` resources
    fail at once (a server whose links lose the filter would otherwise page through everything)."""
    response = fhir.get(path, params=params)
    assert response.status_code == 200, f"GET {path} {params}: {response.status_code} {response.text[:600]}"
    pages = [response.json()]
    while (nxt := link(pages[-1], "next")) is not None:
        assert sum(len(page.get("entry", [])) for page in pages) <= limit, f"more than {limit} resources for {path}"
        response = fhir.request("GET", nxt)
        assert response.status_code == 200, f"next link {nxt}: {response.status_code} {response.text[:500]}"
        pages.append(response.json())
    for page in pages:
        assert page["resourceType"] == "Bundle" and page["type"] == "searchset", page.get("type")
    found = [e["resource"] for page in pages for e in page.get("entry", [])
             if (e.get("search") or {}).get("mode", "match") != "outcome"
             and e["resource"]["resourceType"] != "OperationOutcome"]
    return found, pages


def keys(resources: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["resourceType"], r["id"]) for r in resources]


def new_patient(fhir: FhirTarget, cleanup: Cleanup) -> dict[str, Any]:
    body = {"resourceType": "Patient", "name": [{"family": f"Zqehr{uuid.uuid4().hex[:8]}", "given": ["Ehr"]}],
            "gender": "unknown", "birthDate": "1980-02-03"}
    return cleanup.created(fhir.create(body))


def observation(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2020-03-04T10:00:00Z",
            "valueQuantity": {"value": 37.1, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"},
            **extra}


# --------------------------------------------------------------------------------------------
# capability
# --------------------------------------------------------------------------------------------

def test_capability_statement_names_everything_and_the_compartment(fhir: FhirTarget) -> None:
    rest = fhir.get("metadata").json()["rest"][0]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    operations = {o["name"] for o in [*patient.get("operation", []), *rest.get("operation", [])]}
    assert "everything" in operations, operations
    assert "http://hl7.org/fhir/CompartmentDefinition/patient" in rest.get("compartment", []), rest.get("compartment")
    assert {"batch", "transaction"} <= {i["code"] for i in rest.get("interaction", [])}


# --------------------------------------------------------------------------------------------
# compartment search
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rtype", COMPARTMENT_TYPES)
def test_compartment_search_is_the_patients_resources(fhir: FhirTarget, rtype: str) -> None:
    pid = patient_id(MOST_OBSERVATIONS)
    expected = compartment(pid, rtype)
    assert expected, f"test data: {MOST_OBSERVATIONS} has no {rtype}"
    page = max(2, len(expected) // 3 + 1)  # about three pages, so next links are followed
    found, pages = read_all(fhir, f"Patient/{pid}/{rtype}", {"_count": str(page)}, limit=2 * len(expected))
    assert len(pages) >= 2 or len(expected) <= page
    assert {r["resourceType"] for r in found} == {rtype}
    ids = [r["id"] for r in found]
    assert len(ids) == len(set(ids)), "duplicates across pages"
    assert set(ids) == expected


def test_compartment_search_takes_search_parameters(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    expected = {r["id"] for r in dataset().of_type("Observation", pid) if token_matches(f"{LOINC}|4548-4", r["code"])}
    assert len(expected) >= 5
    found, _ = read_all(fhir, f"Patient/{pid}/Observation", {"code": f"{LOINC}|4548-4", "_count": "4"},
                        limit=2 * len(expected))
    assert {r["id"] for r in found} == expected
    assert all(r["subject"]["reference"].endswith(pid) for r in found)


def test_compartment_search_of_another_patient_does_not_leak(fhir: FhirTarget) -> None:
    first, second = patient_id("Huels"), patient_id("Wisoky")
    found, _ = read_all(fhir, f"Patient/{first}/Condition")
    assert {r["id"] for r in found} == compartment(first, "Condition")
    assert not {r["id"] for r in found} & compartment(second, "Condition")


def test_compartment_search_of_an_unknown_patient(fhir: FhirTarget) -> None:
    response = fhir.get("Patient/no-such-patient-29/Condition")
    if response.status_code == 200:  # an empty result is an acceptable answer too
        assert not entries(response.json(), "Condition")
    else:
        assert_outcome(response, (404,), "no-such-patient-29")


def test_compartment_search_of_a_type_outside_the_compartment(fhir: FhirTarget) -> None:
    """Practitioner is not in the Patient compartment: refused, or (no Practitioner being in it) empty."""
    response = fhir.get(f"Patient/{patient_id('Huels')}/Practitioner")
    if response.status_code == 200:
        assert not entries(response.json(), "Practitioner")
    else:
        assert_outcome(response, (400, 404), "Practitioner")


# --------------------------------------------------------------------------------------------
# Patient/$everything
# --------------------------------------------------------------------------------------------

def test_everything_holds_the_compartment_and_what_it_references(fhir: FhirTarget) -> None:
    pid = patient_id(MOST_OBSERVATIONS)
    found, pages = read_all(fhir, f"Patient/{pid}/$everything", {"_count": "200"})
    assert len(pages) >= 3
    got = keys(found)
    assert len(got) == len(set(got)), "duplicates across pages"
    data = dataset()
    in_compartment = {key for key, patient in data.patient_of.items() if patient == pid}
    assert in_compartment <= set(got), sorted(in_compartment - set(got))[:10]
    referenced = {tuple(ref["reference"].split("/", 1)) for key in in_compartment
                  for ref in walk_references(data.resources[key])}
    others = set(got) - in_compartment
    assert others <= referenced, f"not in the compartment nor referenced from it: {sorted(others - referenced)[:10]}"
    assert not {key for key in others if key[0] == "Patient"}, "another patient's record"
    total = pages[0].get("total")
    assert total is None or total == len(got)


def test_everything_type_filter(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    found, _ = read_all(fhir, f"Patient/{pid}/$everything", {"_type": "Condition,MedicationRequest", "_count": "5"})
    expected = {("Condition", i) for i in compartment(pid, "Condition")} | {
        ("MedicationRequest", i) for i in compartment(pid, "MedicationRequest")}
    assert set(keys(found)) == expected


def test_everything_paging_links_keep_the_parameters(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    response = fhir.get(f"Patient/{pid}/$everything", params={"_type": "Observation", "_count": "7"})
    assert response.status_code == 200, response.text[:500]
    first = response.json()
    assert len(first["entry"]) == 7
    nxt = link(first, "next")
    assert nxt is not None and "_type=Observation" in nxt, nxt
    second = fhir.request("GET", nxt).json()
    assert {r["resourceType"] for r in entries(second, "Observation")} == {"Observation"}
    assert not set(keys(entries(first, "Observation"))) & set(keys(entries(second, "Observation")))
    previous = link(second, "previous")
    if previous is not None:
        back = fhir.request("GET", previous).json()
        assert keys(entries(back, "Observation")) == keys(entries(first, "Observation"))


def test_everything_since(fhir: FhirTarget, cleanup: Cleanup) -> None:
    pid = patient_id("Wisoky")
    clock = parsedate_to_datetime(fhir.get("metadata").headers["Date"])  # the server's clock, whole seconds
    before = clock.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)  # what is written next is past the whole second ``before`` names
    created = cleanup.created(fhir.create(observation(pid)))
    found, _ = read_all(fhir, f"Patient/{pid}/$everything", {"_since": before})
    assert ("Observation", created["id"]) in keys(found)
    assert not set(keys(found)) & set(data_keys(pid)), "resources loaded before _since came back"


def data_keys(pid: str) -> list[tuple[str, str]]:
    return [key for key, patient in dataset().patient_of.items() if patient == pid]


def test_everything_of_all_patients(fhir: FhirTarget) -> None:
    found, pages = read_all(fhir, "Patient/$everything", {"_type": "ImagingStudy", "_count": "20"})
    assert len(pages) >= 2
    assert {r["id"] for r in found} == {r["id"] for r in dataset().of_type("ImagingStudy")}


def test_everything_of_an_unknown_patient(fhir: FhirTarget) -> None:
    assert_outcome(fhir.get("Patient/no-such-patient-29/$everything"), (404,), "no-such-patient-29")


def test_everything_refuses_what_it_would_ignore(embedded_target: FhirTarget) -> None:
    pid = patient_id("Huels")
    assert_outcome(embedded_target.get(f"Patient/{pid}/$everything", params={"start": "2010-01-01"}), (400,), "start")
    assert_outcome(embedded_target.get(f"Patient/{pid}/$everything", params={"frob": "1"}), (400,), "frob")
    assert_outcome(embedded_target.get(f"Patient/{pid}/$everything", params={"_type": "Frobnication"}), (404,),
                   "Frobnication")


# --------------------------------------------------------------------------------------------
# searches inside a batch
# --------------------------------------------------------------------------------------------

def test_batch_with_searches_reads_and_a_failing_entry(fhir: FhirTarget) -> None:
    pid = patient_id("Huels")
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation?patient={pid}&code={LOINC}|4548-4&_count=100"}},
        {"request": {"method": "GET", "url": f"Patient/{pid}/Condition"}},
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        {"request": {"method": "GET", "url": "Patient/no-such-patient-29"}},
        {"request": {"method": "GET", "url": f"Patient/{pid}/$everything?_type=MedicationRequest"}},
    ]}
    response = fhir.request("POST", "", json=bundle)
    assert response.status_code == 200, response.text[:800]
    body = response.json()
    assert body["type"] == "batch-response" and len(body["entry"]) == 5
    a1c, conditions, patient, missing, medications = body["entry"]
    assert a1c["response"]["status"].startswith("200")
    assert a1c["resource"]["type"] == "searchset"
    expected = {r["id"] for r in dataset().of_type("Observation", pid) if token_matches(f"{LOINC}|4548-4", r["code"])}
    assert {r["id"] for r in entries(a1c["resource"], "Observation")} == expected
    assert {r["id"] for r in entries(conditions["resource"], "Condition")} == compartment(pid, "Condition")
    assert patient["resource"]["id"] == pid and patient["response"]["status"].startswith("200")
    assert missing["response"]["status"].startswith("404")
    assert {r["id"] for r in entries(medications["resource"], "MedicationRequest")} == compartment(
        pid, "MedicationRequest")


# --------------------------------------------------------------------------------------------
# Prefer: return=
# --------------------------------------------------------------------------------------------

def _write(fhir: FhirTarget, cleanup: Cleanup, interaction: str, prefer: str) -> tuple[Any, str]:
    """Run one write with ``Prefer: return=<prefer>``: (the response, the written resource's path)."""
    patient = new_patient(fhir, cleanup)
    headers = {"Prefer": f"return={prefer}"}
    if interaction == "create":
        response = fhir.create(observation(patient["id"]), headers=headers)
        location = response.headers.get("Location") or response.headers.get("Content-Location") or ""
        path = "/".join(location.split("/_history/")[0].split("/")[-2:])
        if path.startswith("Observation/"):
            cleanup.add("Observation", path.split("/")[1])
        return response, path
    path = f"Patient/{patient['id']}"
    if interaction == "update":
        return fhir.request("PUT", path, json={**patient, "gender": "female"}, headers=headers), path
    operations = [{"op": "replace", "path": "/gender", "value": "female"}]
    return fhir.request("PATCH", path, json=operations, headers={**headers, **JSON_PATCH}), path


@pytest.mark.parametrize("interaction", ["create", "update", "patch"])
@pytest.mark.parametrize("prefer", ["minimal", "representation", "OperationOutcome"])
def test_prefer_return(fhir: FhirTarget, cleanup: Cleanup, interaction: str, prefer: str) -> None:
    response, path = _write(fhir, cleanup, interaction, prefer)
    assert response.status_code == (201 if interaction == "create" else 200), response.text[:500]
    assert path.count("/") == 1, f"no Location naming the resource: {dict(response.headers)}"
    written = fhir.get(path)
    assert written.status_code == 200
    if interaction != "create":
        assert written.json()["gender"] == "female"
    if prefer == "minimal":
        assert response.content == b"", response.text[:300]
    elif prefer == "representation":
        assert response.json()["resourceType"] == path.split("/")[0]
        assert response.json()["id"] == path.split("/")[1]
    else:
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome", outcome
        assert all(issue["severity"] in ("information", "warning") for issue in outcome["issue"]), outcome


# --------------------------------------------------------------------------------------------
# conditional PATCH
# --------------------------------------------------------------------------------------------

def test_conditional_patch(fhir: FhirTarget, cleanup: Cleanup) -> None:
    pid = new_patient(fhir, cleanup)["id"]
    system, value = "urn:medagent:conditional-patch", uuid.uuid4().hex
    query = f"identifier={system}|{value}"
    operations = [{"op": "replace", "path": "/status", "value": "amended"}]
    none = fhir.request("PATCH", f"Observation?{query}", json=operations, headers=JSON_PATCH)
    assert_outcome(none, (404, 412))
    first = cleanup.created(fhir.create(observation(pid, identifier=[{"system": system, "value": value}])))
    one = fhir.request("PATCH", f"Observation?{query}", json=operations, headers=JSON_PATCH)
    assert one.status_code == 200, one.text[:500]
    after = fhir.get(f"Observation/{first['id']}").json()
    assert after["status"] == "amended" and after["meta"]["versionId"] == "2"
    second = cleanup.created(fhir.create(observation(pid, identifier=[{"system": system, "value": value}])))
    many = fhir.request("PATCH", f"Observation?{query}",
                        json=[{"op": "replace", "path": "/status", "value": "cancelled"}], headers=JSON_PATCH)
    assert_outcome(many, (412,))
    assert fhir.get(f"Observation/{first['id']}").json()["status"] == "amended"
    assert fhir.get(f"Observation/{second['id']}").json()["status"] == "final"


def test_the_compartment_types_agree_with_the_access_rules() -> None:
    """The types searched as a patient's compartment here are the R4 compartment types the SMART access rules
    hold a patient/ token to (medagent.fhir.server.patient_compartment)."""
    from medagent.fhir.server.compartment import PATIENT_COMPARTMENT
    from medagent.fhir.server.patient_compartment import COMPARTMENT_TYPES

    assert set(PATIENT_COMPARTMENT) <= COMPARTMENT_TYPES
