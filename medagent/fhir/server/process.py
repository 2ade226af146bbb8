"""Running the embedded server as a real subprocess (tests, benchmarks, the runner, the CLI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from medagent.fhir.server.slots import slot_url

# the lean entry point: imports the server only, not the whole CLI (``medagent fhir serve`` takes the
# same options; ``tools/bench_runner.py --server-start`` times both)
SERVER_ENTRY: tuple[str, ...] = ("-m", "medagent.fhir.server")
CLI_ENTRY: tuple[str, ...] = ("-m", "medagent", "fhir", "serve")


class ServerStartError(RuntimeError):
    """The embedded server exited or did not answer /metadata in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """``with EmbeddedServer(db) as server: server.base_url`` — a real server process (``python -m medagent.fhir.server``,
    the options of ``medagent fhir serve``). With ``slots=N`` it serves N task databases over ``db_path`` (the
    template, read-only), slot ``n`` at ``server.slot_url(n)``, their files in ``slots_dir``.

    Without a ``port`` the server binds a free port itself and writes it to a file this class reads
    (``--port-file``): choosing a free port here and passing it on would race other processes for it."""

    def __init__(
        self,
        db_path: Path,
        *,
        strict: bool = False,
        allow_reset: bool = False,
        port: int | None = None,
        load_default: bool = True,
        startup_timeout: float = 300.0,
        exit_with_parent: bool = True,
        extra_args: list[str] | None = None,
        slots: int = 0,
        slots_dir: Path | None = None,
    ) -> None:
        self.db_path = db_path
        self.slots = slots
        self.slots_dir = slots_dir
        self.port = port  # None: the server's choice, known once started
        self.strict = strict
        self.allow_reset = allow_reset
        self.load_default = load_default
        self.startup_timeout = startup_timeout
        self.exit_with_parent = exit_with_parent  # the server ends when this process dies, SIGKILL included
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = (slots_dir / "server.log") if slots and slots_dir else db_path.with_suffix(".server.log")

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ServerStartError("the server has not started yet: its port is not known")
        return f"http://127.0.0.1:{self.port}"

    def slot_url(self, slot: int) -> str:
        """The FHIR base URL of one task database of a slot server."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} is not one of this server's {self.slots} slots")
        return slot_url(self.base_url, slot)

    def start(self) -> EmbeddedServer:
        port_file = None if self.port else self.log_path.with_suffix(".port")
        args = [sys.executable, *SERVER_ENTRY, "--db", str(self.db_path)]
        args += ["--port", str(self.port)] if self.port else ["--port-file", str(port_file)]
        args += ["--strict"] if self.strict else []
        args += ["--allow-reset"] if self.allow_reset else []
        args += [] if self.load_default else ["--no-load"]
        args += ["--exit-with-parent"] if self.exit_with_parent else []
        args += ["--slots", str(self.slots)] if self.slots else []
        args += ["--slots-dir", str(self.slots_dir)] if self.slots and self.slots_dir else []
        args += self.extra_args
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if port_file is not None:
            port_file.unlink(missing_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2) as probe:  # one client: making one costs tens of ms (its SSL context)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerStartError(
                        f"FHIR server exited ({self.process.returncode}): {self.log_path.read_text()[-2000:]}"
                    )
                if self.port is None and port_file is not None and port_file.exists():
                    self.port = int(port_file.read_text())
                try:
                    if self.port is not None and probe.get(self._ready_url).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise ServerStartError(f"FHIR server did not answer within {self.startup_timeout:.0f} s; log: {self.log_path}")

    @property
    def _ready_url(self) -> str:
        return f"{self.slot_url(0) if self.slots else self.base_url}/metadata"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
