"""Issue 17: the audit trail of a write survives later writes (over real HTTP).

A resource the agent wrote carries ``meta.tag`` entries of the audit systems (actor, run) and an audit
extension. A client PUT, PATCH or transaction entry that drops or changes them must not erase them: the
server keeps every prior audit entry in the new version (non-audit tags stay the client's to change).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from medagent.vocabulary import ACTOR_SYSTEM, AUDIT_EXTENSION_URL, RUN_SYSTEM

FHIR_JSON = {"Content-Type": "application/fhir+json"}
ACTOR_TAG = {"system": ACTOR_SYSTEM, "code": "medagent/agent"}
RUN_TAG = {"system": RUN_SYSTEM, "code": "run-audit-test"}
OTHER_TAG = {"system": "http://example.org/workflow", "code": "to-review"}
AUDIT_EXTENSION = {"url": AUDIT_EXTENSION_URL, "extension": [{"url": "actor", "valueString": "medagent/agent"},
                                                               {"url": "tool", "valueString": "record_observation"}]}


@pytest.fixture
def http(clean_fhir: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=clean_fhir, timeout=30) as client:
        yield client


def agent_written(http: httpx.Client) -> dict[str, Any]:
    """An Observation as the write tools store it: audit tags, a non-audit tag, the audit extension."""
    patient = http.get("/Patient", params={"_count": "1"}).json()["entry"][0]["resource"]["id"]
    body = {"resourceType": "Observation", "status": "final", "meta": {"tag": [ACTOR_TAG, RUN_TAG, OTHER_TAG]},
            "extension": [AUDIT_EXTENSION], "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]},
            "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
            "effectiveDateTime": "2020-01-01T10:00:00Z"}
    response = http.post("/Observation", json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()


def stripped(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The resource as a client would PUT it back without its tags and extensions (plus ``changes``)."""
    body = {k: v for k, v in resource.items() if k not in ("meta", "extension")}
    body.update(changes)
    return body


def assert_trail_kept(stored: dict[str, Any]) -> None:
    tags = stored.get("meta", {}).get("tag", [])
    assert ACTOR_TAG in tags and RUN_TAG in tags, tags
    assert AUDIT_EXTENSION in stored.get("extension", []), stored.get("extension")


def test_put_without_the_tags_keeps_the_audit_trail(http: httpx.Client) -> None:
    written = agent_written(http)
    path = f"/Observation/{written['id']}"
    response = http.put(path, json=stripped(written, status="amended"), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    stored = http.get(path).json()
    assert stored["status"] == "amended" and stored["meta"]["versionId"] == "2"  # the update itself went through
    assert_trail_kept(stored)
    assert OTHER_TAG not in stored["meta"]["tag"]  # a non-audit tag is the client's to drop


def test_put_that_rewrites_the_actor_keeps_the_prior_actor(http: httpx.Client) -> None:
    written = agent_written(http)
    path = f"/Observation/{written['id']}"
    forged = {"system": ACTOR_SYSTEM, "code": "dr-someone-else"}
    response = http.put(path, json=stripped(written, meta={"tag": [forged]}), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    stored = http.get(path).json()
    assert_trail_kept(stored)
    assert forged in stored["meta"]["tag"]  # audit entries may be added, never removed
    history = http.get(f"{path}/_history").json()
    assert all(ACTOR_TAG in e["resource"]["meta"]["tag"] for e in history["entry"])


def test_patch_removing_the_tags_keeps_the_audit_trail(http: httpx.Client) -> None:
    written = agent_written(http)
    path = f"/Observation/{written['id']}"
    patch = [{"op": "remove", "path": "/meta/tag"}, {"op": "remove", "path": "/extension"},
             {"op": "replace", "path": "/status", "value": "corrected"}]
    response = http.patch(path, json=patch, headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200, response.text
    stored = http.get(path).json()
    assert stored["status"] == "corrected"
    assert_trail_kept(stored)


def test_transaction_put_without_the_tags_keeps_the_audit_trail(http: httpx.Client) -> None:
    written = agent_written(http)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": stripped(written, status="amended"),
         "request": {"method": "PUT", "url": f"Observation/{written['id']}"}}]}
    response = http.post("/", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    stored = http.get(f"/Observation/{written['id']}").json()
    assert stored["status"] == "amended"
    assert_trail_kept(stored)


def test_resources_without_an_audit_trail_are_updated_as_sent(http: httpx.Client) -> None:
    created = http.post("/Observation", json=stripped(agent_written(http), meta={"tag": [OTHER_TAG]}),
                        headers=FHIR_JSON).json()
    path = f"/Observation/{created['id']}"
    assert http.put(path, json=stripped(created), headers=FHIR_JSON).status_code == 200
    stored = http.get(path).json()
    assert "tag" not in stored["meta"] and "extension" not in stored
