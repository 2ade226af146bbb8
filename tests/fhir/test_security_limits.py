"""Issue 17: bounded work per request and no 500 from the inputs that used to end in one.

Each former 500 (and freeze) from the issue, sent to the real server over HTTP, is now a 4xx
OperationOutcome naming what was wrong; the per-query time limit aborts SQLite work; the client does
not resend what the server refused as too costly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir_expect import dataset
from fhir_support import assert_outcome

from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirInvalid, FhirServerError
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.store import Store


@pytest.fixture(scope="module")
def http(fhir_server: Any) -> Any:
    with httpx.Client(base_url=fhir_server.base_url, timeout=60) as client:
        yield client


def pid() -> str:
    return str(dataset().patient_by_name("Rodríguez")["id"])


@pytest.mark.parametrize("params, mentions", [
    ([("code", ",".join(["x"] * 1000))], ("alternatives",)),
    ([("code:not", "x")] * 900, ("too many search parameters",)),
    ([("_sort", ",".join(["-date"] * 128))], ("_sort",)),
    ([("_offset", "99999999999999999999")], ("_offset",)),
    ([("value-quantity", "1e999999999")], ("value-quantity",)),
    ([("_lastUpdated", "0001-01-01T00:00+14:00")], ("outside years", "_lastUpdated")),
    ([("code", "x" * 3000)], ("characters",)),
], ids=["1000-alternatives", "900-repeats", "128-sort-keys", "huge-offset", "huge-decimal", "year-0",
        "long-value"])
def test_former_500s_and_freezes_in_search_are_4xx(http: httpx.Client, params: list[tuple[str, str]],
                                                   mentions: tuple[str, ...]) -> None:
    started = time.monotonic()
    response = http.get("/Observation", params=params)
    assert response.status_code < 500
    assert_outcome(response, (400, 414), mentions if response.status_code == 400 else "query string")
    assert time.monotonic() - started < 30
    assert http.get("/metadata").status_code == 200


@pytest.mark.parametrize("vid", ["99999999999999999999", "%C2%B2"])
def test_former_500s_in_vread(http: httpx.Client, vid: str) -> None:
    assert_outcome(http.get(f"/Patient/{pid()}/_history/{vid}"), (400,), "version id")


def test_superscript_if_match_is_400(http: httpx.Client) -> None:
    body = http.get(f"/Patient/{pid()}").json()
    response = http.put(f"/Patient/{pid()}", json=body, headers={"If-Match": 'W/"²"'.encode()})
    assert_outcome(response, (400,), "If-Match")


def test_deeply_nested_extensions_are_400_and_nothing_stored(http: httpx.Client) -> None:
    node: dict[str, Any] = {"url": "http://x", "valueString": "leaf"}
    for _ in range(120):
        node = {"url": "http://x", "extension": [node]}
    body = json.dumps({"resourceType": "Patient", "name": [{"family": "Nestedext"}], "extension": [node]})
    response = http.post("/Patient", content=body, headers={"Content-Type": "application/fhir+json"})
    assert_outcome(response, (400,), "nested")
    assert http.get("/Patient", params={"family": "Nestedext"}).json()["total"] == 0


def test_20kb_value_is_refused_without_reaching_the_database(http: httpx.Client) -> None:
    response = http.get("/Observation", params={"patient": pid(), "code": "x" * 20_000})
    assert_outcome(response, (414,), "query string")


# --- the per-query time limit (a real SQLite store) ----------------------------------------------

def test_query_time_limit_aborts_sqlite_work_and_the_connection_keeps_working(tmp_path: Path) -> None:
    store = Store(tmp_path / "limit.sqlite")
    store.query_seconds = 0.2
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.monotonic()
    with pytest.raises(FhirError) as caught:
        store.query(endless)
    assert time.monotonic() - started < 5
    assert caught.value.status == 400 and caught.value.code == "too-costly"
    assert "0.2 s" in caught.value.diagnostics
    assert store.query("SELECT 1") == [(1,)]  # the deadline does not stick to the connection
    store.close()


# --- the client does not resend a too-costly refusal (a scripted transport: a unit test double) --

def scripted_transport(status: int, code: str, calls: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(status, json={"resourceType": "OperationOutcome",
                                            "issue": [{"severity": "error", "code": code, "diagnostics": "x"}]})

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("status", [400, 503])
async def test_client_never_retries_too_costly(status: int) -> None:
    calls: list[str] = []
    async with FhirClient("http://fhir.test", retries=3, backoff=0,
                          transport=scripted_transport(status, "too-costly", calls)) as client:
        with pytest.raises((FhirInvalid, FhirServerError)):
            await client.search_page("Observation", {"code": "x"})
    assert len(calls) == 1


async def test_client_still_retries_other_5xx() -> None:
    calls: list[str] = []
    async with FhirClient("http://fhir.test", retries=3, backoff=0,
                          transport=scripted_transport(503, "transient", calls)) as client:
        with pytest.raises(FhirServerError):
            await client.search_page("Observation", {"code": "x"})
    assert len(calls) == 4


# --- a long search does not hold up other connections ------------------------------------------

LONG_SEARCH = [("code:not", ",".join(f"q{i}" for i in range(100)))] * 25 + [("_sort", "-date")]


def test_metadata_and_a_read_answer_while_a_long_search_runs(fhir_server: Any, http: httpx.Client) -> None:
    """The long search's request is fully sent first, on its own connection; then /metadata and a plain read
    go out on another. Were database work on the event loop, the loop would start the long search first
    (its bytes arrived first) and nothing else could finish before it. Asserted: the order of completion."""
    import socket
    import threading
    from urllib.parse import urlencode

    finished: list[str] = []
    lock = threading.Lock()
    status: dict[str, int] = {}
    patient = f"/Patient/{pid()}"
    head = (f"GET /Observation?{urlencode(LONG_SEARCH)} HTTP/1.1\r\nHost: 127.0.0.1:{fhir_server.port}\r\n"
            "Accept: application/fhir+json\r\nConnection: close\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", fhir_server.port), timeout=120)
    sock.sendall(head.encode())

    def read_long_reply() -> None:
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        status["long"] = int(reply.split(b" ", 2)[1])
        with lock:
            finished.append("long search")

    reader = threading.Thread(target=read_long_reply)
    reader.start()
    try:
        while reader.is_alive() and len(finished) < 40:
            for name, path in (("metadata", "/metadata"), ("read", patient)):
                assert http.get(path).status_code == 200
                with lock:
                    finished.append(name)
    finally:
        reader.join(timeout=120)
        sock.close()
    assert status["long"] in (200, 400), status  # done, or stopped by the per-query time limit (too-costly)
    assert finished[:2] == ["metadata", "read"], finished
    assert "long search" in finished


# --- issue 25, item 5: a primitive's extension key holding a string ------------------------------------

BAD_PRIMITIVE_EXTENSIONS = [{"resourceType": "Patient", "_gender": "1"},
                            {"resourceType": "Patient", "_birthDate": 5},
                            {"resourceType": "Patient", "gender": "male", "_gender": ["x"]}]


@pytest.mark.parametrize("body", BAD_PRIMITIVE_EXTENSIONS)
def test_a_bad_primitive_extension_is_a_4xx_everywhere(http: httpx.Client, body: dict[str, Any]) -> None:
    """``POST /Patient {"_gender": "1"}`` was a 500 (also in $validate, transactions and batches)."""
    headers = {"Content-Type": "application/fhir+json"}
    before = http.get("/$diff").json()["changes"] if http.get("/$diff").status_code == 200 else None
    created = http.post("/Patient", content=json.dumps(body), headers=headers)
    assert_outcome(created, (400, 422), "invalid Patient", "_")
    validated = http.post("/Patient/$validate", content=json.dumps(body), headers=headers)
    assert validated.status_code < 500, validated.text
    assert any(i["severity"] == "error" for i in validated.json()["issue"]), validated.text
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": body, "request": {"method": "POST", "url": "Patient"}}]}
        answered = http.post("/", content=json.dumps(bundle), headers=headers)
        assert answered.status_code < 500, (kind, answered.text)
        if kind == "batch" and answered.status_code == 200:
            status = answered.json()["entry"][0]["response"]["status"]
            assert status.startswith("4"), answered.text
    if before is not None:
        assert http.get("/$diff").json()["changes"] == before  # nothing stored
