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
    the options of ``medagent fhir serve``)."""

    def __init__(self, db_path: Path, *, strict: bool = False, allow_reset: bool = False, port: int | None = None,
                 load_default: bool = True, startup_timeout: float = 300.0, exit_with_parent: bool = True,
                 extra_args: list[str] | None = None) -> None:
        self.db_path = db_path
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.strict = strict
        self.allow_reset = allow_reset
        self.load_default = load_default
        self.startup_timeout = startup_timeout
        self.exit_with_parent = exit_with_parent  # the server ends when this process dies, SIGKILL included
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = db_path.with_suffix(".server.log")

    def start(self) -> EmbeddedServer:
        args = [sys.executable, *SERVER_ENTRY, "--port", str(self.port), "--db", str(self.db_path)]
        args += ["--strict"] if self.strict else []
        args += ["--allow-reset"] if self.allow_reset else []
        args += [] if self.load_default else ["--no-load"]
        args += ["--exit-with-parent"] if self.exit_with_parent else []
        args += self.extra_args
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"FHIR server exited ({self.process.returncode}): {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/metadata", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"FHIR server did not answer within {self.startup_timeout:.0f} s; log: {self.log_path}")

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

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
