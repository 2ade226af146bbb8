"""The MCP server answers the official ``mcp`` SDK client over stdio (``medagent mcp``) and streamable HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tools_expect import PATIENT

from medagent.tools import default_registry

mcp = pytest.importorskip("mcp")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

NOW = "2019-05-02T10:15:00+00:00"


def _tool_fields(tool: Any) -> tuple[dict[str, Any], Any]:
    schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None)
    return schema, tool.annotations


def _hint(annotations: Any, name: str) -> Any:
    snake = {"readOnlyHint": "read_only_hint", "destructiveHint": "destructive_hint", "idempotentHint": "idempotent_hint"}
    return getattr(annotations, snake[name], None) if hasattr(annotations, snake[name]) else getattr(annotations, name)


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


async def _exercise(session: Any, *, writes_allowed: bool) -> None:
    await session.initialize()
    listed = (await session.list_tools()).tools
    registry = default_registry()
    assert [t.name for t in listed] == registry.names
    for tool in listed:
        schema, annotations = _tool_fields(tool)
        item = registry[tool.name]
        assert schema == item.parameters() and tool.description == item.description
        assert _hint(annotations, "readOnlyHint") is (not item.writes)
        assert _hint(annotations, "destructiveHint") is item.destructive
        assert _hint(annotations, "idempotentHint") is item.idempotent
    found = await session.call_tool("find_patients", {"name": "Hartmann"})
    assert not _is_error(found)
    assert "Adalberto Hartmann" in found.content[0].text and f"Patient/{PATIENT}" in found.content[0].text
    structured = getattr(found, "structured_content", None) or getattr(found, "structuredContent", None)
    assert structured["references"] == [f"Patient/{PATIENT}"] and structured["rows"][0]["age"] == 69
    bad = await session.call_tool("search_observations", {"patient": PATIENT, "since": "2019-02-30"})
    assert _is_error(bad) and "February 2019 has 28 days" in bad.content[0].text
    write = await session.call_tool("record_vital_sign", {"patient": PATIENT, "vital": "heart_rate", "value": 70})
    if writes_allowed:
        assert not _is_error(write) and write.content[0].text.startswith("recorded Observation/")
    else:
        assert _is_error(write) and "refused: read-only mode" in write.content[0].text


async def test_stdio_server_lists_and_calls_tools(fhir_url: str) -> None:
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "medagent", "mcp", "--fhir-url", fhir_url, "--now", NOW])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await _exercise(session, writes_allowed=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(clean_fhir: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "medagent", "mcp", "--transport", "http", "--port", str(port), "--fhir-url", clean_fhir,
         "--now", NOW, "--allow-writes", "--actor", "mcp-test"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"MCP server exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_streamable_http_server_lists_and_calls_tools(http_server: str, clean_fhir: str) -> None:
    from mcp.client import streamable_http

    connect = getattr(streamable_http, "streamable_http_client", None) or streamable_http.streamablehttp_client
    async with connect(http_server) as streams, ClientSession(streams[0], streams[1]) as session:
        await _exercise(session, writes_allowed=True)
    changes = httpx.get(f"{clean_fhir}/$diff", timeout=30).json()["changes"]
    assert len(changes) == 1 and changes[0]["resourceType"] == "Observation"
    tags = {t["system"]: t["code"] for t in changes[0]["after"]["meta"]["tag"]}
    assert tags["urn:medagent:actor"] == "mcp-test"
    assert changes[0]["after"]["effectiveDateTime"] == NOW, "the server's --now, not the wall clock"
