"""FHIR server targets for the conformance suite: each test taking ``fhir`` runs once per server.

Servers (all real processes spoken to over HTTP):

* ``embedded`` — always: the shared ``fhir_server`` from tests/conftest.py (lenient, --allow-reset).
* ``external`` — when ``MEDAGENT_FHIR_TEST_URL`` is set: any FHIR R4 server already holding the
  100 default patients (ids kept, e.g. loaded with ``medagent fhir load --server URL``).
* ``sekmet`` — when ``MEDAGENT_TEST_SEKMET=1`` or in CI (``CI=true``): the independent
  ``sekmet-fhir`` server from PyPI, started here and loaded over its transaction endpoint with the
  same bundles (first load ~1 min; the loaded database is cached in .pytest_cache); the
  ``sekmet_target`` fixture lives in tests/conftest.py (tests/bench scores on it too).

``MEDAGENT_FHIR_TEST_SERVERS=embedded,sekmet`` picks the servers explicitly.

A test module may declare known deviations of a server from the spec as a dict named
``<SERVER>_DEVIATIONS`` (e.g. ``SEKMET_DEVIATIONS``) mapping ``test_name`` or
``test_name[case-id]`` (the id without the server part) to a reason: those cases are marked
``xfail(strict=True)`` for that server only, so a fixed deviation shows up as XPASS -> failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir_support import Cleanup, FhirTarget, sekmet_enabled

SERVERS_ENV = "MEDAGENT_FHIR_TEST_SERVERS"
URL_ENV = "MEDAGENT_FHIR_TEST_URL"


def selected_servers() -> list[str]:
    explicit = os.environ.get(SERVERS_ENV, "").strip()
    if explicit:
        return [name.strip() for name in explicit.split(",") if name.strip()]
    names = ["embedded"]
    if os.environ.get(URL_ENV):
        names.append("external")
    if sekmet_enabled():
        names.append("sekmet")
    return names


@pytest.fixture(scope="session")
def embedded_target(fhir_server: Any) -> Iterator[FhirTarget]:
    target = FhirTarget("embedded", fhir_server.base_url, can_reset=True)
    yield target
    target.close()


@pytest.fixture(scope="session")
def embedded_strict_server(synthea_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second embedded server: ``--strict``, without ``--allow-reset``, on a copy of the loaded data."""
    from medagent.fhir.server.process import EmbeddedServer

    folder = tmp_path_factory.mktemp("strict-server")
    shutil.copyfile(synthea_db, folder / synthea_db.name)
    with EmbeddedServer(folder / synthea_db.name, strict=True, allow_reset=False) as server:
        yield server


@pytest.fixture(scope="session")
def external_target() -> Iterator[FhirTarget]:
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.skip(f"{URL_ENV} is not set")
    target = FhirTarget("external", url)
    yield target
    target.close()


@pytest.fixture(scope="session")
def fhir(request: pytest.FixtureRequest) -> FhirTarget:
    """The server under test (parametrized over ``selected_servers()``)."""
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture(scope="session")
def strict_fhir(fhir: FhirTarget, request: pytest.FixtureRequest) -> Iterator[FhirTarget]:
    """The same server in strict search mode: for the embedded server its own ``--strict`` process,
    elsewhere the spec's ``Prefer: handling=strict`` request header."""
    if fhir.name == "embedded":
        server = request.getfixturevalue("embedded_strict_server")
        target = FhirTarget("embedded-strict", server.base_url)
    else:
        target = FhirTarget(f"{fhir.name}-strict", fhir.base_url, headers={"Prefer": "handling=strict"})
    yield target
    target.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fhir" in metafunc.fixturenames:
        names = selected_servers()
        metafunc.parametrize("fhir", names, indirect=True, ids=names, scope="session")


@pytest.fixture
def cleanup(fhir: FhirTarget) -> Iterator[Cleanup]:
    tracker = Cleanup(fhir)
    yield tracker
    tracker.run()


# --------------------------------------------------------------------------------------------
# documented deviations -> strict xfail for that server
# --------------------------------------------------------------------------------------------

def _case_key(item: pytest.Item, server: str) -> tuple[str, str]:
    callspec = item.callspec  # type: ignore[attr-defined]
    parts = callspec.id.split("-")
    if server in parts:
        parts.remove(server)
    rest = "-".join(parts)
    name = item.originalname  # type: ignore[attr-defined]
    return name, f"{name}[{rest}]" if rest else name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "fhir" not in callspec.params:
            continue
        server = callspec.params["fhir"]
        if server in ("sekmet", "external"):
            item.add_marker(pytest.mark.external)
        if server == "sekmet":
            item.add_marker(pytest.mark.slow)
        deviations = getattr(item.module, f"{server.upper()}_DEVIATIONS", None)  # type: ignore[attr-defined]
        if not deviations:
            continue
        name, full = _case_key(item, server)
        reason = deviations.get(full) or deviations.get(name)
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{server} known deviation: {reason}"))
