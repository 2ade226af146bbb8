"""``medagent serve`` as a SMART app, launched over plain HTTP against a real authorization server
(oidc-provider) and the protected embedded server: the standalone launch, token refresh during a run, writes
refused by the token's scopes after approval, and launches that must fail (bad state, another browser,
unregistered iss, no iss, no patient context, an unknown launch) with a clear page and nothing written.

The model is a ScriptedPolicy (a deterministic TEST POLICY, not a model); expected values come from the
packaged Synthea bundles."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medagent.models.base import ModelRequest
from medagent.models.scripted import ScriptedPolicy
from medagent.serve.server import ServiceConfig, ServiceThread
from medagent.serve.smart_launch import SmartAppConfig
from tests.agent.conftest import NOW, PATIENT, call, final
from tests.auth.authorization_server import sign_in_and_consent
from tests.auth.conftest import (
    APP,
    APP_SHORT,
    LAUNCH_A,
    LAUNCH_WITHOUT_PATIENT,
    PATIENT_B,
    SHORT_TTL_S,
    SmartWorld,
)
from tests.serve.conftest import WEIGHT, bundle_resources, read_write_answer, tool_results, wait_for

QUESTION = "What was the patient's last body weight?"


def latest_weight(patient: str) -> float:
    """The value of the patient's last Body Weight on or before NOW, from the bundle file (ground truth)."""
    weights = [r for r in bundle_resources(patient) if r["resourceType"] == "Observation"
               and any(c.get("code") == WEIGHT for c in r["code"]["coding"]) and r["effectiveDateTime"] <= NOW]
    return float(max(weights, key=lambda r: r["effectiveDateTime"])["valueQuantity"]["value"])


def answered_weight(view: dict[str, Any]) -> float:
    match = re.fullmatch(r"Last body weight: ([\d.]+) kg", view["answer"] or "")
    assert match, view["answer"]
    return float(match.group(1))


def weight_of_patient_in_context(request: ModelRequest) -> dict[str, Any]:
    """Reads the last weight without naming a patient (the launch's patient fills it), then answers with it."""
    results = tool_results(request)
    if not results:
        return call("search_observations", code=WEIGHT, latest=1)
    row = next((line for line in results[0].split("\n") if "Body Weight" in line), "")
    value = re.search(r"\| ([\d.]+) kg \|", row)
    cited = re.findall(r"Observation/[A-Za-z0-9\-.]+", results[0])
    return final(f"Last body weight: {value.group(1) if value else 'not found'} kg", *cited[:1])


@pytest.fixture
def smart_service(smart_world: SmartWorld, tmp_path: Path) -> Callable[..., ServiceThread]:
    """medagent serve as the SMART app registered at the authorization server, on the protected FHIR server."""

    def make(policy: Callable[[ModelRequest], Any], *, client_id: str = APP,
             scopes: str = "launch launch/patient patient/*.rs openid fhirUser offline_access") -> ServiceThread:
        config = ServiceConfig(fhir_url=smart_world.fhir_url, checkpoints=tmp_path / "checkpoints.sqlite",
                               port=smart_world.serve_port, approval="ask", model_label="scripted test policy",
                               smart=SmartAppConfig(client_id=client_id, issuers=[smart_world.fhir_url], scopes=scopes))
        return ServiceThread(config, ScriptedPolicy(policy))

    return make


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as http:
        yield http


def launch(http: httpx.Client, service: ServiceThread, query: str = "") -> httpx.Response:
    """A user opens the app's launch URL, signs in and consents; the app's answer to the redirect back."""
    callback = sign_in_and_consent(http, f"{service.url}/launch{query}", stop_at=f"{service.url}/launch/callback")
    return http.get(str(callback))


def run_to_the_end(http: httpx.Client, service: ServiceThread, body: dict[str, Any]) -> dict[str, Any]:
    started = http.post(f"{service.url}/api/runs", json=body)
    assert started.status_code == 202, started.text
    run_url = f"{service.url}/api/runs/{started.json()['run_id']}"
    return wait_for(run_url, lambda v: v["state"] != "running", headers={"Cookie": _cookies(http)})


def _cookies(http: httpx.Client) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)


def test_standalone_launch_runs_about_the_chosen_patient_with_the_launch_token(
        smart_world: SmartWorld, smart_service: Callable[..., ServiceThread], browser: httpx.Client) -> None:
    with smart_service(weight_of_patient_in_context) as service:
        opened = launch(browser, service)  # no iss, no launch: standalone, the first registered FHIR server
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookie = browser.cookies.get("medagent_launch")
        assert cookie and "HttpOnly" in opened.headers["set-cookie"]
        session = browser.get(f"{service.url}/api/session").json()["launch"]
        assert session["patient"] == PATIENT_B and session["fhir_user"] == "Practitioner/dr-lee"
        assert session["iss"] == smart_world.fhir_url and "access_token" not in str(session)
        assert [p["id"] for p in browser.get(f"{service.url}/api/patients").json()["patients"]] == [PATIENT_B]
        other = browser.post(f"{service.url}/api/runs", json={"question": QUESTION, "patient": PATIENT, "now": NOW})
        assert other.status_code == 403 and other.json()["error"] == "not_in_context"
        view = run_to_the_end(browser, service, {"question": QUESTION, "now": NOW})
        assert view["patient"] == PATIENT_B and view["status"] == "answered"
        assert answered_weight(view) == pytest.approx(latest_weight(PATIENT_B), abs=0.01)  # the tools show 2 decimals
        assert view["steps"][0]["note"] == "patient filled from the run's patient context"
        listed = browser.get(f"{service.url}/api/runs").json()["runs"]
        assert [r["run_id"] for r in listed] == [view["run_id"]]


def test_the_launch_token_is_refreshed_during_a_later_run(
        smart_world: SmartWorld, smart_service: Callable[..., ServiceThread], browser: httpx.Client) -> None:
    with smart_service(weight_of_patient_in_context, client_id=APP_SHORT) as service:
        opened = launch(browser, service, f"?iss={smart_world.fhir_url}&launch={LAUNCH_A}")
        assert opened.status_code == 303
        requests_before = len(smart_world.statuses())
        time.sleep(SHORT_TTL_S + 1)  # the launch's access token has expired
        view = run_to_the_end(browser, service, {"question": QUESTION, "now": NOW})
        assert view["status"] == "answered" and view["patient"] == PATIENT
        assert answered_weight(view) == pytest.approx(latest_weight(PATIENT), abs=0.01)
        statuses = smart_world.statuses()[requests_before:]
        assert statuses and 401 not in statuses  # refreshed before use: the expired token was never sent


def test_an_approved_write_the_scopes_do_not_allow_is_refused_by_the_server(
        smart_world: SmartWorld, smart_service: Callable[..., ServiceThread], browser: httpx.Client) -> None:
    with smart_service(read_write_answer) as service:  # patient/*.rs: reads only
        assert launch(browser, service, f"?iss={smart_world.fhir_url}&launch={LAUNCH_A}").status_code == 303
        started = browser.post(f"{service.url}/api/runs", json={"question": "record a BP", "now": NOW})
        run_url = f"{service.url}/api/runs/{started.json()['run_id']}"
        waiting = wait_for(run_url, lambda v: v["state"] == "awaiting_approval", headers={"Cookie": _cookies(browser)})
        decided = browser.post(f"{run_url}/decision", json={"pending_id": waiting["pending_write"]["id"], "approve": True})
        assert decided.status_code == 202
        view = wait_for(run_url, lambda v: v["state"] == "finished", headers={"Cookie": _cookies(browser)})
        write = next(s for s in view["steps"] if s["tool"] == "record_vital_sign")
        assert "do not allow create Observation" in (write["error"] or write["result"] or "")
        assert smart_world.changes() == []


def test_launches_that_cannot_go_on_fail_clearly_and_open_no_session(
        smart_world: SmartWorld, smart_service: Callable[..., ServiceThread], browser: httpx.Client) -> None:
    with smart_service(weight_of_patient_in_context) as service:
        url = service.url

        def page(response: httpx.Response, status: int, words: str) -> None:
            assert response.status_code == status, response.text
            assert words in response.text and "Nothing was written" in response.text
            assert browser.get(f"{url}/api/session").json()["launch"] is None

        page(browser.get(f"{url}/launch/callback", params={"state": "made-up", "code": "x"}), 400, "unknown or expired")
        page(browser.get(f"{url}/launch", params={"launch": LAUNCH_A}), 400, "needs both launch and iss")
        page(browser.get(f"{url}/launch", params={"iss": "https://ehr.example/fhir", "launch": LAUNCH_A}), 403,
             "not a FHIR server this app is registered with")
        page(launch(browser, service, f"?iss={smart_world.fhir_url}&launch={LAUNCH_WITHOUT_PATIENT}"), 400,
             "granted no patient context")
        unknown = browser.get(f"{url}/launch", params={"iss": smart_world.fhir_url, "launch": "no-such-launch"})
        error_page = browser.get(urljoin_location(unknown))  # the authorization server redirects back with an error
        page(error_page, 403, "unknown launch")
        # a redirect back carried to another browser (no cookie of this launch) is refused; replayed too
        callback = sign_in_and_consent(browser, f"{url}/launch?iss={smart_world.fhir_url}&launch={LAUNCH_A}",
                                       stop_at=f"{url}/launch/callback")
        with httpx.Client(timeout=60) as other:
            stolen = other.get(str(callback))
            assert stolen.status_code == 400 and "another browser" in stolen.text
        page(browser.get(str(callback)), 400, "unknown or expired")  # the state was used up by that attempt
    assert smart_world.changes() == []


def urljoin_location(response: httpx.Response) -> str:
    """Where a redirect chain from the app through the authorization server ends (followed without signing in)."""
    with httpx.Client(timeout=60, follow_redirects=True, cookies=response.cookies) as http:
        location = response.headers["location"]
        answer = http.get(location, follow_redirects=False)
        while answer.is_redirect:
            location = str(answer.url.join(answer.headers["location"]))
            if "/launch/callback" in location:
                return location
            answer = http.get(location, follow_redirects=False)
    raise AssertionError(f"the authorization server did not redirect back: {answer.status_code} {answer.text[:200]}")
