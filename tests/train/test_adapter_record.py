"""The adapter record (medagent-adapter.json) ships in the package: it names run folders and the command by
paths relative to where the run started, never by a machine's absolute path."""

from __future__ import annotations

import json
from pathlib import Path

from medagent.models.adapter import ADAPTER_FILE, DataSummary, shipped_adapter
from medagent.train.adapter import AdapterInfo, portable_info, portable_path


def _info(runs: list[str], command: str, init_folder: str) -> AdapterInfo:
    data = DataSummary(runs=runs, tasks=1, examples=1, dropped_steps=0, patients=["p"], scenario_ids=["s"],
                       categories={"ehrqa/x": 1}, phrasings=1, sha256="0" * 64)
    training = {"command": command, "init_from": {"folder": init_folder, "data_sha256": "a" * 64}, "steps": 5}
    return AdapterInfo(base="gemma3-270m", prompt_profile="compact", data=data, training=training)


def test_absolute_paths_become_relative_or_names(tmp_path: Path) -> None:
    inside = tmp_path / "runs" / "obn-dev"
    info = _info(
        [str(inside), "/work/homes/someone/runs/obn-v3", "runs/already-relative"],
        f"medagent train sft --from {inside} --from=/work/homes/someone/runs/obn-v3 --out /elsewhere/adapter-v5 "
        "--steps 5 --lr 1e-4",
        "/work/homes/someone/medagent/models/adapters/gemma3-270m-ehr",
    )
    record = portable_info(info, cwd=tmp_path)
    assert record.data is not None
    assert record.data.runs == ["runs/obn-dev", "obn-v3", "runs/already-relative"]
    assert record.training["command"] == (
        "medagent train sft --from runs/obn-dev --from=obn-v3 --out adapter-v5 --steps 5 --lr 1e-4"
    )
    assert record.training["init_from"] == {"folder": "gemma3-270m-ehr", "data_sha256": "a" * 64}
    assert record.training["steps"] == 5 and record.base == "gemma3-270m"
    assert info.data is not None and info.data.runs[0] == str(inside)  # the caller's record is not changed
    assert portable_path("/", cwd=tmp_path) == ""  # nothing of the machine is left even for the root


def test_the_shipped_record_holds_no_absolute_path() -> None:
    folder = shipped_adapter()
    assert folder is not None
    text = (folder / ADAPTER_FILE).read_text()
    record = json.loads(text)
    args = [a.partition("=")[2] if a.startswith("--") and "=" in a else a for a in record["training"]["command"].split()]
    paths = [*record["data"]["runs"], *args, record["training"]["init_from"]["folder"]]
    assert [p for p in paths if p.startswith("/")] == []
    assert "/work/" not in text and "/home" not in text
