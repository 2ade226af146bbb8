"""A pool of embedded FHIR servers for scored runs: one per concurrent task, each on its own database copy.

Every server is a real ``medagent fhir serve --allow-reset`` process. The loaded database is
built once per data set and cached under MEDAGENT_HOME, then copied (a file copy, no reload).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from medagent.config import get_settings
from medagent.data import default_archive
from medagent.fhir.auth.client_auth import client_auth
from medagent.fhir.client import FhirClient
from medagent.fhir.server.process import EmbeddedServer
from medagent.fhir.server.serve import open_store


def template_path(home: Path) -> Path:
    """Where the loaded default database is cached: named by the data's digest, so new data rebuilds it."""
    digest = hashlib.sha256(default_archive().read_bytes()).hexdigest()[:12]
    return home / "templates" / f"synthea-{digest}.sqlite"


def template_db(home: Path) -> Path:
    """The loaded default database, built on first use and reused while the data is unchanged."""
    path = template_path(home)
    if not path.exists():
        partial = path.with_suffix(".partial")
        for stale in partial.parent.glob(partial.name + "*") if partial.parent.exists() else []:
            stale.unlink()
        store = open_store(partial)
        store.checkpoint()
        store.close()
        partial.replace(path)
    return path


class ClientLending:
    """One long-lived FHIR client per server (pooled connections), lent to one task at a time."""

    def __init__(self) -> None:
        self.clients: list[FhirClient] = []
        self._free: asyncio.Queue[FhirClient] = asyncio.Queue()

    def _lend(self, base_url: str, timeout: float, auth: httpx.Auth | None = None) -> None:
        client = FhirClient(base_url, timeout=timeout, auth=auth)
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


class ServerPool(ClientLending):
    """``async with ServerPool(n, workdir, home) as pool: async with pool.acquire() as client: ...``

    Each server comes with one long-lived FHIR client (pooled connections), lent with it.
    """

    def __init__(self, size: int, workdir: Path, home: Path) -> None:
        self.size = size
        self.workdir = workdir
        self.home = home
        self.servers: list[EmbeddedServer] = []
        super().__init__()

    async def __aenter__(self) -> ServerPool:
        template = await asyncio.to_thread(template_db, self.home)
        for index in range(self.size):
            folder = self.workdir / f"server-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            db = folder / "fhir.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            shutil.copyfile(template, db)
            self.servers.append(EmbeddedServer(db, allow_reset=True))
        try:
            await asyncio.gather(*(asyncio.to_thread(server.start) for server in self.servers))
        except BaseException:
            await self.__aexit__()
            raise
        for server in self.servers:
            self._lend(server.base_url, 60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close_clients()
        await asyncio.gather(*(asyncio.to_thread(server.stop) for server in self.servers))


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
