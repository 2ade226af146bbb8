"""Loading bundles straight into the embedded server's store (first start, no HTTP round trip)."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from medagent.data import default_archive, iter_bundles
from medagent.fhir.bundles import as_upsert_transaction
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.store import Store
from medagent.fhir.server.transaction import Transaction

# sha256 of medagent/data/synthea/patients.zip whose every resource passes validate_resource
# (checked by tests/fhir/test_ingest.py::test_packaged_archive_is_the_validated_one): the
# packaged patients skip re-validation on first start; any other data, or a changed archive, is validated.
VALIDATED_ARCHIVE_SHA256 = "f69907d8b03875c8acf461f0e9ac62c1105bc40f8a80b738c704315776b3e044"


@cache
def archive_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_validated_archive(sources: Iterable[Path] | None) -> bool:
    """True when loading exactly the packaged archive, and its content is the validated one."""
    return sources is None and archive_sha256(default_archive()) == VALIDATED_ARCHIVE_SHA256


def load_into_store(store: Store, sources: Iterable[Path] | None = None) -> tuple[int, int]:
    """Load bundles (default: the packaged patients) as upsert transactions; (bundles, resources).

    All bundles go in one write transaction: all or none (a bad bundle anywhere leaves the store as
    it was), and one commit instead of one per bundle, which took about a third of the load time
    (tools/bench_fhir.py). Pipelined: the next bundle validates in worker processes while this one is
    written. The cyclic garbage collector is paused meanwhile: parsed JSON holds no cycles, and its
    passes over the growing heap cost about a quarter of the load time.
    """
    sources = list(sources) if sources is not None else None
    trusted = is_validated_archive(sources)
    bundles = resources = 0
    pending: tuple[str, Transaction] | None = None
    collecting = gc.isenabled()
    gc.disable()
    try:
        with store.transaction():
            for name, bundle in iter_bundles(sources):
                with _named(name):
                    upcoming = (name, Transaction(as_upsert_transaction(bundle)["entry"], trusted=trusted))
                if pending is not None:
                    resources += _write(store, *pending)
                    bundles += 1
                pending = upcoming
            if pending is not None:
                resources += _write(store, *pending)
                bundles += 1
    finally:
        if collecting:
            gc.enable()
    return bundles, resources


def _write(store: Store, name: str, transaction: Transaction) -> int:
    with _named(name):
        transaction.commit(store, _no_conditional)
    return transaction.resources


@contextmanager
def _named(name: str) -> Iterator[None]:
    """Errors name the bundle file they come from."""
    try:
        yield
    except FhirError as exc:
        raise FhirError(exc.status, f"{name}: {exc.diagnostics}", code=exc.code, expression=exc.expression) from None


def _no_conditional(resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    return []
