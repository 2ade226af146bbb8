"""Writing a trained adapter folder in the format :mod:`medagent.models.adapter` owns (and reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medagent.models.adapter import ADAPTER_FILE, WEIGHTS_FILE, AdapterInfo, read_adapter_info

__all__ = ["AdapterInfo", "adapter_summary", "save_adapter"]


def save_adapter(peft_model: Any, folder: Path, info: AdapterInfo) -> Path:
    """Write the LoRA weights (bf16) and the record; returns the folder."""
    import torch
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder))
    weights = folder / WEIGHTS_FILE
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    (folder / ADAPTER_FILE).write_text(info.model_dump_json(indent=2) + "\n")
    return folder


def adapter_summary(folder: Path) -> dict[str, Any]:
    info = read_adapter_info(folder)
    return json.loads(info.model_dump_json(include={"base", "prompt_profile", "training"}))
