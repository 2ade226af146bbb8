"""Issue 17: ``medagent serve`` sits behind the FHIR server's request guard (over real HTTP).

Host allow-list (DNS rebinding), exact Origin (cross-site requests), JSON-only writes, body size refused
from Content-Length before reading, query-string cap; each refusal in the API's error shape, and
nothing is started by a refused request.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest

from medagent.models.scripted import ScriptedPolicy
from medagent.serve.auth import SERVE_MAX_BODY_BYTES
from medagent.serve.server import ServiceConfig, ServiceThread
from tests.agent.conftest import NOW, PATIENT
from tests.serve.conftest import QUESTION, read_write_answer

RUN = {"question": QUESTION, "patient": PATIENT, "now": NOW}


def no_runs(url: str) -> bool:
    return httpx.get(f"{url}/api/runs", timeout=30).json()["runs"] == []


def refused(response: httpx.Response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    for word in words:
        assert word in body["message"], body


def test_foreign_host_and_foreign_origin_are_refused(service: ServiceThread) -> None:
    port = service.url.rsplit(":", 1)[1]
    refused(httpx.get(f"{service.url}/api/patients", params={"q": "Hartmann"}, headers={"Host": "evil.example"},
                      timeout=30), 403, "forbidden", "evil.example")
    for origin in ("http://evil.example", f"http://localhost:{int(port) + 1}", "null"):
        refused(httpx.post(f"{service.url}/api/runs", json=RUN, headers={"Origin": origin}, timeout=30),
                403, "forbidden", origin)
    assert no_runs(service.url)
    assert httpx.get(f"{service.url}/api/info", headers={"Origin": service.url}, timeout=30).status_code == 200
    for host in ("localhost", "127.0.0.1"):
        assert httpx.get(f"{service.url}/api/health", headers={"Host": f"{host}:{port}"}, timeout=30).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_writes_need_json(service: ServiceThread, content_type: str) -> None:
    response = httpx.post(f"{service.url}/api/runs", content=b'{"question": "x"}', timeout=30,
                          headers={"Content-Type": content_type})
    refused(response, 415, "unsupported_media_type", "application/json")
    assert no_runs(service.url)


def test_oversized_body_refused_before_reading_and_long_query_refused(service: ServiceThread) -> None:
    host, port = service.url.removeprefix("http://").split(":")
    head = (f"POST /api/runs HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {SERVE_MAX_BODY_BYTES + 1}\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())  # no body follows: a reply proves the length alone was refused
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.split(b" ", 2)[1] == b"413", reply
    refused(httpx.get(f"{service.url}/api/patients", params={"q": "x" * 17_000}, timeout=30), 414, "query_too_long")
    assert no_runs(service.url)


def test_with_a_token_the_guard_asks_for_it_and_the_ui_shell_stays_open(
        service_config: Callable[..., ServiceConfig]) -> None:
    token = "t0ken-for-the-guard-test-5678"
    with ServiceThread(service_config(token=token), ScriptedPolicy(read_write_answer)) as svc:
        missing = httpx.get(f"{svc.url}/api/runs", timeout=30)
        refused(missing, 401, "unauthorized", "Bearer")
        assert missing.headers["www-authenticate"] == 'Bearer realm="medagent"'
        assert httpx.get(f"{svc.url}/", timeout=30).status_code == 200
        assert httpx.get(f"{svc.url}/api/health", timeout=30).status_code == 200
        good = {"Authorization": f"Bearer {token}"}
        refused(httpx.post(f"{svc.url}/api/runs", json=RUN, headers={**good, "Origin": "http://evil.example"},
                           timeout=30), 403, "forbidden")
        assert httpx.get(f"{svc.url}/api/runs", headers=good, timeout=30).json()["runs"] == []


def test_beyond_loopback_any_host_name_is_served_with_the_token() -> None:
    """The bind rule's other side (unit, on the guard's settings): a token on a public bind serves any Host,
    while a loopback bind never does, token or not."""
    from medagent.request_guard import ServerSecurity

    public = ServerSecurity(token="x" * 16, loopback_hosts_only=False)
    local = ServerSecurity(token="x" * 16, loopback_hosts_only=True)
    assert public.host_allowed("ehr.hospital.example") and not local.host_allowed("ehr.hospital.example")
    assert local.host_allowed("127.0.0.1") and local.host_allowed("localhost")
