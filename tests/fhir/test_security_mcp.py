"""Issue 17: the MCP HTTP server refuses DNS rebinding and cross-site requests (a real `medagent mcp`
process on 127.0.0.1, tools reading the shared embedded FHIR server)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from medagent.fhir.server.process import free_port

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}}
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def mcp_port(fhir_server: Any) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "medagent", "mcp", "--transport", "http", "--port", str(port),
                                "--fhir-url", fhir_server.base_url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
            break
        except httpx.HTTPError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.3)
    yield port
    process.terminate()
    process.wait(timeout=20)


def initialize(port: int, **headers: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers={**HEADERS, **headers}, timeout=30)


def test_same_origin_session_is_served(mcp_port: int) -> None:
    assert initialize(mcp_port).status_code == 200
    assert initialize(mcp_port, Origin=f"http://127.0.0.1:{mcp_port}").status_code == 200


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example"},
    {"Host": "evil.example:80"},
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost:1234"},      # another local port is another origin
    {"Origin": "null"},
])
def test_rebinding_and_cross_origin_get_no_session(mcp_port: int, headers: dict[str, str]) -> None:
    if "Origin" in headers and headers["Origin"] == "http://localhost:1234" and mcp_port == 1234:
        pytest.skip("the probe port collides with the server's")
    response = initialize(mcp_port, **headers)
    assert response.status_code == 403, response.text
    assert "mcp-session-id" not in {k.lower() for k in response.headers}


def test_mcp_refuses_a_public_bind_without_token(fhir_server: Any) -> None:
    result = subprocess.run([sys.executable, "-m", "medagent", "mcp", "--transport", "http", "--host", "0.0.0.0",
                             "--port", str(free_port()), "--fhir-url", fhir_server.base_url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "token" in result.stderr
