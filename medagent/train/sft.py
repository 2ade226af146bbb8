"""Supervised fine-tuning with LoRA (peft) in a plain torch loop: loss on the action tokens only.

One training sequence per trajectory: the turns of its last step plus its target, with the loss on every
assistant turn. Each earlier step's prompt is a prefix of that sequence (the chat template renders a
past reply exactly as the model wrote it), so one forward pass trains every step of the trajectory: the
first tool choice and the final answer alike. Sequences longer than ``max_tokens`` fall back to the
steps that fit on their own; what is left out is counted.

Logits are computed only at the target positions (the 262k-vocabulary head is most of the cost of a
full-logit step on CPU). Fixed seed, deterministic data order, a checkpoint every ``checkpoint_every``
steps (adapter, optimizer, step) and ``resume``; a validation slice held out by patient.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medagent.config import UserError
from medagent.models.base import ChatMessage
from medagent.train.config import TrainConfig
from medagent.train.examples import Example

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "train_log.jsonl"


@dataclass
class Sequence:
    """One training sequence: token ids and the (start, end) spans of its target tokens."""

    scenario_id: str
    suite: str
    category: str
    patient: str
    ids: list[int]
    spans: list[tuple[int, int]]

    @property
    def target_tokens(self) -> int:
        return sum(end - start for start, end in self.spans)


@dataclass
class PreparedData:
    train: list[Sequence]
    validation: list[Sequence]
    steps_kept: int
    steps_dropped_long: int
    stats: dict[str, Any] = field(default_factory=dict)


def _encode(tokenizer: Any, example: Example, needs_bos: bool) -> tuple[list[int], list[int]]:
    from medagent.models.embedded import encode_chat

    prompt = encode_chat(tokenizer, [ChatMessage(**m) for m in example.messages], needs_bos=needs_bos)
    target = list(tokenizer(example.target, add_special_tokens=False)["input_ids"])
    return prompt, target


def trajectory_sequences(
    tokenizer: Any, examples: list[Example], *, max_tokens: int, needs_bos: bool = True
) -> tuple[list[Sequence], int, int]:
    """Sequences for the examples (one per trajectory where it fits), steps kept, steps dropped as too long."""
    by_task: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_task[example.scenario_id].append(example)
    sequences: list[Sequence] = []
    kept = dropped = 0
    for task_examples in by_task.values():
        encoded = [_encode(tokenizer, e, needs_bos) for e in task_examples]
        last_prompt, last_target = encoded[-1]
        full = last_prompt + last_target
        spans: list[tuple[int, int]] = []
        for prompt, target in encoded:
            start, end = len(prompt), len(prompt) + len(target)
            if full[:start] != prompt or full[start:end] != target:
                spans = []
                break
            spans.append((start, end))
        first = task_examples[0]
        if spans and len(full) <= max_tokens:
            sequences.append(Sequence(first.scenario_id, first.suite, first.category, first.patient, full, spans))
            kept += len(spans)
            continue
        for example, (prompt, target) in zip(task_examples, encoded, strict=False):  # each step on its own
            if len(prompt) + len(target) <= max_tokens:
                sequences.append(
                    Sequence(
                        example.scenario_id,
                        example.suite,
                        example.category,
                        example.patient,
                        prompt + target,
                        [(len(prompt), len(prompt) + len(target))],
                    )
                )
                kept += 1
            else:
                dropped += 1
    return sequences, kept, dropped


def _stable_fraction(text: str) -> float:
    # Salted: the scenario sets split dev/test by a hash of Patient.id, so an unsalted hash is skewed here.
    return int(hashlib.sha256(f"validation:{text}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_and_order(sequences: list[Sequence], config: TrainConfig) -> tuple[list[Sequence], list[Sequence]]:
    """Hold out patients (a stable hash of Patient.id) for validation; order the rest deterministically:
    shuffled with the seed within each category, then taken round-robin by suite and category, so any
    prefix of the order (a short run) covers every category."""
    validation = [s for s in sequences if _stable_fraction(s.patient) < config.validation_share]
    train = [s for s in sequences if _stable_fraction(s.patient) >= config.validation_share]
    rng = random.Random(config.seed)
    groups: dict[str, dict[str, list[Sequence]]] = defaultdict(lambda: defaultdict(list))
    for sequence in sorted(train, key=lambda s: s.scenario_id):
        groups[sequence.suite][sequence.category].append(sequence)
    suite_queues = []
    for suite in sorted(groups):
        lists = [groups[suite][c] for c in sorted(groups[suite])]
        for items in lists:
            rng.shuffle(items)
        suite_queues.append(_round_robin(lists))
    ordered = _round_robin(suite_queues)
    rng.shuffle(validation)
    return ordered, validation[: config.validation_examples]


def _round_robin(lists: list[list[Any]]) -> list[Any]:
    out: list[Any] = []
    for index in range(max((len(x) for x in lists), default=0)):
        out.extend(x[index] for x in lists if index < len(x))
    return out


def prepare_data(tokenizer: Any, examples: list[Example], config: TrainConfig, needs_bos: bool = True) -> PreparedData:
    sequences, kept, dropped = trajectory_sequences(
        tokenizer, examples, max_tokens=config.max_tokens, needs_bos=needs_bos
    )
    if not sequences:
        raise UserError(f"no example fits --max-tokens {config.max_tokens}")
    train, validation = split_and_order(sequences, config)
    lengths = sorted(len(s.ids) for s in train)
    return PreparedData(
        train,
        validation,
        kept,
        dropped,
        {
            "sequences": len(train),
            "validation_sequences": len(validation),
            "tokens_p50": lengths[len(lengths) // 2],
            "tokens_max": lengths[-1],
        },
    )


def load_model(folder: Path, config: TrainConfig) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).to(config.device)
    return tokenizer, model


def with_lora(model: Any, config: TrainConfig, resume_from: Path | None = None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if resume_from is not None:
        return PeftModel.from_pretrained(model, str(resume_from), is_trainable=True)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(LORA_TARGETS),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def sequence_loss(peft_model: Any, sequence: Sequence, device: str) -> Any:
    """Mean cross-entropy over the target tokens, with logits only at the positions that predict them."""
    import torch

    causal = peft_model.get_base_model()
    ids = torch.tensor([sequence.ids], device=device)
    hidden = causal.model(input_ids=ids).last_hidden_state[0]
    positions = torch.tensor([p for start, end in sequence.spans for p in range(start - 1, end - 1)], device=device)
    labels = torch.tensor([sequence.ids[p + 1] for p in positions.tolist()], device=device)
    logits = causal.lm_head(hidden[positions]).float()
    cap = getattr(causal.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits, labels)


def validation_loss(peft_model: Any, sequences: list[Sequence], device: str) -> float | None:
    import torch

    if not sequences:
        return None
    peft_model.eval()
    with torch.no_grad():
        total = sum(float(sequence_loss(peft_model, s, device)) * s.target_tokens for s in sequences)
    peft_model.train()
    return total / sum(s.target_tokens for s in sequences)


def train(
    peft_model: Any, data: PreparedData, config: TrainConfig, out: Path, *, resume: bool, on_checkpoint: Any = None
) -> dict[str, Any]:
    """The loop: AdamW, linear warmup then cosine decay, batch 1. Returns the run's figures."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)

    def schedule(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    state_path = out / CHECKPOINT_DIR / "trainer_state.pt"
    start_step, elapsed_before = 0, 0.0
    if resume and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start_step, elapsed_before = int(state["step"]), float(state["elapsed_s"])
    log_path = out / LOG_FILE
    peft_model.train()
    started = time.perf_counter()
    tokens_seen = 0
    losses: list[float] = []
    bar = tqdm(range(start_step, config.steps), initial=start_step, total=config.steps, desc="sft", mininterval=5)
    for step in bar:
        sequence = data.train[step % len(data.train)]
        loss = sequence_loss(peft_model, sequence, config.device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += len(sequence.ids)
        losses.append(float(loss.detach()))
        rate = tokens_seen / max(1e-9, time.perf_counter() - started)
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}", tok_s=f"{rate:.0f}")
        done = step + 1
        if done % config.checkpoint_every == 0 or done == config.steps:
            elapsed = elapsed_before + time.perf_counter() - started
            validate = done % config.validate_every == 0 or done == config.steps
            val = validation_loss(peft_model, data.validation, config.device) if validate else None
            checkpoint = out / CHECKPOINT_DIR
            peft_model.save_pretrained(str(checkpoint))
            torch.save(
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "step": done,
                    "elapsed_s": elapsed,
                },
                state_path,
            )
            entry = {
                "step": done,
                "train_loss": round(
                    sum(losses[-config.checkpoint_every :]) / len(losses[-config.checkpoint_every :]), 4
                ),
                "validation_loss": None if val is None else round(val, 4),
                "elapsed_s": round(elapsed, 1),
                "tokens_per_s": round(rate, 1),
            }
            with log_path.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")
            bar.write(json.dumps(entry))
            if on_checkpoint is not None:
                on_checkpoint(done, entry)
    elapsed = elapsed_before + time.perf_counter() - started
    return {
        "steps": config.steps,
        "train_s": round(elapsed, 1),
        "final_train_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4) if losses else None,
        "validation_loss": validation_loss(peft_model, data.validation, config.device),
    }
