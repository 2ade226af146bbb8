"""Shared fixtures: one loaded Synthea database per session, copied for each real server process, and
the independent sekmet-fhir server loaded with the same bundles (for tests/fhir and tests/bench)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from medagent.bench.servers import template_path
from medagent.fhir.client import FhirClient
from medagent.fhir.server.process import EmbeddedServer
from medagent.fhir.server.serve import open_store
from medagent.tools.registry import Registry, default_registry
from tests.fhir.fhir_support import FhirTarget, SekmetServer, copy_sqlite, load_bundles


@pytest.fixture(scope="session")
def synthea_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding the 100 default patients (loaded once per test session)."""
    path = tmp_path_factory.mktemp("template") / "synthea.sqlite"
    store = open_store(path)
    store.checkpoint()
    store.close()
    return path


def copy_db(template: Path, target_dir: Path) -> Path:
    """A private copy of a loaded database, so a server can write without touching others."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / template.name
    shutil.copyfile(template, target)
    return target


@pytest.fixture(scope="session")
def bench_home(tmp_path_factory: pytest.TempPathFactory, synthea_db: Path) -> Path:
    """A MEDAGENT_HOME whose cached template database is the session's loaded copy (no second load)."""
    home = tmp_path_factory.mktemp("bench-home")
    target = template_path(home)
    target.parent.mkdir(parents=True)
    shutil.copyfile(synthea_db, target)
    return home


@pytest.fixture(scope="session")
def fhir_server(synthea_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real embedded server process (lenient, reset enabled) on a copy of the loaded database."""
    with EmbeddedServer(copy_db(synthea_db, tmp_path_factory.mktemp("server")), allow_reset=True) as server:
        yield server


def _sekmet_cache_key() -> str:
    from importlib.metadata import version

    from medagent.data import default_archive

    digest = hashlib.sha256(default_archive().read_bytes()).hexdigest()[:16]
    return f"sekmet-{version('sekmet-fhir')}-{digest}"


@pytest.fixture(scope="session")
def sekmet_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirTarget]:
    """A sekmet-fhir process holding the 100 default patients (the loaded database is cached in
    .pytest_cache; callers gate on ``sekmet_enabled()``)."""
    workdir = tmp_path_factory.mktemp("sekmet")
    db = workdir / "sekmet.db"
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache_dir = cache.mkdir("medagent-fhir") if cache is not None else None
    cached = cache_dir / f"{_sekmet_cache_key()}.db" if cache_dir else None
    if cached is not None and cached.exists():
        copy_sqlite(cached, db)
    with SekmetServer(workdir, db) as server:
        if cached is None or not cached.exists():
            load_bundles(server.base_url, headers={"X-Sekmet-Simulate": "off"})
            if cached is not None:
                copy_sqlite(db, cached)
        target = FhirTarget("sekmet", server.base_url)
        yield target
        target.close()


@pytest.fixture(scope="session")
def fhir_url(fhir_server: EmbeddedServer) -> str:
    return fhir_server.base_url


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The full tool registry (importing the tool modules registers them)."""
    return default_registry()


@pytest.fixture
async def client(fhir_url: str) -> AsyncIterator[FhirClient]:
    async with FhirClient(fhir_url) as fhir:
        yield fhir


@pytest.fixture
def clean_fhir(fhir_url: str) -> Iterator[str]:
    """For tests that write: the shared server is reset to its loaded snapshot afterwards."""
    yield fhir_url
    httpx.post(f"{fhir_url}/$reset", timeout=30).raise_for_status()
