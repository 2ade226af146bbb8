"""The EHR launch in a real headless Chromium (Debian's binary): the EHR opens medagent serve's launch URL, the
user signs in and consents on the real authorization server's (oidc-provider's) pages, the UI comes up with the
EHR's patient in context (no token asked for, though the service has one), the run reads through the launch's
token, pauses on its write, the user approves, and the protected FHIR server's $diff holds exactly that write."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from medagent.models.scripted import ScriptedPolicy
from medagent.serve.server import ServiceConfig, ServiceThread
from medagent.serve.smart_launch import SmartAppConfig
from tests.agent.conftest import PATIENT
from tests.auth.conftest import APP, LAUNCH_A, SmartWorld
from tests.serve.conftest import QUESTION, bundle_resources, read_write_answer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SERVICE_TOKEN = "serve-token-the-launch-never-needs-0123"


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian chromium not installed (apt-get install chromium); CI installs it and never skips")
def test_ehr_launch_in_chromium_reads_and_writes_with_the_launch_token(protected_fhir: SmartWorld,
                                                                      tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM is not None, "chromium is required in CI"
    world = protected_fhir
    patient = next(r for r in bundle_resources(PATIENT) if r["resourceType"] == "Patient")
    config = ServiceConfig(fhir_url=world.fhir_url, checkpoints=tmp_path / "checkpoints.sqlite", port=world.serve_port,
                           approval="ask", model_label="scripted test policy", token=SERVICE_TOKEN,
                           smart=SmartAppConfig(client_id=APP, issuers=[world.fhir_url],
                                                scopes="launch launch/patient patient/*.cruds openid fhirUser offline_access"))
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with ServiceThread(config, ScriptedPolicy(read_write_answer)) as service, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # the EHR opens the app with its launch context and its FHIR server
        page.goto(f"{service.url}/launch?iss={world.fhir_url}&launch={LAUNCH_A}")
        assert page.url.startswith(world.issuer)  # the authorization server's own sign-in page
        page.fill("input[name=login]", "dr-lee")
        page.fill("input[name=password]", "any password")
        page.click("button[type=submit]")
        expect(page.locator("button[type=submit]")).to_have_text("Continue")  # its consent page
        page.click("button[type=submit]")

        page.wait_for_url(f"{service.url}/")
        expect(page.locator("#patient-selected")).to_contain_text(patient["name"][0]["family"])
        expect(page.locator("#patient-launch")).to_have_text("In context from the EHR launch")
        expect(page.locator("#patient-selected button")).to_have_count(0)  # the EHR's patient cannot be changed
        expect(page.locator("#login")).to_be_hidden()  # the launch authorizes this browser: no service token asked
        launch_cookie = next(c for c in page.context.cookies() if c["name"] == "medagent_launch")
        assert launch_cookie["httpOnly"] and launch_cookie["sameSite"] == "Lax"
        assert "medagent_launch" not in page.evaluate("document.cookie")

        page.fill("#now", "2020-01-01")
        page.fill("#question", QUESTION)
        page.click("#ask")
        expect(page.locator("#steps li.step[data-tool='search_observations']")).to_be_visible()
        expect(page.locator("#run-status")).to_have_text("Waiting for your approval")
        expect(page.locator("#approval-summary")).to_contain_text("128/82 mm[Hg]")
        assert world.changes() == []  # nothing written before the click
        page.screenshot(path=str(ARTIFACTS / "smart-launch-approval.png"), full_page=False)
        page.click("#approve")
        expect(page.locator("#run-status")).to_have_text("Finished")
        expect(page.locator("#steps li.step[data-tool='record_vital_sign']")).to_contain_text("approved")
        browser.close()

    assert errors == []
    [change] = world.changes()
    assert (change["resourceType"], change["action"]) == ("Observation", "create")
    assert change["after"]["subject"]["reference"] == f"Patient/{PATIENT}"
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in change["after"]["component"]}
    assert components == {"8480-6": 128, "8462-4": 82}
