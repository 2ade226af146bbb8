"""The adapter folder format, owned here: peft's files (LoRA weights as bf16 safetensors, adapter_config.json)
plus ``medagent-adapter.json`` (:class:`AdapterInfo`: the base model, the prompt profile it was trained with,
the data summary and the training run's settings and figures). ``medagent train sft`` writes it; the embedded
backend reads it and merges the weights at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from medagent.models.base import ModelError, PromptProfile

__all__ = [
    "ADAPTER_FILE",
    "ADAPTERS_DIR",
    "SHIPPED_ADAPTER",
    "WEIGHTS_FILE",
    "AdapterInfo",
    "DataSummary",
    "merge_adapter",
    "read_adapter_info",
    "shipped_adapter",
]

ADAPTER_FILE = "medagent-adapter.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# Trained adapters (``medagent train sft``) that ship in the package; ``embedded`` = base + SHIPPED_ADAPTER.
ADAPTERS_DIR = Path(__file__).parent / "adapters"
SHIPPED_ADAPTER = "gemma3-270m-ehr"


class DataSummary(BaseModel):
    """What an adapter was trained on (recorded in its medagent-adapter.json)."""

    runs: list[str]
    split: str = "dev"
    tasks: int
    examples: int
    dropped_steps: int = Field(
        description="Steps left out: a result longer than the agent's budget, or cut in the log."
    )
    dropped_test_mentions: int = Field(
        0,
        description="Passed dev tasks left out whole: their text names a test-split "
        "patient (Patient id or MRN), e.g. a population search.",
    )
    rephrased: int = Field(0, description="Tasks from rephrased scenarios (medagent scenarios rephrase).")
    patients: list[str]
    scenario_ids: list[str]
    categories: dict[str, int]
    phrasings: int = Field(description="Distinct question phrasings (meta.phrasing per category).")
    sha256: str = Field(description="Hash of the examples (messages + targets), for a deterministic rebuild.")


class AdapterInfo(BaseModel):
    """An adapter folder's ``medagent-adapter.json``."""

    base: str = Field(description="The embedded model key (e.g. gemma3-270m) or the base model folder.")
    prompt_profile: PromptProfile | None = Field(
        None, description="The prompt it was trained with (None: the agent's default)."
    )
    data: DataSummary | None = Field(None, description="What it was trained on (``medagent train sft`` records it).")
    training: dict[str, Any] = Field(default_factory=dict)


def shipped_adapter() -> Path | None:
    """The packaged adapter folder of the default model, or None when the package holds none."""
    folder = ADAPTERS_DIR / SHIPPED_ADAPTER
    return folder if (folder / ADAPTER_FILE).exists() else None


def read_adapter_info(folder: Path | str) -> AdapterInfo:
    """An adapter folder's record; ModelError("model_load") naming the file when it is missing or invalid."""
    path = Path(folder) / ADAPTER_FILE
    try:
        return AdapterInfo.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise ModelError("model_load", f"{folder} is not a medagent adapter folder ({path}: {exc})") from None


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
