"""The built wheel works outside the checkout: the scenario sets are package data, and ``bench run`` finds them.

Also: the server subprocess the runner and the tests start imports only what it serves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("medagent.cli", "medagent.bench", "medagent.agent", "medagent.scenarios", "medagent.tools", "medagent.models")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the checkout on PYTHONPATH (so only the installed wheel can be imported)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_server_entry_point_imports_only_the_server() -> None:
    code = ("import sys, medagent.fhir.server.__main__ as m; from medagent.fhir.server import serve; "
            "print('\\n'.join(sorted(k for k in sys.modules if k.startswith('medagent'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout.split()
    assert "medagent.fhir.server.app" in loaded
    assert [name for name in loaded if name.startswith(HEAVY)] == []


def test_server_entry_point_rejects_a_bad_option() -> None:
    result = subprocess.run([sys.executable, "-m", "medagent.fhir.server", "--port", "eighty"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "--port" in result.stderr and "eighty" in result.stderr


@pytest.mark.slow
def test_wheel_runs_the_oracle_outside_the_checkout(tmp_path: Path) -> None:
    started = time.perf_counter()
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(wheels.glob("medagent-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for set_name in sorted(p.parent.name for p in (ROOT / "scenarios").glob("*/manifest.json")):  # every set, every file
        manifest = json.loads((ROOT / "scenarios" / set_name / "manifest.json").read_text())
        for listed in ["manifest.json", *manifest["files"]]:
            assert f"medagent/scenario_sets/{set_name}/{listed}" in names
    adapter = ROOT / "medagent" / "models" / "adapters" / "gemma3-270m-ehr"  # the embedded default's adapter
    for shipped in sorted(adapter.iterdir()):
        assert f"medagent/models/adapters/gemma3-270m-ehr/{shipped.name}" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, env=clean_env(),
                   capture_output=True)
    installed = time.perf_counter() - started
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import medagent; print(medagent.__file__)"], capture_output=True,
                           text=True, check=True, cwd=work, env=clean_env()).stdout.strip()
    assert Path(where).is_relative_to(venv)

    out = work / "run"
    result = subprocess.run([str(venv / "bin" / "medagent"), "bench", "run", "--agent", "oracle", "--limit", "20",
                             "--out", str(out), "--no-report"], capture_output=True, text=True, cwd=work,
                            env=clean_env(MEDAGENT_HOME=str(work / "home")), timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 20
    assert [r["scenario_id"] for r in records if not r["passed"]] == []  # the oracle reads the answers from the chart
    recorded = json.loads((out / "scenario_set.json").read_text())
    assert Path(recorded["folder"]).is_relative_to(venv)
    print(f"wheel built and installed with its dependencies in {installed:.1f} s; "
          f"total {time.perf_counter() - started:.1f} s")
    shutil.rmtree(venv, ignore_errors=True)
