"""Starting the embedded server: open the store, load the default patients once, serve with uvicorn."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from medagent.config import Settings, UserError
from medagent.fhir.server.app import create_app
from medagent.fhir.server.loading import load_into_store
from medagent.fhir.server.parent_watch import end_with_parent
from medagent.fhir.server.security import FhirServerSecurity
from medagent.fhir.server.smart_access import AccessTokenPolicy
from medagent.fhir.server.store import Store
from medagent.fhir.server.workers import (
    FACTORY,
    WORKER_SETTINGS_ENV,
    WorkerSettings,
    freeze_startup_objects,
)
from medagent.request_guard import check_bind

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


def access_token_policy(settings: Settings) -> AccessTokenPolicy | None:
    """The SMART protection the settings ask for (None: off); an audience or JWKS without an issuer is a UserError."""
    if settings.fhir_server_issuer is None:
        if settings.fhir_server_audience or settings.fhir_server_jwks_url:
            raise UserError("--smart-audience and --smart-jwks-url need --smart-issuer (MEDAGENT_FHIR_SERVER_ISSUER): "
                            "the authorization server whose tokens this server accepts")
        return None
    for name, url in (("--smart-issuer", settings.fhir_server_issuer), ("--smart-audience", settings.fhir_server_audience),
                      ("--smart-jwks-url", settings.fhir_server_jwks_url)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise UserError(f"{name} must be an http(s) URL, got {url!r}")
    return AccessTokenPolicy(issuer=settings.fhir_server_issuer, jwks_url=settings.fhir_server_jwks_url,
                             audience=(settings.fhir_server_audience or settings.embedded_url).rstrip("/"),
                             leeway_s=settings.fhir_server_leeway)


def serve(db_path: Path, *, host: str = "127.0.0.1", port: int = 8321, strict: bool = False,
          allow_reset: bool = False, load_default: bool = True, report: Callable[[str], None] = log.info,
          token: str | None = None, allowed_hosts: list[str] | None = None, exit_with_parent: bool = False,
          query_seconds: float | None = None, workers: int = 1, access_tokens: AccessTokenPolicy | None = None) -> None:
    """Serve until stopped. Beyond loopback a bearer ``token`` (or ``access_tokens``) is required (and then checked
    on every request); ``exit_with_parent``: end when the process that started this one dies (bench runners);
    ``workers``: server processes accepting on the one port (:mod:`medagent.fhir.server.workers`);
    ``access_tokens``: a SMART protected resource server (:mod:`medagent.fhir.server.smart_access`)."""
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    try:
        check_bind(host, token, access_tokens=access_tokens is not None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if exit_with_parent:
        end_with_parent(os.getppid())
    store = open_store(db_path, load_default=load_default, report=report)
    if query_seconds is not None:
        store.query_seconds = query_seconds
    security = FhirServerSecurity(token=token, allowed_hosts=allowed_hosts or [], access_tokens=access_tokens,
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
    protection = f"; SMART access tokens from {access_tokens.issuer}" if access_tokens else ""
    report(f"FHIR R4 server at http://{host}:{port} (db {db_path}; access log {security.access_log}{protection})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
