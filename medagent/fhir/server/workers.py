"""Several server processes on one port (``--workers N``) over one SQLite database.

``uvicorn`` binds the socket once and starts N worker processes that accept from it; each worker
builds its own app here (its own store connections, thread pool and access-log handle) from the
settings the starting process leaves in ``WORKER_SETTINGS_ENV``.

The server keeps no state in a process that another worker would need: resources, versions,
history, the change log behind snapshot/reset/$diff and the audit trail all live in the database;
writes are serialized across processes by SQLite itself (every write transaction is ``BEGIN
IMMEDIATE``, and ``busy_timeout`` makes a second writer wait for the first), so a conditional
create still creates once and versions still count up one by one; a committed write is seen by the
next read in any worker (WAL: each read sees the last commit). What is per process (the search
SQL's thread-local connections, the base-URL memo, the validation pool) holds no data.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel
from starlette.applications import Starlette

from medagent.fhir.server.app import create_app
from medagent.fhir.server.parent_watch import end_with_parent
from medagent.fhir.server.security import FhirServerSecurity
from medagent.fhir.server.store import Store
from medagent.heap import freeze_startup_objects

WORKER_SETTINGS_ENV = "MEDAGENT_FHIR_WORKER_SETTINGS"
FACTORY = "medagent.fhir.server.workers:app_from_environment"


class WorkerSettings(BaseModel):
    """What each worker process needs to build the same app as the others."""

    db_path: Path
    strict: bool
    allow_reset: bool
    security: FhirServerSecurity
    query_seconds: float | None = None


def app_from_environment() -> Starlette:
    """uvicorn's app factory in each worker: the store (already loaded by the starting process) and the app."""
    raw = os.environ.get(WORKER_SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{WORKER_SETTINGS_ENV} is not set: worker processes are started by serve(workers=N)")
    settings = WorkerSettings.model_validate_json(raw)
    end_with_parent(os.getppid())  # a worker never outlives the process that supervises it
    store = Store(settings.db_path)
    if settings.query_seconds is not None:
        store.query_seconds = settings.query_seconds
    app = create_app(store, strict=settings.strict, allow_reset=settings.allow_reset, security=settings.security)
    freeze_startup_objects()
    return app
