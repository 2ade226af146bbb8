"""Writing a trained adapter folder in the format :mod:`medagent.models.adapter` owns (and reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medagent.models.adapter import ADAPTER_FILE, WEIGHTS_FILE, AdapterInfo, read_adapter_info

__all__ = ["AdapterInfo", "adapter_summary", "portable_info", "portable_path", "save_adapter"]


def save_adapter(peft_model: Any, folder: Path, info: AdapterInfo) -> Path:
    """Write the LoRA weights (bf16) and the record; returns the folder."""
    import torch
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder))
    weights = folder / WEIGHTS_FILE
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    (folder / ADAPTER_FILE).write_text(portable_info(info).model_dump_json(indent=2) + "\n")
    return folder


def portable_path(path: str, cwd: Path | None = None) -> str:
    """A path as a record that ships may hold: relative to ``cwd`` (the working directory) when under it, else
    its last part only (an absolute path names the machine it ran on: ``/work/homes/<user>/runs/x`` -> ``x``)."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return path
    try:
        return str(candidate.relative_to((cwd or Path.cwd()).resolve()))
    except ValueError:
        return candidate.name


def _portable_arg(arg: str, cwd: Path | None) -> str:
    option, equals, value = arg.partition("=")
    return f"{option}={portable_path(value, cwd)}" if equals and option.startswith("--") else portable_path(arg, cwd)


def portable_info(info: AdapterInfo, cwd: Path | None = None) -> AdapterInfo:
    """The record without absolute paths: the data's runs, the command's arguments, the --init-from folder.
    ``base`` stays as it is (a base model folder is what a continued run is checked against)."""
    training = dict(info.training)
    if isinstance(training.get("command"), str):
        training["command"] = " ".join(_portable_arg(arg, cwd) for arg in training["command"].split(" "))
    if isinstance(training.get("init_from"), dict) and "folder" in training["init_from"]:
        training["init_from"] = {**training["init_from"], "folder": portable_path(training["init_from"]["folder"], cwd)}
    data = info.data and info.data.model_copy(update={"runs": [portable_path(r, cwd) for r in info.data.runs]})
    return info.model_copy(update={"data": data, "training": training})


def adapter_summary(folder: Path) -> dict[str, Any]:
    info = read_adapter_info(folder)
    return json.loads(info.model_dump_json(include={"base", "prompt_profile", "training"}))
