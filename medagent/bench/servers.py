"""The embedded FHIR servers of scored runs: one task database ("slot") per concurrent task, all of them served
by one real ``medagent fhir serve --allow-reset --slots N`` process over the loaded database.

The loaded database (the template) is built once per data set and cached under MEDAGENT_HOME; a slot is made
from it without copying it and reset to it in milliseconds (:mod:`medagent.fhir.server.slots`).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from medagent.config import get_settings
from medagent.data import default_archive
from medagent.fhir.auth.client_auth import client_auth
from medagent.fhir.client import FhirClient
from medagent.fhir.server.process import EmbeddedServer
from medagent.fhir.server.serve import open_store
from medagent.fhir.server.store import SCHEMA_VERSION


def template_path(home: Path) -> Path:
    """Where the loaded default database is cached: named by the data's digest, so new data rebuilds it."""
    digest = hashlib.sha256(default_archive().read_bytes()).hexdigest()[:12]
    return home / "templates" / f"synthea-{digest}.sqlite"


def template_db(home: Path) -> Path:
    """The loaded default database, built on first use and reused while the data is unchanged (one built by
    an older store is brought up to date once)."""
    path = template_path(home)
    if path.exists() and _schema_version(path) < SCHEMA_VERSION:
        store = open_store(path)
        store.checkpoint()
        store.close()
    if not path.exists():
        partial = path.with_suffix(".partial")
        for stale in partial.parent.glob(partial.name + "*") if partial.parent.exists() else []:
            stale.unlink()
        store = open_store(partial)
        store.checkpoint()
        store.close()
        partial.replace(path)
    return path


def _schema_version(path: Path) -> int:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


class ClientLending:
    """One long-lived FHIR client per server (pooled connections), lent to one task at a time."""

    def __init__(self) -> None:
        self.clients: list[FhirClient] = []
        self._free: asyncio.Queue[FhirClient] = asyncio.Queue()

    def _lend(
        self,
        base_url: str,
        timeout: float,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        client = FhirClient(base_url, timeout=timeout, auth=auth, transport=transport)
        self.clients.append(client)
        self._free.put_nowait(client)

    async def _close_clients(self) -> None:
        for client in self.clients:
            await client.aclose()

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FhirClient]:
        client = await self._free.get()
        try:
            yield client
        finally:
            self._free.put_nowait(client)


@dataclass(frozen=True)
class SlotServer:
    """One task database, lent as a server of its own: its FHIR base URL and the process serving it."""

    base_url: str
    process: subprocess.Popen[bytes]


class ServerPool(ClientLending):
    """``async with ServerPool(n, workdir, home) as pool: async with pool.acquire() as client: ...``

    ``n`` task databases served by one embedded server process (``pool.servers``: one :class:`SlotServer` each);
    each comes with one long-lived FHIR client (pooled connections), lent with it.
    """

    def __init__(self, size: int, workdir: Path, home: Path) -> None:
        self.size = size
        self.workdir = workdir
        self.home = home
        self.server: EmbeddedServer | None = None
        self.servers: list[SlotServer] = []
        super().__init__()

    async def __aenter__(self) -> ServerPool:
        template = await asyncio.to_thread(template_db, self.home)
        self.server = EmbeddedServer(template, allow_reset=True, slots=self.size, slots_dir=self.workdir)
        try:
            await asyncio.to_thread(self.server.start)
        except BaseException:
            await self.__aexit__()
            raise
        assert self.server.process is not None
        self.servers = [SlotServer(self.server.slot_url(n), self.server.process) for n in range(self.size)]
        for server in self.servers:
            self._lend(server.base_url, 60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close_clients()
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)


class ExternalServers(ClientLending):
    """The same lending interface over standard FHIR servers the caller runs (``bench run --fhir-url``):
    each base URL serves one task at a time."""

    def __init__(self, urls: list[str], *, timeout: float = 60) -> None:
        if not urls:
            raise ValueError("ExternalServers needs at least one FHIR base URL")
        self.urls = urls
        self.timeout = timeout
        super().__init__()

    async def __aenter__(self) -> ExternalServers:
        settings = get_settings()
        for url in self.urls:  # a protected server: the settings' token or backend-services client
            self._lend(url, self.timeout, client_auth(settings, url))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close_clients()
