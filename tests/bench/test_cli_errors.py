"""The CLI reports a user's mistake in one line with exit code 2, and lets a bug (any other exception) surface."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, ValidationError

from medagent.bench.runner import RunDirError
from medagent.cli import user_errors
from medagent.config import UserError
from medagent.models.base import ModelError
from tests.bench.openai_stand_in import OpenAIStandIn


def test_user_errors_exit_2_with_the_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    @user_errors
    def refuse() -> None:
        raise RunDirError(f"{tmp_path} already holds a run; pass --resume")

    with pytest.raises(typer.Exit) as exited:
        refuse()
    assert exited.value.exit_code == 2
    assert "already holds a run" in " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert issubclass(RunDirError, UserError)


def test_a_bad_model_address_is_a_user_error_but_a_model_failure_is_not() -> None:
    @user_errors
    def configure() -> None:
        raise ModelError("config", "unknown model 'gpt-x'; use embedded or an http(s) URL")

    @user_errors
    def fail() -> None:
        raise ModelError("server", "503 from the model server")

    with pytest.raises(typer.Exit):
        configure()
    with pytest.raises(ModelError):
        fail()


def test_a_value_error_from_a_bug_keeps_its_traceback() -> None:
    class Strict(BaseModel):
        count: int

    @user_errors
    def buggy() -> None:
        Strict.model_validate({"count": "many"})

    @user_errors
    def plain() -> None:
        raise ValueError("an internal invariant broke")

    with pytest.raises(ValidationError):
        buggy()
    with pytest.raises(ValueError, match="invariant"):
        plain()


# --- issue 25, item 6: every bad command line of the outside probe, run as a real process ----------------



UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


def medagent(*args: str, cwd: Path, home: Path, timeout: float = 120, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDAGENT_")}
    environment.update({"MEDAGENT_HOME": str(home), "PYTHONPATH": os.getcwd(), **(env or {})})
    return subprocess.run([sys.executable, "-m", "medagent", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, no traceback, and one stderr line naming what was wrong."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr[-3000:]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(scope="module")
def stand_in() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as model:
        yield model


def written(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def test_ask_resume_of_an_unknown_run(tmp_path: Path, home: Path, fhir_url: str, stand_in: OpenAIStandIn) -> None:
    done = medagent("ask", "x", "--resume", "no-such-run", "--fhir-url", fhir_url, "--model", stand_in.base_url,
                    cwd=tmp_path, home=home)
    assert_one_line_error(done, "no-such-run")


def test_ask_for_an_unknown_patient_runs_nothing(tmp_path: Path, home: Path, fhir_url: str,
                                                 stand_in: OpenAIStandIn) -> None:
    before = stand_in.chat_requests
    done = medagent("ask", "Age?", "--patient", "no-such-patient", "--fhir-url", fhir_url, "--model",
                    stand_in.base_url, cwd=tmp_path, home=home)
    assert_one_line_error(done, "no-such-patient")
    assert stand_in.chat_requests == before and not (home / "checkpoints.sqlite").exists()


@pytest.mark.parametrize("patient", [".", "..", "a/b"])
def test_ask_for_a_dot_patient(tmp_path: Path, home: Path, fhir_url: str, stand_in: OpenAIStandIn,
                               patient: str) -> None:
    done = medagent("ask", "Age?", "--patient", patient, "--fhir-url", fhir_url, "--model", stand_in.base_url,
                    cwd=tmp_path, home=home)
    assert_one_line_error(done, "--patient", "not a FHIR id")
    assert not (home / "checkpoints.sqlite").exists()


@pytest.mark.parametrize("url", [UNREACHABLE, "not-a-url"])
def test_ask_with_a_fhir_server_that_does_not_answer(tmp_path: Path, home: Path, stand_in: OpenAIStandIn,
                                                     url: str) -> None:
    done = medagent("ask", "Age?", "--fhir-url", url, "--model", stand_in.base_url, cwd=tmp_path, home=home)
    assert_one_line_error(done, "--fhir-url", url)
    assert not (home / "checkpoints.sqlite").exists()


@pytest.mark.parametrize("url", [UNREACHABLE + "/v1", "not-a-url"])
def test_ask_with_a_model_that_does_not_answer(tmp_path: Path, home: Path, fhir_url: str, url: str) -> None:
    done = medagent("ask", "Age?", "--fhir-url", fhir_url, "--model", url, cwd=tmp_path, home=home)
    assert_one_line_error(done, "--model", url)
    assert not (home / "checkpoints.sqlite").exists()


@pytest.mark.parametrize("url", [UNREACHABLE + "/v1", "not-a-url"])
def test_bench_run_with_a_model_that_does_not_answer(tmp_path: Path, home: Path, url: str) -> None:
    done = medagent("bench", "run", "--model", url, "--limit", "1", "--out", "runs/x", cwd=tmp_path, home=home)
    assert_one_line_error(done, "--model", url)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("url", [UNREACHABLE, "not-a-url"])
def test_bench_run_with_a_fhir_server_that_does_not_answer(tmp_path: Path, home: Path, url: str) -> None:
    done = medagent("bench", "run", "--agent", "oracle", "--fhir-url", url, "--limit", "1", "--out", "runs/x",
                    cwd=tmp_path, home=home)
    assert_one_line_error(done, "--fhir-url", url)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_bench_run_with_a_limit_below_one_writes_nothing(tmp_path: Path, home: Path, limit: str) -> None:
    done = medagent("bench", "run", "--agent", "oracle", "--limit", limit, "--out", "runs/x", cwd=tmp_path,
                    home=home)
    assert done.returncode == 2 and "--limit" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "runs").exists()


def test_fhir_serve_on_a_directory(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    done = medagent("fhir", "serve", "--db", str(folder), "--port", "8999", cwd=tmp_path, home=home, timeout=60)
    assert_one_line_error(done, "--db", str(folder))
    assert written(tmp_path) == ["a-folder"]


def test_fhir_serve_in_a_folder_that_does_not_exist_creates_nothing(tmp_path: Path, home: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.sqlite"
    done = medagent("fhir", "serve", "--db", str(missing), cwd=tmp_path, home=home, timeout=60)
    assert_one_line_error(done, "--db", str(missing.parent))
    assert written(tmp_path) == []


@pytest.mark.parametrize("command", [("fhir", "serve", "--no-load"), ("serve",), ("mcp", "--transport", "http")])
@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range(tmp_path: Path, home: Path, command: tuple[str, ...], port: str) -> None:
    done = medagent(*command, "--port", port, cwd=tmp_path, home=home, timeout=60)
    assert done.returncode == 2 and "--port" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not home.exists() or not any(home.rglob("*.sqlite"))


@pytest.mark.parametrize(("command", "variable"), [(("serve",), "MEDAGENT_SERVE_TOKEN"),
                                                    (("mcp", "--transport", "http"), "MEDAGENT_MCP_TOKEN"),
                                                    (("fhir", "serve", "--no-load"), "MEDAGENT_FHIR_SERVER_TOKEN")])
def test_binding_beyond_loopback_without_a_token(tmp_path: Path, home: Path, command: tuple[str, ...],
                                                 variable: str) -> None:
    done = medagent(*command, "--host", "0.0.0.0", "--port", "8999", cwd=tmp_path, home=home, timeout=60)
    assert_one_line_error(done, "--token", variable)
    assert written(tmp_path) == []
