"""Shared fixtures: one loaded Synthea database per session, copied for each real server process."""

from __future__ import annotations

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
