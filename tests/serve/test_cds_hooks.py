"""CDS Hooks 2.0 over real HTTP: ``medagent serve`` (its CDS services) called like an EHR calls them, reading the
chart from a real embedded FHIR server (a copy of the Synthea data, protected by a bearer token as an EHR's FHIR
API is) through the request's fhirServer and fhirAuthorization, or from the prefetch the request carries.

Cases are set up by writing resources into that copy (a penicillin allergy, an eGFR, a creatinine, a potassium);
expected facts come from the bundle files. Every response is checked against the CDS Hooks JSON schema here
too. Bad input must be a 4xx naming what was wrong, with nothing written (the FHIR server's $diff and the
service's card and feedback records unchanged).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medagent.fhir.server.process import SERVER_ENTRY, free_port
from medagent.models.scripted import ScriptedPolicy
from medagent.serve.cds_hooks.records import CdsRecords
from medagent.serve.cds_hooks.schema import problems
from medagent.serve.server import ServiceConfig, ServiceThread
from tests.serve.cds_requests import (
    AMOXICILLIN,
    CONN,
    GRANT,
    LARSON,
    MANTE,
    METFORMIN_ER,
    METFORMIN_IR,
    SCHIMMEL,
    SIMVASTATIN,
    active_conditions,
    active_orders,
    chart_of,
    days_ago,
    draft_medication,
    hook_request,
    lab,
    latest_result,
    order_context,
    patient_view_context,
    penicillin_allergy,
    searchset,
)

TOKEN = "ehr-access-token-for-cds-tests"
EGFR = ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}")
CREATININE = ("38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL")
POTASSIUM = ("6298-4", "Potassium [Moles/volume] in Blood", "mmol/L")


# --------------------------------------------------------------------------------------------
# fixtures: the EHR's FHIR server (token-protected, reset after each test) and medagent serve
# --------------------------------------------------------------------------------------------

@dataclass
class EhrFhir:
    base_url: str
    http: httpx.Client

    def write(self, resource: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(resource["resourceType"], json=resource)
        assert response.status_code == 201, response.text[:500]
        return response.json()

    def changes(self) -> list[dict[str, Any]]:
        return self.http.get("$diff").raise_for_status().json()["changes"]


@pytest.fixture(scope="module")
def ehr_server(synthea_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EhrFhir]:
    """The embedded server on a copy of the data, with --token (every request needs the bearer) and --allow-reset."""
    folder = tmp_path_factory.mktemp("cds-ehr")
    shutil.copyfile(synthea_db, folder / "fhir.sqlite")
    port = free_port()
    process = subprocess.Popen([sys.executable, *SERVER_ENTRY, "--port", str(port), "--db", str(folder / "fhir.sqlite"),
                                "--token", TOKEN, "--allow-reset", "--exit-with-parent"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http.get("metadata").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "the FHIR server did not start"
            time.sleep(0.2)
        http.post("$snapshot").raise_for_status()
        yield EhrFhir(base, http)
    finally:
        http.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def ehr(ehr_server: EhrFhir) -> Iterator[EhrFhir]:
    """The EHR's FHIR server, reset to the loaded data after the test."""
    yield ehr_server
    ehr_server.http.post("$reset").raise_for_status()


def never_called(request: Any) -> dict[str, Any]:
    raise AssertionError("the CDS services must not call the model")


def _service(ehr_server: EhrFhir, folder: Path, budget: float) -> ServiceThread:
    config = ServiceConfig(fhir_url=ehr_server.base_url, fhir_token=TOKEN, checkpoints=folder / "checkpoints.sqlite",
                           port=0, model_label="scripted test policy", cds_budget_seconds=budget)
    return ServiceThread(config, ScriptedPolicy(never_called))


@pytest.fixture(scope="module")
def cds(ehr_server: EhrFhir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceThread]:
    with _service(ehr_server, tmp_path_factory.mktemp("cds-serve"), budget=20.0) as running:
        yield running


@pytest.fixture
def records(cds: ServiceThread) -> Iterator[CdsRecords]:
    opened = CdsRecords(cds.service.config.cds_records)
    yield opened
    opened.close()


def call(cds: ServiceThread, service_id: str, body: Any) -> httpx.Response:
    return httpx.post(f"{cds.url}/cds-services/{service_id}", json=body, timeout=60)


def cards_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:800]
    body = response.json()
    assert problems("Response", body) == [], problems("Response", body)
    return body["cards"]


def sign(cds: ServiceThread, ehr: EhrFhir, patient: str, *drugs: tuple[str, str], **extra: Any) -> list[dict[str, Any]]:
    drafts = [draft_medication(patient, drug, f"draft-{index}") for index, drug in enumerate(drugs)]
    body = hook_request("order-sign", order_context(patient, drafts), fhir_server=ehr.base_url, token=TOKEN, **extra)
    return cards_of(call(cds, "medication-safety-sign", body))


def by_topic(cards: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [c for c in cards if c["source"].get("topic", {}).get("code") == topic]


# --------------------------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------------------------

def test_discovery_lists_the_services_with_their_prefetch(cds: ServiceThread) -> None:
    response = httpx.get(f"{cds.url}/cds-services", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert problems("Discovery", body) == []
    services = {s["id"]: s for s in body["services"]}
    assert {s["hook"] for s in services.values()} == {"patient-view", "order-select", "order-sign"}
    for service in services.values():
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert all("{{context.patientId}}" in t for t in service["prefetch"].values())


# --------------------------------------------------------------------------------------------
# order-sign: allergy by class, duplicate, renal dosing
# --------------------------------------------------------------------------------------------

def test_penicillin_allergy_against_an_amoxicillin_draft(cds: ServiceThread, ehr: EhrFhir) -> None:
    assert not by_topic(sign(cds, ehr, GRANT, AMOXICILLIN), "drug-allergy")  # no allergy yet: no card
    allergy = ehr.write(penicillin_allergy(GRANT))
    cards = sign(cds, ehr, GRANT, AMOXICILLIN, SIMVASTATIN)
    [card] = by_topic(cards, "drug-allergy")  # amoxicillin is a penicillin; simvastatin is not
    assert card["indicator"] == "critical"  # criticality high
    assert f"AllergyIntolerance/{allergy['id']}" in card["detail"]
    assert "amoxicillin" in card["summary"].lower() and "penicillin" in card["summary"].lower()
    assert "MedicationRequest/draft-0" in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [{"type": "delete", "description": suggestion["actions"][0]["description"],
                                      "resourceId": "MedicationRequest/draft-0"}]
    assert card["selectionBehavior"] == "at-most-one" and card["overrideReasons"]


def test_duplicate_active_order_of_the_same_ingredient(cds: ServiceThread, ehr: EhrFhir) -> None:
    [metformin] = [o for o in active_orders(SCHIMMEL)
                   if "metformin" in o["medicationCodeableConcept"]["coding"][0]["display"].lower()]
    for drug in (METFORMIN_ER, METFORMIN_IR):  # the same product, then another product of the same ingredient
        [card] = by_topic(sign(cds, ehr, SCHIMMEL, drug), "duplicate-therapy")
        assert card["indicator"] == "warning"
        assert f"MedicationRequest/{metformin['id']}" in card["detail"]
        assert card["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/draft-0"
    assert not by_topic(sign(cds, ehr, SCHIMMEL, SIMVASTATIN), "duplicate-therapy")


def test_two_drafts_of_one_ingredient_in_one_session(cds: ServiceThread, ehr: EhrFhir) -> None:
    cards = by_topic(sign(cds, ehr, GRANT, AMOXICILLIN, ("308192", "Amoxicillin 500 MG Oral Tablet")),
                     "duplicate-therapy")
    assert len(cards) == 2  # each draft names the other
    assert {"MedicationRequest/draft-0", "MedicationRequest/draft-1"} <= {
        ref for c in cards for ref in ("MedicationRequest/draft-0", "MedicationRequest/draft-1") if ref in c["detail"]}


def test_renal_dosing_follows_the_latest_egfr(cds: ServiceThread, ehr: EhrFhir) -> None:
    code, display, unit = EGFR
    low = ehr.write(lab(LARSON, code, display, 22, unit, days_ago(2)))
    [card] = by_topic(sign(cds, ehr, LARSON, METFORMIN_ER), "renal-dosing")
    assert card["indicator"] == "critical" and card["summary"].startswith("eGFR 22")
    assert f"Observation/{low['id']}" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["type"] == "delete"
    [amoxicillin] = by_topic(sign(cds, ehr, LARSON, AMOXICILLIN), "renal-dosing")
    assert amoxicillin["indicator"] == "warning" and "suggestions" not in amoxicillin  # adjust the dose, not stop
    assert not by_topic(sign(cds, ehr, LARSON, SIMVASTATIN), "renal-dosing")
    middle = ehr.write(lab(LARSON, code, display, 40, unit, days_ago(1)))  # newer: 30-45
    [card] = by_topic(sign(cds, ehr, LARSON, METFORMIN_ER), "renal-dosing")
    assert card["indicator"] == "warning" and f"Observation/{middle['id']}" in card["detail"]
    ehr.write(lab(LARSON, code, display, 75, unit, days_ago(0.5)))
    assert not by_topic(sign(cds, ehr, LARSON, METFORMIN_ER), "renal-dosing")


def ckd_epi_2021(creatinine: float, age: int, female: bool) -> float:
    """The published equation (Inker 2021), written here independently of the service."""
    k, a = (0.7, -0.241) if female else (0.9, -0.302)
    return 142 * min(creatinine / k, 1) ** a * max(creatinine / k, 1) ** -1.2 * 0.9938 ** age * (1.012 if female else 1)


def test_renal_dosing_from_a_newer_creatinine(cds: ServiceThread, ehr: EhrFhir) -> None:
    code, display, unit = CREATININE
    when = days_ago(1)
    result = ehr.write(lab(MANTE, code, display, 4.0, unit, when))
    patient = chart_of(MANTE, "Patient")[0]
    born = patient["birthDate"]
    age = int(when[:4]) - int(born[:4]) - ((when[5:10]) < born[5:10])
    expected = ckd_epi_2021(4.0, age, patient["gender"] == "female")
    [card] = by_topic(sign(cds, ehr, MANTE, METFORMIN_ER), "renal-dosing")
    assert card["indicator"] == "critical"
    assert card["summary"].startswith(f"eGFR {expected:.0f}:"), (card["summary"], expected)
    assert f"Observation/{result['id']}" in card["detail"] and "CKD-EPI 2021" in card["detail"]


def test_order_select_checks_only_the_selected_drafts(cds: ServiceThread, ehr: EhrFhir) -> None:
    ehr.write(penicillin_allergy(GRANT))
    drafts = [draft_medication(GRANT, AMOXICILLIN, "amox"), draft_medication(GRANT, SIMVASTATIN, "statin")]
    for selections, expected in ((["MedicationRequest/statin"], 0), (["MedicationRequest/amox"], 1)):
        body = hook_request("order-select", order_context(GRANT, drafts, selections), fhir_server=ehr.base_url,
                            token=TOKEN)
        assert len(by_topic(cards_of(call(cds, "medication-safety-select", body)), "drug-allergy")) == expected


# --------------------------------------------------------------------------------------------
# prefetch honoured
# --------------------------------------------------------------------------------------------

def test_complete_prefetch_needs_no_fhir_server(cds: ServiceThread, ehr: EhrFhir) -> None:
    """Everything prefetched: no fhirServer is given, so the cards can only come from the prefetch."""
    allergy = {**penicillin_allergy(GRANT), "id": "prefetched-allergy"}
    patient = chart_of(GRANT, "Patient")[0]
    prefetch = {"patient": patient, "allergies": searchset([allergy]), "medications": searchset(active_orders(GRANT)),
                "kidney": searchset([])}
    body = hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                        fhir_server=None, token=None, prefetch=prefetch)
    [card] = by_topic(cards_of(call(cds, "medication-safety-sign", body)), "drug-allergy")
    assert "AllergyIntolerance/prefetched-allergy" in card["detail"]


def test_partial_prefetch_is_completed_through_the_fhir_server(cds: ServiceThread, ehr: EhrFhir) -> None:
    """The allergy is only on the FHIR server, the kidney result only in the prefetch: both are used."""
    allergy = ehr.write(penicillin_allergy(GRANT))
    code, display, unit = EGFR
    egfr = {**lab(GRANT, code, display, 20, unit, days_ago(1)), "id": "prefetched-egfr"}
    body = hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                        fhir_server=ehr.base_url, token=TOKEN, prefetch={"kidney": searchset([egfr])})
    cards = cards_of(call(cds, "medication-safety-sign", body))
    assert f"AllergyIntolerance/{allergy['id']}" in by_topic(cards, "drug-allergy")[0]["detail"]
    assert "Observation/prefetched-egfr" in by_topic(cards, "renal-dosing")[0]["detail"]


def test_a_prefetched_page_of_several_is_read_whole_from_the_fhir_server(cds: ServiceThread, ehr: EhrFhir) -> None:
    """The client sent one page (with a next link) of the allergies: the service reads the whole search."""
    allergy = ehr.write(penicillin_allergy(GRANT))
    first_page = {**searchset([]), "link": [{"relation": "next", "url": f"{ehr.base_url}/AllergyIntolerance?page=2"}]}
    body = hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                        fhir_server=ehr.base_url, token=TOKEN, prefetch={"allergies": first_page})
    [card] = by_topic(cards_of(call(cds, "medication-safety-sign", body)), "drug-allergy")
    assert f"AllergyIntolerance/{allergy['id']}" in card["detail"]


def test_null_prefetch_means_no_data(cds: ServiceThread, ehr: EhrFhir) -> None:
    """A null prefetch value: the client has no data; the service does not look for it on the FHIR server."""
    ehr.write(penicillin_allergy(GRANT))
    body = hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                        fhir_server=ehr.base_url, token=TOKEN, prefetch={"allergies": None})
    assert not by_topic(cards_of(call(cds, "medication-safety-sign", body)), "drug-allergy")


def test_the_fhir_authorization_bearer_is_what_reads_the_chart(cds: ServiceThread, ehr: EhrFhir) -> None:
    body = hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                        fhir_server=ehr.base_url, token="not-the-ehr-token")
    response = call(cds, "medication-safety-sign", body)
    assert response.status_code == 412, response.text
    assert response.json()["error"] == "fhir_unavailable" and "401" in response.json()["message"]


# --------------------------------------------------------------------------------------------
# patient-view
# --------------------------------------------------------------------------------------------

def test_patient_view_summarises_and_cites_the_chart(cds: ServiceThread, ehr: EhrFhir) -> None:
    body = hook_request("patient-view", patient_view_context(SCHIMMEL), fhir_server=ehr.base_url, token=TOKEN)
    cards = cards_of(call(cds, "chart-summary", body))
    [summary] = by_topic(cards, "chart-summary")
    for condition in active_conditions(SCHIMMEL):
        assert f"Condition/{condition['id']}" in summary["detail"], condition["code"]
    for order in active_orders(SCHIMMEL):
        assert f"MedicationRequest/{order['id']}" in summary["detail"]
    overdue = {c["summary"].split(" ")[0]: c for c in by_topic(cards, "overdue-monitoring")}
    a1c = latest_result(SCHIMMEL, "4548-4")  # years before today: overdue
    assert f"Observation/{a1c['id']}" in overdue["HbA1c"]["detail"]
    assert a1c["effectiveDateTime"][:10] in overdue["HbA1c"]["summary"]
    [order] = overdue["HbA1c"]["suggestions"][0]["actions"]
    assert order["type"] == "create" and order["resource"]["resourceType"] == "ServiceRequest"
    assert order["resource"]["code"]["coding"][0]["code"] == "4548-4"
    assert order["resource"]["subject"]["reference"] == f"Patient/{SCHIMMEL}"
    assert not by_topic(cards, "abnormal-results")  # nothing within the last 90 days


def test_patient_view_flags_an_abnormal_recent_result(cds: ServiceThread, ehr: EhrFhir) -> None:
    code, display, unit = POTASSIUM
    high = ehr.write(lab(SCHIMMEL, code, display, 6.4, unit, days_ago(1)))
    body = hook_request("patient-view", patient_view_context(SCHIMMEL), fhir_server=ehr.base_url, token=TOKEN)
    [card] = by_topic(cards_of(call(cds, "chart-summary", body)), "abnormal-results")
    assert card["indicator"] == "critical"  # 6.4 mmol/L is above the critical limit 6.0
    assert f"Observation/{high['id']}" in card["detail"] and "potassium 6.4" in card["summary"]


def test_patient_view_of_a_deceased_patient_orders_nothing(cds: ServiceThread, ehr: EhrFhir) -> None:
    """Conn has diabetes and an old HbA1c, but died: the summary says so and no lab is proposed."""
    died = chart_of(CONN, "Patient")[0]["deceasedDateTime"][:10]
    body = hook_request("patient-view", patient_view_context(CONN), fhir_server=ehr.base_url, token=TOKEN)
    cards = cards_of(call(cds, "chart-summary", body))
    assert [c["source"]["topic"]["code"] for c in cards] == ["chart-summary"]
    assert f"deceased {died}" in cards[0]["summary"]


def test_patient_view_with_prefetch_only(cds: ServiceThread) -> None:
    conditions = active_conditions(SCHIMMEL)
    prefetch = {"patient": chart_of(SCHIMMEL, "Patient")[0], "conditions": searchset(conditions),
                "medications": searchset(active_orders(SCHIMMEL)), "allergies": searchset([]),
                "labs": searchset([])}
    body = hook_request("patient-view", patient_view_context(SCHIMMEL), fhir_server=None, token=None, prefetch=prefetch)
    cards = cards_of(call(cds, "chart-summary", body))
    overdue = by_topic(cards, "overdue-monitoring")
    assert [c["summary"].startswith("HbA1c due: none on record") for c in overdue] == [True]


# --------------------------------------------------------------------------------------------
# feedback
# --------------------------------------------------------------------------------------------

def test_feedback_is_recorded(cds: ServiceThread, ehr: EhrFhir, records: CdsRecords) -> None:
    ehr.write(penicillin_allergy(GRANT))
    [card] = by_topic(sign(cds, ehr, GRANT, AMOXICILLIN), "drug-allergy")
    suggestion = card["suggestions"][0]["uuid"]
    accepted = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": suggestion}],
                              "outcomeTimestamp": "2021-12-11T10:05:31Z"}]}
    response = httpx.post(f"{cds.url}/cds-services/medication-safety-sign/feedback", json=accepted, timeout=30)
    assert response.status_code == 200, response.text
    overridden = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                                "overrideReason": {"reason": card["overrideReasons"][0],
                                                   "userComment": "tolerated amoxicillin in 2019"},
                                "outcomeTimestamp": "2021-12-11T10:06:00Z"}]}
    assert httpx.post(f"{cds.url}/cds-services/medication-safety-sign/feedback", json=overridden,
                      timeout=30).status_code == 200
    rows = [r for r in records.feedback("medication-safety-sign") if r.card == card["uuid"]]
    assert [(r.outcome, r.accepted) for r in rows] == [("accepted", [suggestion]), ("overridden", [])]
    assert rows[1].override_reason == {"reason": card["overrideReasons"][0], "userComment": "tolerated amoxicillin in 2019"}


# --------------------------------------------------------------------------------------------
# bad input: a clear 4xx, nothing written
# --------------------------------------------------------------------------------------------

def _good_sign(ehr: EhrFhir) -> dict[str, Any]:
    return hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                        fhir_server=ehr.base_url, token=TOKEN)


def _other_patient_prefetch(body: dict[str, Any]) -> None:
    body["prefetch"] = {"patient": chart_of(SCHIMMEL, "Patient")[0]}


def _other_patient_bundle(body: dict[str, Any]) -> None:
    body["prefetch"] = {"allergies": searchset([{**penicillin_allergy(SCHIMMEL), "id": "a1"}])}


def _wrong_type_bundle(body: dict[str, Any]) -> None:
    body["prefetch"] = {"medications": searchset([{**penicillin_allergy(GRANT), "id": "a1"}])}


def _draft_for_other_patient(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"]["entry"].append({"resource": draft_medication(SCHIMMEL, SIMVASTATIN, "d2")})


def _no_server_no_prefetch(body: dict[str, Any]) -> None:
    del body["fhirServer"], body["fhirAuthorization"]


BAD_REQUESTS = [
    pytest.param("medication-safety-sign", lambda b: b.pop("context"), 400, "context", id="no-context"),
    pytest.param("medication-safety-sign", lambda b: b.update(context={}), 400, "context", id="empty-context"),
    pytest.param("medication-safety-sign", lambda b: b.update(hook="chart-opened"), 400, "unknown hook",
                 id="unknown-hook"),
    pytest.param("medication-safety-sign", lambda b: b.update(hook="patient-view"), 400, "order-sign",
                 id="hook-of-another-service"),
    pytest.param("no-such-service", lambda b: None, 404, "no-such-service", id="unknown-service"),
    pytest.param("medication-safety-sign", lambda b: b.update(hookInstance="call-1"), 400, "hookInstance",
                 id="hook-instance-not-a-uuid"),
    pytest.param("medication-safety-sign", _other_patient_prefetch, 400, "not the context's patient",
                 id="prefetch-patient-mismatch"),
    pytest.param("medication-safety-sign", _other_patient_bundle, 400, "not the context's patient",
                 id="prefetch-bundle-of-another-patient"),
    pytest.param("medication-safety-sign", _wrong_type_bundle, 400, "not a MedicationRequest",
                 id="prefetch-of-the-wrong-type"),
    pytest.param("medication-safety-sign", lambda b: b.update(fhirServer="not a url"), 400, "fhirServer",
                 id="fhir-server-not-a-url"),
    pytest.param("medication-safety-sign", lambda b: b.update(fhirServer="ftp://ehr.example.org/fhir"), 400,
                 "fhirServer", id="fhir-server-not-http"),
    pytest.param("medication-safety-sign", lambda b: b.update(fhirServer="https://user:pw@ehr.example.org/fhir"),
                 400, "fhirServer", id="fhir-server-with-credentials"),
    pytest.param("medication-safety-sign", lambda b: b.pop("fhirServer"), 400, "fhirServer",
                 id="authorization-without-server"),
    pytest.param("medication-safety-sign", lambda b: b["context"].update(patientId="Patient/../x"), 400,
                 "patientId", id="patient-id-not-an-id"),
    pytest.param("medication-safety-sign", lambda b: b["context"].update(patientId=".."), 400,
                 "patientId", id="patient-id-of-dots"),  # issue 25: '.'/'..' would be path segments
    pytest.param("medication-safety-sign", lambda b: b["context"].update(encounterId="."), 400,
                 "encounterId", id="encounter-id-of-dots"),
    pytest.param("medication-safety-sign", _draft_for_other_patient, 400, "not the context's patient",
                 id="draft-for-another-patient"),
    pytest.param("medication-safety-sign", lambda b: b["context"].pop("draftOrders"), 400, "draftOrders",
                 id="order-sign-without-drafts"),
    pytest.param("medication-safety-select", lambda b: b.update(hook="order-select"), 400, "selections",
                 id="order-select-without-selections"),
    pytest.param("medication-safety-select",
                 lambda b: b.update(hook="order-select") or b["context"].update(selections=["MedicationRequest/zz"]),
                 400, "MedicationRequest/zz", id="selection-not-in-the-drafts"),
    pytest.param("medication-safety-sign", _no_server_no_prefetch, 412, "fhirServer", id="no-data-source"),
]


@pytest.mark.parametrize("service_id, spoil, status, mention", BAD_REQUESTS)
def test_bad_hook_requests_are_refused_and_nothing_is_written(cds: ServiceThread, ehr: EhrFhir, records: CdsRecords,
                                                              service_id: str, spoil: Any, status: int,
                                                              mention: str) -> None:
    body = _good_sign(ehr)
    spoil(body)
    issued_before = records.issued()
    response = call(cds, service_id, body)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error", "message"} and mention.lower() in error["message"].lower(), error
    assert ehr.changes() == [] and records.issued() == issued_before


def test_malformed_json_is_a_400(cds: ServiceThread) -> None:
    response = httpx.post(f"{cds.url}/cds-services/medication-safety-sign", content=b'{"hook": "order-sign",',
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and response.json()["error"] == "invalid_json"


BAD_FEEDBACK = [
    pytest.param(lambda card, s: {"feedback": []}, 400, "feedback", id="empty"),
    pytest.param(lambda card, s: {"feedback": [{"card": card, "outcome": "accepted",
                                                "outcomeTimestamp": "2021-12-11T10:05:31Z"}]}, 400,
                 "acceptedSuggestions", id="accepted-without-suggestions"),
    pytest.param(lambda card, s: {"feedback": [{"card": card, "outcome": "liked",
                                                "outcomeTimestamp": "2021-12-11T10:05:31Z"}]}, 400, "outcome",
                 id="unknown-outcome"),
    pytest.param(lambda card, s: {"feedback": [{"card": card, "outcome": "overridden",
                                                "outcomeTimestamp": "yesterday"}]}, 400, "outcomeTimestamp",
                 id="bad-timestamp"),
    pytest.param(lambda card, s: {"feedback": [
        {"card": card, "outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31Z"},
        {"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31Z"}]},
        404, "issued no card", id="unknown-card-after-a-good-one"),
    pytest.param(lambda card, s: {"feedback": [{"card": card, "outcome": "accepted",
                                                "acceptedSuggestions": [{"id": "not-on-the-card"}],
                                                "outcomeTimestamp": "2021-12-11T10:05:31Z"}]}, 400,
                 "not-on-the-card", id="suggestion-not-on-the-card"),
]


@pytest.mark.parametrize("make, status, mention", BAD_FEEDBACK)
def test_bad_feedback_is_refused_and_nothing_is_recorded(cds: ServiceThread, ehr: EhrFhir, records: CdsRecords,
                                                         make: Any, status: int, mention: str) -> None:
    ehr.write(penicillin_allergy(GRANT))
    [card] = by_topic(sign(cds, ehr, GRANT, AMOXICILLIN), "drug-allergy")
    before = records.feedback()
    response = httpx.post(f"{cds.url}/cds-services/medication-safety-sign/feedback",
                          json=make(card["uuid"], card["suggestions"][0]["uuid"]), timeout=30)
    assert response.status_code == status, response.text
    assert mention.lower() in response.json()["message"].lower(), response.json()
    assert records.feedback() == before


def test_feedback_on_another_services_card_is_refused(cds: ServiceThread, ehr: EhrFhir, records: CdsRecords) -> None:
    ehr.write(penicillin_allergy(GRANT))
    [card] = by_topic(sign(cds, ehr, GRANT, AMOXICILLIN), "drug-allergy")
    body = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31Z"}]}
    response = httpx.post(f"{cds.url}/cds-services/chart-summary/feedback", json=body, timeout=30)
    assert response.status_code == 404 and records.feedback("chart-summary") == []


# --------------------------------------------------------------------------------------------
# the time budget: no card rather than a late one
# --------------------------------------------------------------------------------------------

class SlowFhirServer:
    """TEST DOUBLE: a FHIR base URL that answers nothing for a minute (an overloaded EHR FHIR server)."""

    def __init__(self) -> None:
        async def stall(request: Request) -> Response:
            await asyncio.sleep(60)
            return Response(b"{}", media_type="application/fhir+json")

        app = Starlette(routes=[Route("/{path:path}", stall)])
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/fhir"

    def __enter__(self) -> Self:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(timeout=10)


def test_a_hook_past_its_budget_answers_with_no_card(ehr_server: EhrFhir, tmp_path: Path) -> None:
    with SlowFhirServer() as slow, _service(ehr_server, tmp_path, budget=1.0) as quick:
        body = hook_request("order-sign", order_context(GRANT, [draft_medication(GRANT, AMOXICILLIN, "d1")]),
                            fhir_server=slow.url, token=TOKEN)
        started = time.monotonic()
        response = call(quick, "medication-safety-sign", body)
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and response.json() == {"cards": []}
        assert elapsed < 10, f"answered after {elapsed:.1f} s; the FHIR server stalls for 60 s"
        issued = CdsRecords(quick.service.config.cds_records)
        assert issued.issued() == []
        issued.close()
