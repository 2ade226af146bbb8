"""The adapter folder: peft's files (LoRA weights as bf16 safetensors, adapter_config.json) plus
``medagent-adapter.json`` recording the base model, the prompt profile it was trained with, the data
summary and the training run's settings and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medagent.agent.prompts import PromptProfile
from medagent.models.embedded import ADAPTER_FILE
from medagent.train.examples import DataSummary

__all__ = ["ADAPTER_FILE", "AdapterInfo", "merge_adapter", "read_adapter_info", "save_adapter"]
WEIGHTS_FILE = "adapter_model.safetensors"


class AdapterInfo(BaseModel):
    base: str = Field(description="The embedded model key (e.g. gemma3-270m) or the base model folder.")
    prompt_profile: PromptProfile
    data: DataSummary
    training: dict[str, Any] = Field(default_factory=dict)


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


def read_adapter_info(folder: Path) -> AdapterInfo:
    return AdapterInfo.model_validate_json((Path(folder) / ADAPTER_FILE).read_text())


def merge_adapter(model: Any, folder: Path) -> Any:
    """The base model with the adapter merged into its weights (no LoRA overhead at inference)."""
    from peft import PeftModel

    dtype = next(model.parameters()).dtype
    merged = PeftModel.from_pretrained(model, str(folder), torch_dtype=dtype).merge_and_unload()
    for parameter in merged.parameters():
        if parameter.dtype != dtype and parameter.is_floating_point():
            parameter.data = parameter.data.to(dtype)
    merged.eval()
    return merged


def adapter_summary(folder: Path) -> dict[str, Any]:
    info = read_adapter_info(folder)
    return json.loads(info.model_dump_json(include={"base", "prompt_profile", "training"}))
