"""Running the service: FHIR client + run manager + app under uvicorn, until stopped."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Self

import uvicorn
from pydantic import BaseModel, Field

from medagent.fhir.auth.backend_services import BackendServicesConfig
from medagent.fhir.auth.client_auth import bearer_auth
from medagent.fhir.client import FhirClient
from medagent.models.base import ModelBackend
from medagent.serve.app import create_app
from medagent.serve.auth import check_bind, is_loopback
from medagent.serve.cds_hooks import DEFAULT_BUDGET_SECONDS
from medagent.serve.cds_hooks.routes import CdsHooks
from medagent.serve.runs import open_run_manager
from medagent.serve.schemas import ServiceInfo
from medagent.serve.smart_launch import SmartAppConfig, SmartLaunch

log = logging.getLogger("medagent.serve")


def log_requests_to_stderr(level: int = logging.INFO) -> None:
    """Show the service's request lines (route, status, time, run id; never patient data) on stderr."""
    logger = logging.getLogger("medagent.serve")
    if not any(getattr(h, "medagent_serve", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        handler.medagent_serve = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)


class ServiceConfig(BaseModel):
    """How one ``medagent serve`` process runs (from the CLI flags and settings)."""

    fhir_url: str
    fhir_token: str | None = None
    backend_services: BackendServicesConfig | None = Field(
        None, description="SMART backend-services client of the FHIR server."
    )
    checkpoints: Path = Field(description="SQLite file of the agent's checkpointer (runs survive restarts).")
    host: str = "127.0.0.1"
    port: int = Field(8330, ge=0, le=65535)
    approval: str = Field("ask", pattern="^(ask|refuse|auto)$")
    token: str | None = Field(None, description="Bearer token the API requires (required beyond loopback).")
    max_steps: int = Field(12, ge=1)
    model_label: str = "embedded"
    smart: SmartAppConfig | None = Field(None, description="Also a SMART app: EHR and standalone launch at /launch.")
    cds_budget_seconds: float = Field(
        DEFAULT_BUDGET_SECONDS,
        gt=0,
        le=60,
        description="A CDS Hooks call answers within this many seconds or with no card.",
    )

    @property
    def cds_records(self) -> Path:
        """The CDS Hooks records (issued cards, feedback): beside the checkpoints."""
        return self.checkpoints.with_name("cds-hooks.sqlite")


class AgentService:
    """``await AgentService(config, backend).serve()`` serves until :meth:`stop` (or Ctrl-C)."""

    def __init__(self, config: ServiceConfig, backend: ModelBackend) -> None:
        check_bind(config.host, config.token)
        self.config = config
        self.backend = backend
        self._server: uvicorn.Server | None = None

    @property
    def started(self) -> bool:
        return bool(self._server and self._server.started)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if not self._server or not self._server.servers:
            return self.config.port
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def serve(self) -> None:
        from medagent.agent.state import (
            Limits,  # the agent extra is needed only to serve
        )

        config = self.config
        auth = bearer_auth(config.fhir_token, config.backend_services)
        async with FhirClient(config.fhir_url, auth=auth) as client:
            capability = await client.capabilities()
            software = capability.get("software", {})
            info = ServiceInfo(
                model=config.model_label,
                approval=config.approval,
                auth=config.token is not None,
                fhir=f"{software.get('name', 'FHIR server')} {software.get('version', '')}".strip(),
            )
            load = getattr(self.backend, "load", None)
            if load is not None:  # an in-process model loads before the first connection: a load under traffic
                log.info("loading the model before serving")  # starved the event loop (/api/info waited seconds)
                await load()
            async with open_run_manager(
                model=self.backend,
                client=client,
                checkpoints=config.checkpoints,
                approval=config.approval,  # type: ignore[arg-type]
                limits=Limits(max_steps=config.max_steps),
            ) as manager:
                smart = SmartLaunch(config.smart) if config.smart is not None else None
                cds = CdsHooks.open(config.cds_records, config.cds_budget_seconds)
                app = create_app(
                    manager, info=info, token=config.token, loopback=is_loopback(config.host), smart=smart, cds=cds
                )
                self._server = uvicorn.Server(
                    uvicorn.Config(
                        app,
                        host=config.host,
                        port=config.port,
                        log_level="warning",
                        access_log=False,
                        timeout_graceful_shutdown=5,
                    )
                )
                log.info("medagent serve at http://%s:%s (approval %s)", config.host, config.port, config.approval)
                try:
                    await self._server.serve()
                finally:
                    cds.records.close()
                    if smart is not None:
                        await smart.aclose()


class ServiceThread:
    """``with ServiceThread(config, backend) as svc: svc.url`` — the service on its own thread and event loop
    (for notebooks, benchmarks and tests; port 0 picks a free port)."""

    def __init__(
        self, config: ServiceConfig, backend: ModelBackend, *, startup_timeout: float = 60.0, stop_timeout: float = 30.0
    ) -> None:
        self.service = AgentService(config, backend)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.thread = threading.Thread(target=self._main, daemon=True, name="medagent-serve")
        self.error: BaseException | None = None
        self.url = ""

    def _main(self) -> None:
        try:
            asyncio.run(self.service.serve())
        except BaseException as exc:  # noqa: BLE001 - reported by __enter__
            self.error = exc

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.service.started:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"medagent serve did not start: {self.error!r}")
            if time.monotonic() > deadline:
                self.service.stop()
                raise RuntimeError(f"medagent serve did not start within {self.startup_timeout:.0f} s")
            time.sleep(0.05)
        self.url = f"http://{self.service.config.host}:{self.service.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.stop()
        self.thread.join(timeout=self.stop_timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"medagent serve did not stop within {self.stop_timeout:.0f} s")
