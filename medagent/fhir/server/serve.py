"""Starting the embedded server: open the store, load the default patients once, serve with uvicorn."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from medagent.config import Settings, UserError
from medagent.fhir.server.app import _load_searchable_models, create_app
from medagent.fhir.server.loading import load_into_store
from medagent.fhir.server.parent_watch import end_with_parent
from medagent.fhir.server.security import FhirServerSecurity
from medagent.fhir.server.slots import SlotStores
from medagent.fhir.server.smart_access import AccessTokenPolicy
from medagent.fhir.server.store import Store
from medagent.fhir.server.workers import FACTORY, WORKER_SETTINGS_ENV, WorkerSettings
from medagent.heap import freeze_startup_objects
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
        report(
            f"loaded {bundles} patient bundles ({resources} resources) in {seconds:.1f} s "
            f"({resources / seconds:,.0f} resources/s) into {db_path}"
        )
    elif store.latest_snapshot() is None:
        store.snapshot()
    return store


def access_log_path(db_path: Path) -> Path:
    """Where a server on ``db_path`` appends its access log (next to the database)."""
    return db_path.with_suffix(".access.log")


def default_slots_dir(db_path: Path) -> Path:
    """Where a slot server over ``db_path`` keeps its task databases by default (next to the database)."""
    return db_path.with_name(f"{db_path.stem}-slots")


def access_token_policy(settings: Settings) -> AccessTokenPolicy | None:
    """The SMART protection the settings ask for (None: off); an audience or JWKS without an issuer is a UserError."""
    if settings.fhir_server_issuer is None:
        if settings.fhir_server_audience or settings.fhir_server_jwks_url:
            raise UserError(
                "--smart-audience and --smart-jwks-url need --smart-issuer (MEDAGENT_FHIR_SERVER_ISSUER): "
                "the authorization server whose tokens this server accepts"
            )
        return None
    for name, url in (
        ("--smart-issuer", settings.fhir_server_issuer),
        ("--smart-audience", settings.fhir_server_audience),
        ("--smart-jwks-url", settings.fhir_server_jwks_url),
    ):
        if url is not None and not url.startswith(("http://", "https://")):
            raise UserError(f"{name} must be an http(s) URL, got {url!r}")
    return AccessTokenPolicy(
        issuer=settings.fhir_server_issuer,
        jwks_url=settings.fhir_server_jwks_url,
        audience=(settings.fhir_server_audience or settings.embedded_url).rstrip("/"),
        leeway_s=settings.fhir_server_leeway,
    )


def serve(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8321,
    strict: bool = False,
    allow_reset: bool = False,
    load_default: bool = True,
    report: Callable[[str], None] = log.info,
    token: str | None = None,
    allowed_hosts: list[str] | None = None,
    exit_with_parent: bool = False,
    query_seconds: float | None = None,
    workers: int = 1,
    access_tokens: AccessTokenPolicy | None = None,
    slots: int = 0,
    slots_dir: Path | None = None,
    port_file: Path | None = None,
) -> None:
    """Serve until stopped. Beyond loopback a bearer ``token`` (or ``access_tokens``) is required (and then checked
    on every request); ``exit_with_parent``: end when the process that started this one dies (bench runners);
    ``workers``: server processes accepting on the one port (:mod:`medagent.fhir.server.workers`);
    ``access_tokens``: a SMART protected resource server (:mod:`medagent.fhir.server.smart_access`);
    ``slots``: serve that many task databases over ``db_path`` instead of ``db_path`` itself, at
    ``/slots/{n}`` (:mod:`medagent.fhir.server.slots`; their files in ``slots_dir``); ``port_file``: listen
    on a free port the OS chooses (``port`` is ignored) and write its number there (:func:`listen`)."""
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if slots < 0:
        raise UserError(f"--slots must be at least 0, got {slots}")
    if slots and (workers > 1 or access_tokens is not None):
        raise UserError(
            "--slots serves task databases for scored runs: one process, loopback, no SMART tokens "
            "(not with --workers or --smart-issuer)"
        )
    try:
        check_bind(host, token, access_tokens=access_tokens is not None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if exit_with_parent:
        end_with_parent(os.getppid())
    sock = listen(host, 0 if port_file else port, port_file)
    port = sock.getsockname()[1]
    if slots:
        if not db_path.exists():  # an existing template is only ever read: slot servers may share it
            open_store(db_path, load_default=load_default, report=report).close()
        _serve_slots(
            db_path,
            slots,
            slots_dir or default_slots_dir(db_path),
            sock,
            strict=strict,
            allow_reset=allow_reset,
            report=report,
            token=token,
            allowed_hosts=allowed_hosts,
            query_seconds=query_seconds,
        )
        return
    store = open_store(db_path, load_default=load_default, report=report)
    if query_seconds is not None:
        store.query_seconds = query_seconds
    security = FhirServerSecurity(
        token=token,
        allowed_hosts=allowed_hosts or [],
        access_tokens=access_tokens,
        access_log=str(access_log_path(db_path)),
    )
    if workers > 1:  # each worker opens the database itself; this process only supervises them
        store.close()
        settings = WorkerSettings(
            db_path=db_path, strict=strict, allow_reset=allow_reset, security=security, query_seconds=query_seconds
        )
        os.environ[WORKER_SETTINGS_ENV] = settings.model_dump_json()
        report(
            f"FHIR R4 server at http://{host}:{port} ({workers} worker processes; db {db_path}; "
            f"access log {security.access_log})"
        )
        run_uvicorn(FACTORY, sock, workers=workers)
        return
    app = create_app(store, strict=strict, allow_reset=allow_reset, security=security)
    freeze_startup_objects()
    protection = f"; SMART access tokens from {access_tokens.issuer}" if access_tokens else ""
    report(f"FHIR R4 server at http://{host}:{port} (db {db_path}; access log {security.access_log}{protection})")
    run_uvicorn(app, sock)


def listen(host: str, port: int, port_file: Path | None) -> socket.socket:
    """The server's socket, bound here before anything else (port 0: a free one the OS chooses), its port written
    to ``port_file``: a parent that reads the port there reaches this server, never another process that took
    the same port between a look for a free one and the bind (two bench servers did, and shared one server)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc}") from None
    if port_file is not None:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(str(sock.getsockname()[1]))
        os.replace(partial, port_file)
    return sock


def run_uvicorn(app: Any, sock: socket.socket, *, workers: int = 1) -> None:
    """Serve ``app`` on the bound ``sock`` until stopped: in this process, or in ``workers`` processes (``app`` is
    then an app factory's import path, as uvicorn needs it)."""
    config = uvicorn.Config(app, factory=workers > 1, workers=workers, log_level="warning", access_log=False)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def _serve_slots(
    template: Path,
    count: int,
    folder: Path,
    sock: socket.socket,
    *,
    strict: bool,
    allow_reset: bool,
    report: Callable[[str], None],
    token: str | None,
    allowed_hosts: list[str] | None,
    query_seconds: float | None,
) -> None:
    """Serve ``count`` task databases over the loaded database ``template`` (read-only while they are served)."""
    started = time.perf_counter()
    try:
        slots = SlotStores(template, folder, count)
    except (ValueError, sqlite3.Error) as exc:
        raise UserError(f"--slots over {template}: {exc}") from None
    for slot in slots.stores:
        slot.query_seconds = query_seconds if query_seconds is not None else slot.query_seconds
    security = FhirServerSecurity(token=token, allowed_hosts=allowed_hosts or [], access_log=str(folder / "access.log"))
    app = create_app(slots, strict=strict, allow_reset=allow_reset, security=security)
    _load_searchable_models()  # here, not in the background: the tasks a slot server is started for come at once
    freeze_startup_objects()
    host, port = sock.getsockname()[:2]
    report(
        f"FHIR R4 server at http://{host}:{port}/slots/{{0..{count - 1}}}: {count} task databases over "
        f"{template}, made in {time.perf_counter() - started:.2f} s (in {folder}; access log "
        f"{security.access_log})"
    )
    run_uvicorn(app, sock)
