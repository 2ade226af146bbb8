"""Starting the embedded server: open the store, load the default patients once, serve with uvicorn."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from medagent.config import UserError
from medagent.fhir.server.app import create_app
from medagent.fhir.server.loading import load_into_store
from medagent.fhir.server.parent_watch import end_with_parent
from medagent.fhir.server.store import Store
from medagent.fhir.server.workers import (
    FACTORY,
    WORKER_SETTINGS_ENV,
    WorkerSettings,
    freeze_startup_objects,
)
from medagent.request_guard import ServerSecurity, check_bind

log = logging.getLogger("medagent.fhir.server")


def open_store(db_path: Path, *, load_default: bool = True, report: Callable[[str], None] = log.info) -> Store:
    """Open (or create) the database; an empty one gets the default patients and a snapshot."""
    store = Store(db_path)
    if load_default and store.is_empty():
        started = time.perf_counter()
        bundles, resources = load_into_store(store)
        seconds = time.perf_counter() - started
        store.snapshot()
        report(f"loaded {bundles} patient bundles ({resources} resources) in {seconds:.1f} s "
               f"({resources / seconds:,.0f} resources/s) into {db_path}")
    elif store.latest_snapshot() is None:
        store.snapshot()
    return store


def access_log_path(db_path: Path) -> Path:
    """Where a server on ``db_path`` appends its access log (next to the database)."""
    return db_path.with_suffix(".access.log")


def serve(db_path: Path, *, host: str = "127.0.0.1", port: int = 8321, strict: bool = False,
          allow_reset: bool = False, load_default: bool = True, report: Callable[[str], None] = log.info,
          token: str | None = None, allowed_hosts: list[str] | None = None, exit_with_parent: bool = False,
          query_seconds: float | None = None, workers: int = 1) -> None:
    """Serve until stopped. Beyond loopback a bearer ``token`` is required (and then checked on every
    request); ``exit_with_parent``: end when the process that started this one dies (bench runners);
    ``workers``: server processes accepting on the one port (:mod:`medagent.fhir.server.workers`)."""
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    try:
        check_bind(host, token)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if exit_with_parent:
        end_with_parent(os.getppid())
    store = open_store(db_path, load_default=load_default, report=report)
    if query_seconds is not None:
        store.query_seconds = query_seconds
    security = ServerSecurity(token=token, allowed_hosts=allowed_hosts or [],
                              access_log=str(access_log_path(db_path)))
    if workers > 1:  # each worker opens the database itself; this process only supervises them
        store.close()
        settings = WorkerSettings(db_path=db_path, strict=strict, allow_reset=allow_reset, security=security,
                                  query_seconds=query_seconds)
        os.environ[WORKER_SETTINGS_ENV] = settings.model_dump_json()
        report(f"FHIR R4 server at http://{host}:{port} ({workers} worker processes; db {db_path}; "
               f"access log {security.access_log})")
        uvicorn.run(FACTORY, factory=True, workers=workers, host=host, port=port, log_level="warning",
                    access_log=False)
        return
    app = create_app(store, strict=strict, allow_reset=allow_reset, security=security)
    freeze_startup_objects()
    report(f"FHIR R4 server at http://{host}:{port} (db {db_path}; access log {security.access_log})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
