"""The lean HTTP/1.1 transport answers as httpx's own does: against the embedded server (reads, searches, errors,
writes), and against a small server of this test's own for what the embedded one never sends (chunked bodies with
trailers, a body ended by closing the connection, gzip, a kept-alive connection the server closed while idle)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest

from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirNotFound
from medagent.fhir.plain_http import PlainHttpTransport


async def test_same_answers_as_the_default_transport_from_the_embedded_server(fhir_url: str) -> None:
    async with FhirClient(fhir_url) as default, FhirClient(fhir_url, transport=PlainHttpTransport()) as lean:
        bundle = await default.search_page("Patient", {"_count": "3"})
        patient = bundle["entry"][0]["resource"]
        for client in (default, lean):
            assert await client.read_json("Patient", patient["id"]) == patient
            page = await client.search_page("Condition", {"patient": patient["id"], "_count": "5"})
            assert page["resourceType"] == "Bundle" and page["type"] == "searchset"
        entries = [(await c.search_page("Patient", {"_count": "3"}))["entry"] for c in (default, lean)]
        assert entries[0] == entries[1]  # the bundle's own id and time differ per request
        with pytest.raises(FhirNotFound):
            await lean.read_json("Patient", "no-such-patient-here")
        for _ in range(20):  # one kept-alive connection carries them all
            assert (await lean.read_json("Patient", patient["id"]))["id"] == patient["id"]


@pytest.fixture
async def toy_server() -> AsyncIterator[tuple[str, list[int]]]:
    """An HTTP/1.1 server whose answer is chosen by the request path; records each new connection."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1]
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
                    0,
                )
                body = await reader.readexactly(length)
                if path == b"/chunked":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                    )
                elif path == b"/close":
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end")
                    await writer.drain()
                    writer.close()
                    return
                elif path == b"/gzip":
                    packed = gzip.compress(b'{"ok": true}')
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed))
                    writer.write(packed)
                elif path == b"/echo":
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                elif path == b"/drop-after":  # answers, then closes the kept-alive connection while it is idle
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", connections
        server.close()


async def test_bodies_however_the_server_ends_them(toy_server: tuple[str, list[int]]) -> None:
    url, connections = toy_server
    async with httpx.AsyncClient(base_url=url, transport=PlainHttpTransport()) as client:
        assert (await client.get("/chunked")).content == b"hello, world"
        assert (await client.get("/gzip")).json() == {"ok": True}  # decoded by httpx, as with its own transport
        echoed = await client.post("/echo", content=b'{"a": 1}')
        assert (echoed.status_code, echoed.reason_phrase, echoed.content) == (201, "Created", b'{"a": 1}')
        assert (await client.get("/missing")).status_code == 404
        assert len(connections) == 1  # all of them on one kept-alive connection
        assert (await client.get("/close")).content == b"to the end"
        assert (await client.get("/chunked")).content == b"hello, world"
        assert len(connections) == 2  # a new one after the server closed the first


async def test_a_connection_the_server_closed_while_idle_is_not_used(toy_server: tuple[str, list[int]]) -> None:
    url, connections = toy_server
    async with httpx.AsyncClient(base_url=url, transport=PlainHttpTransport()) as client:
        assert (await client.get("/drop-after")).content == b"ok"
        await asyncio.sleep(0.05)  # the server's close reaches this side
        assert (await client.post("/echo", content=b"again")).content == b"again"
        assert len(connections) == 2
        # at once: the close may not have been read yet; then the write or the read on that connection fails before
        # a byte of the response, and the request goes again on a new one
        assert (await client.get("/drop-after")).content == b"ok"
        assert (await client.post("/echo", content=b"once more")).content == b"once more"
        assert len(connections) == 3  # the second /drop-after went on the kept-alive /echo connection


async def test_transport_errors_are_httpx_errors() -> None:
    async with httpx.AsyncClient(transport=PlainHttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")  # the discard port: nothing listens
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("https://127.0.0.1:9/")
