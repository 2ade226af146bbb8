"""Issue 25, item 5: a Ray actor's private folder (its FHIR servers' database copies, 2 x 116 MB in the probe)
does not outlive a SIGKILLed run: each folder names its owning process, and an actor starting on the node
removes the folders of processes that are gone. The reproduction: after a SIGKILLed Ray run the
``medagent-ray-*`` folders stayed, even after a finished resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from medagent.bench.executors import TaskActor, new_work_folder
from medagent.bench.solvers.catalog import make_code_solver


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def killed_owner_folder(root: Path) -> Path:
    """A folder made by an actor's process that was then SIGKILLed (the real code, in a real process)."""
    script = ("import sys, time; from medagent.bench.executors import new_work_folder; "
              "print(new_work_folder(), flush=True); time.sleep(600)")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(root), "PYTHONPATH": os.getcwd()})
    assert process.stdout is not None
    folder = Path(process.stdout.readline().strip())
    (folder / "server-0").mkdir()
    (folder / "server-0" / "fhir.sqlite").write_bytes(b"x" * 1024)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return folder


def test_a_starting_actor_removes_the_folders_of_dead_processes_only(temp_root: Path) -> None:
    orphan = killed_owner_folder(temp_root)
    assert orphan.is_dir() and orphan.parent == temp_root  # what a SIGKILL left behind
    mine = new_work_folder()  # this (live) process's folder
    other = new_work_folder()
    assert not orphan.exists()
    assert mine.is_dir() and other.is_dir()  # folders of live processes are kept


async def test_an_actor_cleans_up_on_start_and_on_stop(temp_root: Path, bench_home: Path) -> None:
    orphan = killed_owner_folder(temp_root)
    actor = TaskActor(lambda: make_code_solver("do-nothing"), str(bench_home), None, 1)
    await actor.start()
    try:
        assert not orphan.exists()
        assert actor.folder is not None and actor.folder.is_dir()
    finally:
        await actor.stop()
    assert list(temp_root.iterdir()) == []
