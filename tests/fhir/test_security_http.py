"""Issue 17: no web page can read or write the record through the embedded server (over real HTTP).

DNS rebinding (a foreign Host), cross-site writes (a foreign Origin, a non-JSON content type),
oversized bodies refused before they are read, the bind rule and the bearer token, the id rule,
only concrete resource types, foreign-base references, and the append-only access log.
All against the real server process on 127.0.0.1 (the session's shared ``fhir_server``).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fhir_expect import dataset
from fhir_support import assert_outcome

from medagent.request_guard import check_bind
from medagent.fhir.server.serve import access_log_path

EVIL = "evil.example"
PATIENT = {"resourceType": "Patient", "name": [{"family": "Rebinding", "given": ["Test"]}]}


@pytest.fixture(scope="module")
def http(fhir_server: Any) -> Any:
    with httpx.Client(base_url=fhir_server.base_url, timeout=30) as client:
        yield client


def raw_request(base_url: str, head: str, body: bytes = b"", *, read_timeout: float = 10.0) -> tuple[int, bytes]:
    """Send bytes as they are (no URL normalisation, a Content-Length that lies); return (status, reply)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        reply = b""
        while not _complete(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply


def _complete(reply: bytes) -> bool:
    """The reply's head and, when it states a Content-Length, its whole body have arrived."""
    head, found, body = reply.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


def mejia() -> str:
    return str(dataset().patient_by_name("Rodríguez")["id"])


# --- DNS rebinding and cross-site requests -------------------------------------------------------

def test_foreign_host_gets_no_patient_data_and_no_rewritten_links(http: httpx.Client) -> None:
    response = http.get("/Patient", params={"_count": "1"}, headers={"Host": EVIL})
    assert_outcome(response, (403,), "Host", EVIL)
    assert "entry" not in response.json()
    assert f"http://{EVIL}" not in response.text
    good = http.get("/Patient", params={"_count": "1"})
    assert good.status_code == 200 and good.json()["entry"][0]["resource"]["resourceType"] == "Patient"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_host_names_are_served(http: httpx.Client, fhir_server: Any, host: str) -> None:
    response = http.get("/metadata", headers={"Host": f"{host}:{fhir_server.port}"})
    assert response.status_code == 200, response.text


def test_links_name_the_host_each_request_used(http: httpx.Client, fhir_server: Any) -> None:
    """The server remembers base URLs per Host: a request naming another loopback name, or an X-Forwarded-Proto
    from a loopback proxy, gets links of its own, never those of an earlier request."""
    port = fhir_server.port
    for host, proto, base in [("localhost", None, f"http://localhost:{port}"),
                              ("127.0.0.1", None, f"http://127.0.0.1:{port}"),
                              ("localhost", "https", f"https://localhost:{port}"),
                              ("localhost", None, f"http://localhost:{port}")]:
        headers = {"Host": f"{host}:{port}", **({"X-Forwarded-Proto": proto} if proto else {})}
        bundle = http.get("/Patient", params={"_count": "1"}, headers=headers).json()
        assert bundle["link"][0]["url"].startswith(f"{base}/Patient?"), (headers, bundle["link"][0])
        assert bundle["entry"][0]["fullUrl"].startswith(f"{base}/Patient/")
        read = http.get(bundle["entry"][0]["fullUrl"].removeprefix(base), headers=headers)
        assert read.headers["Location"].startswith(f"{base}/Patient/")


def test_cross_site_text_plain_create_is_refused_and_nothing_stored(http: httpx.Client) -> None:
    family = "Crosssite"
    body = orjson.dumps({**PATIENT, "name": [{"family": family}]})
    cross = http.post("/Patient", content=body, headers={"Origin": f"http://{EVIL}", "Content-Type": "text/plain"})
    assert_outcome(cross, (403,), "Origin")
    plain = http.post("/Patient", content=body, headers={"Content-Type": "text/plain"})
    assert_outcome(plain, (415,), "application/fhir+json", "text/plain")
    assert http.get("/Patient", params={"family": family}).json()["total"] == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", ""])
def test_writes_need_a_json_content_type(http: httpx.Client, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.put(f"/Patient/{mejia()}", content=orjson.dumps(PATIENT), headers=headers)
    assert_outcome(response, (415,), "Content-Type")


def test_cross_site_reset_is_refused(http: httpx.Client) -> None:
    """The shared server runs with --allow-reset: a page must not be able to reset it."""
    response = http.post("/$reset", content=b"x", headers={"Origin": f"http://{EVIL}", "Content-Type": "text/plain"})
    assert_outcome(response, (403,), "Origin")
    same_origin_text = http.post("/$snapshot", content=b"x", headers={"Content-Type": "text/plain"})
    assert_outcome(same_origin_text, (415,), "Content-Type")


def test_same_origin_json_write_still_works(http: httpx.Client, fhir_server: Any) -> None:
    response = http.post("/Patient", content=orjson.dumps(PATIENT), headers={
        "Content-Type": "application/fhir+json", "Origin": fhir_server.base_url})
    assert response.status_code == 201, response.text
    assert http.delete(f"/Patient/{response.json()['id']}").status_code == 200


# --- body size ---------------------------------------------------------------------------------

def test_oversized_body_refused_from_content_length_before_reading(fhir_server: Any) -> None:
    """The header claims 70 MB and no body follows: the answer comes without waiting for it."""
    started = time.monotonic()
    status, reply = raw_request(fhir_server.base_url, (
        f"POST /Patient HTTP/1.1\r\nHost: 127.0.0.1:{fhir_server.port}\r\nContent-Type: application/fhir+json\r\n"
        f"Content-Length: {70 * 1024 * 1024}\r\nConnection: close\r\n\r\n"))
    assert status == 413, reply[:300]
    assert b"too-costly" in reply or b"over the limit" in reply
    assert time.monotonic() - started < 10


# --- ids and types -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/Patient/..", "/Patient/.", "/Patient/%2E%2E"])
def test_dot_ids_are_refused(fhir_server: Any, path: str) -> None:
    body = orjson.dumps(PATIENT)
    status, reply = raw_request(fhir_server.base_url, (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{fhir_server.port}\r\nContent-Type: application/fhir+json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"), body)
    assert status in (400, 404), reply[:400]
    assert b"_history" not in reply.split(b"\r\n\r\n")[0]  # no Location: /Patient/../_history/1


@pytest.mark.parametrize("rtype", ["HumanName", "Coding", "Meta", "Quantity", "Reference", "Resource",
                                   "DomainResource"])
def test_only_concrete_resource_types_are_stored(http: httpx.Client, rtype: str) -> None:
    response = http.post(f"/{rtype}", json={"resourceType": rtype})
    assert_outcome(response, (400, 404), rtype)
    assert http.get(f"/{rtype}").status_code == 404


# --- foreign-base references ---------------------------------------------------------------------

def test_foreign_base_reference_never_matches_local_data(http: httpx.Client, fhir_server: Any) -> None:
    pid = mejia()
    expected = len(dataset().of_type("Condition", pid))
    assert expected > 0
    local = http.get("/Condition", params={"subject": f"Patient/{pid}"}).json()["total"]
    own_base = http.get("/Condition", params={"subject": f"{fhir_server.base_url}/Patient/{pid}"}).json()["total"]
    foreign = http.get("/Condition", params={"subject": f"http://127.0.0.2:9/fhir/Patient/{pid}"}).json()["total"]
    assert (local, own_base, foreign) == (expected, expected, 0)


# --- bind rule and token -------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_binding_beyond_loopback_needs_a_token(host: str) -> None:
    with pytest.raises(ValueError, match="bearer token"):
        check_bind(host, None)
    check_bind(host, "t" * 16)
    check_bind("127.0.0.1", None)


def test_cli_refuses_a_public_bind_without_token(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "medagent", "fhir", "serve", "--host", "0.0.0.0", "--db",
                             str(tmp_path / "x.sqlite"), "--no-load"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "token" in result.stderr and not (tmp_path / "x.sqlite").exists()


def test_token_is_required_on_every_request(synthea_db: Path, tmp_path: Path) -> None:
    """A real server process with --token (still on 127.0.0.1): no token or a wrong one is a 401."""
    import shutil
    import subprocess
    import sys

    from medagent.fhir.server.process import free_port

    token = "s3cret-token-for-tests"
    shutil.copyfile(synthea_db, tmp_path / "fhir.sqlite")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "medagent", "fhir", "serve", "--port", str(port),
                                "--db", str(tmp_path / "fhir.sqlite"), "--token", token, "--exit-with-parent"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/metadata", headers=auth, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": token}):
            for method, path in (("GET", "/metadata"), ("GET", "/Patient"), ("POST", "/Patient")):
                response = httpx.request(method, f"{base}{path}", headers=headers, json=PATIENT)
                assert_outcome(response, (401,), "Bearer")
        assert httpx.get(f"{base}/Patient", params={"_count": "1"}, headers=auth).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


# --- access log ----------------------------------------------------------------------------------

def test_access_log_records_who_what_when_without_record_content(http: httpx.Client, fhir_server: Any) -> None:
    log_path = access_log_path(fhir_server.db_path)
    before = log_path.read_bytes().count(b"\n")
    family = "Mejia"
    http.get("/Patient", params={"family": family})
    http.get("/Patient", headers={"Host": EVIL})
    time.sleep(0.2)
    lines = [orjson.loads(line) for line in log_path.read_bytes().splitlines()]
    assert len(lines) >= before + 2
    search, refused = lines[-2], lines[-1]
    assert (search["method"], search["path"], search["params"], search["status"]) == ("GET", "/Patient",
                                                                                      ["family"], 200)
    assert refused["status"] == 403 and search["at"] <= refused["at"] and search["client"].startswith("127.0.0.1")
    assert family.encode() not in log_path.read_bytes()
