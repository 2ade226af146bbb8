"""The CLI reports a user's mistake in one line with exit code 2, and lets a bug (any other exception) surface."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, ValidationError

from medagent.bench.runner import RunDirError
from medagent.cli import user_errors
from medagent.config import UserError
from medagent.models.base import ModelError


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
