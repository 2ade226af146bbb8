"""Loading bundles straight into the embedded server's store (first start, no HTTP round trip)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from medagent.data import iter_bundles
from medagent.fhir.bundles import as_upsert_transaction
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.store import Store
from medagent.fhir.server.transaction import (
    Entry,
    execute_transaction,
    plan_transaction,
    raise_first_invalid,
    start_validation,
)
from medagent.fhir.server.validation import PendingValidation


def load_into_store(store: Store, sources: Iterable[Path] | None = None) -> tuple[int, int]:
    """Load bundles (default: the packaged patients) as upsert transactions; (bundles, resources).

    Pipelined: the next bundle validates in worker processes while this one is written.
    """
    bundles = resources = 0
    pending: tuple[str, list[Entry], PendingValidation] | None = None
    for name, bundle in iter_bundles(sources):
        plans = plan_transaction(as_upsert_transaction(bundle)["entry"])
        upcoming = (name, plans, start_validation(plans))
        if pending is not None:
            resources += _write(store, *pending)
            bundles += 1
        pending = upcoming
    if pending is not None:
        resources += _write(store, *pending)
        bundles += 1
    return bundles, resources


def _write(store: Store, name: str, plans: list[Entry], validation: PendingValidation) -> int:
    try:
        raise_first_invalid(plans, validation.result())
    except FhirError as exc:
        raise FhirError(exc.status, f"{name}: {exc.diagnostics}", code=exc.code, expression=exc.expression) from None
    execute_transaction(store, plans, _no_conditional)
    return sum(1 for plan in plans if "resource" in plan)


def _no_conditional(resource_type: str, params: list[tuple[str, str]]) -> list[dict]:
    return []
