"""The training run's settings: one dataclass, whose defaults are also ``medagent train sft``'s (so the CLI
reads them from here without importing the training loop)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    steps: int = 800
    lr: float = 2e-4
    rank: int = 16
    alpha: int = 32
    max_tokens: int = 1800  # the agentic trajectories (3-5 steps, long task texts) run to ~1,700 tokens
    seed: int = 0
    warmup: int = 20
    checkpoint_every: int = 50
    validate_every: int = 200  # steps between validation losses (and at the end)
    validation_share: float = 0.05  # of the patients
    validation_examples: int = 12
    device: str = "cpu"
    bf16: bool = False
    gradient_checkpointing: bool = False
    threads: int | None = None
