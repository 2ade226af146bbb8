"""The serve UI in a real headless Chromium (Debian's binary): pick a patient, ask, watch the steps stream,
see the FHIR resource the write will create, approve it, open the cited record; the FHIR server's $diff shows exactly the approved write."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from medagent.serve.server import ServiceThread
from tests.agent.conftest import PATIENT
from tests.serve.conftest import (
    QUESTION,
    bundle_resources,
    created_observations,
    latest_weight_in_bundle,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian chromium not installed (apt-get install chromium); CI installs it and never skips")
def test_ask_stream_approve_and_open_citation_in_headless_chromium(service: ServiceThread, clean_fhir: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM is not None, "chromium is required in CI"
    patient = next(r for r in bundle_resources(PATIENT) if r["resourceType"] == "Patient")
    weight = latest_weight_in_bundle()
    page_source = httpx.get(f"{service.url}/", timeout=30).text + httpx.get(f"{service.url}/static/app.js", timeout=30).text
    assert "http://" not in page_source and "https://" not in page_source  # self-contained: no CDN

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(service.url)
        expect(page.locator("#service-info")).to_contain_text("writes need your approval")

        page.fill("#now", "2020-01-01")
        page.fill("#patient-search", patient["name"][0]["family"])
        option = page.locator(f".patient-option[data-id='{PATIENT}']")
        expect(option).to_contain_text(patient["birthDate"])
        option.click()
        expect(page.locator("#patient-selected")).to_contain_text(patient["name"][0]["family"])
        page.fill("#question", QUESTION)
        page.click("#ask")

        # the read step arrives over the stream while the run is still open, paused on the write
        expect(page.locator("#steps li.step[data-tool='search_observations']")).to_be_visible()
        approval = page.locator("#approval")
        expect(approval).to_be_visible()
        expect(page.locator("#run-status")).to_have_text("Waiting for your approval")
        expect(approval).to_contain_text("Record a vital sign")
        arguments = page.locator("#approval-arguments")
        expect(arguments.locator("tr", has_text="systolic")).to_contain_text("128")
        expect(arguments.locator("tr", has_text="diastolic")).to_contain_text("82")
        expect(arguments.locator("tr", has_text="patient")).to_contain_text(PATIENT)
        # the resource approving writes, before the click: summary line and the pretty-printed FHIR JSON
        expect(page.locator("#approval-what")).to_contain_text("Approving creates this: a new Observation")
        expect(page.locator("#approval-summary")).to_contain_text("128/82 mm[Hg]")
        resource = page.locator("#approval-resource")
        expect(resource).to_be_visible()
        expect(resource).to_contain_text('"code": "85354-9"')
        expect(resource).to_contain_text(f'"reference": "Patient/{PATIENT}"')
        expect(resource).to_contain_text('"value": 128')
        expect(page.locator("#answer")).to_be_hidden()
        assert created_observations(clean_fhir) == []  # nothing written before the click
        page.screenshot(path=str(ARTIFACTS / "serve-approval.png"), full_page=False)

        page.click("#approve")
        expect(page.locator("#run-status")).to_have_text("Finished")
        expect(page.locator("#steps li.step")).to_have_count(3)
        expect(page.locator("#steps li.step[data-tool='record_vital_sign']")).to_contain_text("approved")
        citation = page.locator(f"#citations a.ref[data-ref='Observation/{weight['id']}']")
        expect(citation).to_be_visible()
        expect(page.locator("#run-usage")).to_contain_text("tokens")

        citation.click()
        drawer = page.locator("#resource-drawer")
        expect(drawer).to_be_visible()
        expect(page.locator("#resource-summary")).to_contain_text("Body Weight")
        expect(page.locator("#resource-json")).to_contain_text(f'"id": "{weight["id"]}"')
        expect(page.locator("#resource-json")).to_contain_text(str(weight["valueQuantity"]["value"]))
        expect(page.locator("#runs li").first).to_contain_text("Finished")
        page.screenshot(path=str(ARTIFACTS / "serve.png"), full_page=False)
        browser.close()

    assert errors == []
    created = created_observations(clean_fhir)
    assert len(created) == 1
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in created[0]["after"]["component"]}
    assert components == {"8480-6": 128, "8462-4": 82}
    assert (ARTIFACTS / "serve.png").stat().st_size > 20_000
    assert (ARTIFACTS / "serve-approval.png").stat().st_size > 20_000


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian chromium not installed (apt-get install chromium); CI installs it and never skips")
def test_ui_signs_in_with_the_token_and_never_exposes_it(service_config) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    from medagent.models.scripted import ScriptedPolicy

    assert CHROMIUM is not None, "chromium is required in CI"
    token = "browser-test-token-0123456789"
    patient = next(r for r in bundle_resources(PATIENT) if r["resourceType"] == "Patient")
    errors: list[str] = []
    with ServiceThread(service_config(token=token), ScriptedPolicy([])) as svc, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(svc.url)
        expect(page.locator("#login")).to_be_visible()
        page.fill("#login-token", "not-the-token-at-all")
        page.click("#login-form button")
        expect(page.locator("#login-error")).to_contain_text("not this service's token")
        page.fill("#login-token", token)
        page.click("#login-form button")
        expect(page.locator("#login")).to_be_hidden()
        page.fill("#patient-search", patient["name"][0]["family"])
        expect(page.locator(f".patient-option[data-id='{PATIENT}']")).to_be_visible()
        assert token not in page.content()
        assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly
        assert token not in page.evaluate("JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
        assert token not in str(page.context.cookies())
        browser.close()
    assert errors == []
