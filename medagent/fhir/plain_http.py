"""A lean HTTP/1.1 transport for :class:`~medagent.fhir.client.FhirClient` to a server on this machine over plain
``http://`` (the embedded FHIR server of a scored run): kept-alive asyncio streams, one request at a time each.

httpx's default transport (httpcore, h11, anyio) costs the client about as much per request as the request's
whole trip through the embedded server; a benchmark run's tasks make one or two requests per agent step, all
from one event loop, so that cost is paid by every task in flight. This transport keeps httpx's client (URLs,
headers, auth, redirects, content decoding, the same ``httpx.Response``) and replaces what is under it: the
request is written as bytes, the status line and headers are read in one call, the body by its
``Content-Length`` (or chunk by chunk, or to the end of the connection). Errors are httpx's own
(``ConnectError``, ``ReadError``, ``RemoteProtocolError``, the timeouts), so the client's retries behave the
same. No TLS, no proxies, no HTTP/2: for ``https://`` or a remote server the default transport is the right one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

__all__ = ["PlainHttpTransport"]

HEADER_LIMIT = 1 << 20  # bytes of a response's status line and headers
NO_BODY_STATUS = {204, 304}


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Idle and still open: the server has not closed it (its end is seen as EOF once the loop has read it)."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class PlainHttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=PlainHttpTransport())`` for ``http://`` servers (see the module docstring)."""

    def __init__(self, *, max_idle: int = 8) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"PlainHttpTransport speaks http:// only, not {request.url.scheme}://")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        head = _request_head(request, body)
        address = (request.url.host, request.url.port or 80)
        connection = self._take(address)
        if connection is not None:
            try:
                return await self._exchange(connection, address, request, head + body, timeouts)
            except _StaleConnection:
                pass  # closed by the server while idle, before it read a byte: send it on a new connection
        connection = await self._connect(address, request, timeouts.get("connect"))
        try:
            return await self._exchange(connection, address, request, head + body, timeouts)
        except _StaleConnection as exc:
            raise httpx.RemoteProtocolError(
                "the server closed the connection without a response", request=request
            ) from exc

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take(self, address: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(address, [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def _give_back(self, address: tuple[str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(address, [])
        if len(idle) < self.max_idle and connection.usable():
            idle.append(connection)
        else:
            connection.close()

    @staticmethod
    async def _connect(address: tuple[str, int], request: httpx.Request, timeout: float | None) -> _Connection:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(*address, limit=HEADER_LIMIT)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {address[0]}:{address[1]} timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {address[0]}:{address[1]}: {exc}", request=request) from exc
        return _Connection(reader, writer)

    async def _exchange(
        self,
        connection: _Connection,
        address: tuple[str, int],
        request: httpx.Request,
        data: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        """Send the request and read the whole response; the connection goes back to the pool, or is closed."""
        kept = False
        try:
            try:
                connection.writer.write(data)
                async with asyncio.timeout(timeouts.get("write")):
                    await connection.writer.drain()
            except TimeoutError as exc:
                raise httpx.WriteTimeout("sending the request timed out", request=request) from exc
            except OSError as exc:
                raise _StaleConnection() from exc
            try:
                async with asyncio.timeout(timeouts.get("read")):
                    response, keep_alive = await _read_response(connection.reader, request)
            except TimeoutError as exc:
                raise httpx.ReadTimeout("reading the response timed out", request=request) from exc
            if keep_alive:
                self._give_back(address, connection)
                kept = True
            return response
        finally:
            if not kept:
                connection.close()


class _StaleConnection(Exception):
    """The connection failed before a byte of the response arrived (the server had closed it)."""


def _request_head(request: httpx.Request, body: bytes) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    names = set()
    for name, value in request.headers.raw:
        names.add(name.lower())
        lines.append(name + b": " + value)
    if body and b"content-length" not in names:
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_response(reader: asyncio.StreamReader, request: httpx.Request) -> tuple[httpx.Response, bool]:
    """The response (its body read whole) and whether the connection may carry another request."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _StaleConnection() from exc
        raise httpx.RemoteProtocolError("the server closed the connection mid-response", request=request) from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx.RemoteProtocolError("response headers too large", request=request) from exc
    except OSError as exc:
        raise _StaleConnection() from exc
    status_line, *header_lines = raw[:-4].split(b"\r\n")
    try:
        version, status_text, *reason = status_line.split(b" ", 2)
        status = int(status_text)
    except ValueError as exc:
        raise httpx.RemoteProtocolError(f"bad status line {status_line[:80]!r}", request=request) from exc
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}", request=request)
        headers.append((name.strip(), value.strip()))
    fields = {name.lower(): value for name, value in headers}
    connection = fields.get(b"connection", b"").lower()
    keep_alive = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
    try:
        if request.method == "HEAD" or status in NO_BODY_STATUS or 100 <= status < 200:
            body = b""
        elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            body = await _read_chunked(reader)
        elif b"content-length" in fields:
            body = await reader.readexactly(int(fields[b"content-length"]))
        else:
            body, keep_alive = await reader.read(), False
    except (asyncio.IncompleteReadError, OSError, ValueError) as exc:
        raise httpx.ReadError(f"reading the response body failed: {exc!r}", request=request) from exc
    extensions: dict[str, Any] = {"http_version": version, "reason_phrase": reason[0] if reason else b""}
    response = httpx.Response(
        status, headers=headers, stream=httpx.ByteStream(body), extensions=extensions, request=request
    )
    return response, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, until the empty line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
