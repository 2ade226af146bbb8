"""Fast tests of the model interface: thinking removal, JSON checks, turn merging, factory and error mapping."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from medagent.models import ChatMessage, ModelError, ModelRequest, load_backend, split_thinking
from medagent.models.base import chat_turns, parse_json_reply
from medagent.models.openai_compat import OpenAICompatBackend, map_openai_error

REPO = Path(__file__).resolve().parents[2]

ACTION_SCHEMA = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"tool": {"const": "search"}, "args": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
            "required": ["tool", "args"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"tool": {"const": "final_answer"}, "args": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}},
            "required": ["tool", "args"],
            "additionalProperties": False,
        },
    ]
}


# -- thinking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "thinking"),
    [
        ("plain answer", "plain answer", None),
        ("<unused94>thought\nCheck the A1c trend.<unused95>The A1c is 7.2%.", "The A1c is 7.2%.", "Check the A1c trend."),
        ("<think>look up labs</think>\n{\"tool\": \"search\"}", '{"tool": "search"}', "look up labs"),
        ("<unused94>thought\nstill thinking when tokens ran out", "", "still thinking when tokens ran out"),
        ("opening tag was in the prompt</think>answer", "answer", "opening tag was in the prompt"),
        ("<think>a</think>x<think>b</think>y", "xy", "a\n\nb"),
        ("<unused94>thought\n<unused95>answer", "answer", ""),
    ],
)
def test_split_thinking(raw: str, text: str, thinking: str | None) -> None:
    assert split_thinking(raw) == (text, thinking)


# -- JSON replies --------------------------------------------------------------------------


def test_parse_json_reply_accepts_valid_and_fenced() -> None:
    value = {"tool": "search", "args": {"q": "a1c"}}
    assert parse_json_reply(json.dumps(value), ACTION_SCHEMA) == value
    assert parse_json_reply("```json\n" + json.dumps(value) + "\n```", ACTION_SCHEMA) == value


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"tool": "search", "args": {"q": ', "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"tool": "delete_everything", "args": {}}', "does not match the schema"),
    ],
)
def test_parse_json_reply_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_json_reply(text, ACTION_SCHEMA, backend="b")
    assert info.value.kind == "invalid_output"
    assert fragment in str(info.value)
    assert info.value.text == text
    assert not info.value.retryable


# -- turns ---------------------------------------------------------------------------------


def test_chat_turns_maps_tool_results_and_merges_roles() -> None:
    messages = [
        ChatMessage(role="system", content="You are an EHR agent."),
        ChatMessage(role="user", content="A1c of p1?"),
        ChatMessage(role="assistant", content='{"tool":"search"}'),
        ChatMessage(role="tool", content="Observation/o1 7.2%"),
        ChatMessage(role="system", content="Answer now."),
        ChatMessage(role="assistant", content="7.2%"),
    ]
    assert chat_turns(messages) == [
        {"role": "system", "content": "You are an EHR agent."},
        {"role": "user", "content": "A1c of p1?"},
        {"role": "assistant", "content": '{"tool":"search"}'},
        {"role": "user", "content": "Tool result:\nObservation/o1 7.2%\n\nAnswer now."},
        {"role": "assistant", "content": "7.2%"},
    ]


def test_gemma_template_copy_matches_package() -> None:
    from medagent.models.chat_templates import GEMMA3_CHAT_TEMPLATE

    on_disk = (REPO / "tools" / "chat_templates" / "gemma3.jinja").read_text()
    assert on_disk == GEMMA3_CHAT_TEMPLATE
    assert GEMMA3_CHAT_TEMPLATE.startswith("{{ bos_token }}")


def test_gemma_template_renders_turns() -> None:
    jinja2 = pytest.importorskip("jinja2")
    from medagent.models.chat_templates import GEMMA3_CHAT_TEMPLATE

    env = jinja2.Environment()
    env.globals["raise_exception"] = lambda message: (_ for _ in ()).throw(ValueError(message))
    turns = chat_turns(
        [ChatMessage(role="system", content="SYS"), ChatMessage(role="user", content="Q"), ChatMessage(role="assistant", content="A"), ChatMessage(role="tool", content="R")]
    )
    rendered = env.from_string(GEMMA3_CHAT_TEMPLATE).render(messages=turns, bos_token="<bos>", add_generation_prompt=True)
    assert rendered == (
        "<bos><start_of_turn>user\nSYS\n\nQ<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
        "<start_of_turn>user\nTool result:\nR<end_of_turn>\n<start_of_turn>model\n"
    )


# -- factory -------------------------------------------------------------------------------


def test_load_backend_rejects_unknown_specs() -> None:
    with pytest.raises(ModelError) as info:
        load_backend("scripted")
    assert info.value.kind == "config"
    assert "embedded" in str(info.value) and "http" in str(info.value)
    with pytest.raises(ModelError) as info:
        load_backend("embedded:gpt-7")
    assert info.value.kind == "config" and "gemma3-270m" in str(info.value)


async def test_load_backend_builds_backends_without_loading() -> None:
    backend = load_backend("http://127.0.0.1:9/v1", "medgemma-27b", max_retries=0)
    assert isinstance(backend, OpenAICompatBackend)
    assert backend.model == "medgemma-27b"
    await backend.aclose()
    embedded = load_backend("embedded:smollm2", cache_dir="/nonexistent")
    assert embedded.name == "embedded:smollm2"
    base = load_backend("embedded:base")
    assert base.name == "embedded:gemma3-270m" and base.adapter is None and base.preferred_profile is None


def test_the_embedded_default_is_the_base_model_with_the_packaged_adapter(tmp_path: Path) -> None:
    from medagent.models.adapter import ADAPTERS_DIR, SHIPPED_ADAPTER

    default = load_backend("embedded")
    assert default.adapter == ADAPTERS_DIR / SHIPPED_ADAPTER
    assert default.name == f"embedded:{SHIPPED_ADAPTER}" and default.preferred_profile == "compact"
    # an adapter folder by path; a folder that is not one, or one trained on another base, is refused
    folder = tmp_path / "my-adapter"
    folder.mkdir()
    (folder / "medagent-adapter.json").write_text(json.dumps({"base": "smollm2", "prompt_profile": "full"}))
    mine = load_backend(f"embedded:{folder}")
    assert mine.name == "embedded:my-adapter" and mine.spec.key == "smollm2" and mine.preferred_profile == "full"
    (folder / "medagent-adapter.json").write_text(json.dumps({"base": "gpt-7"}))
    with pytest.raises(ModelError, match="gpt-7"):
        load_backend(f"embedded:{folder}")


# -- error mapping -------------------------------------------------------------------------


def _status_error(cls: type[openai.APIStatusError], status: int, message: str) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:8000/v1/chat/completions")
    body = {"error": {"message": message, "type": "BadRequestError", "code": status}}
    response = httpx.Response(status, request=request, json=body)
    return cls(message, response=response, body=body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "status", "message", "kind", "retryable"),
    [
        (openai.RateLimitError, 429, "slow down", "rate_limit", True),
        (openai.InternalServerError, 503, "engine dead", "server", True),
        (openai.AuthenticationError, 401, "bad key", "auth", False),
        (openai.NotFoundError, 404, "The model `x` does not exist.", "not_found", False),
        (
            openai.BadRequestError,
            400,
            "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
            "context_length",
            False,
        ),
        (openai.BadRequestError, 400, "response_format: invalid schema", "bad_request", False),
    ],
)
def test_map_openai_status_errors(cls: type, status: int, message: str, kind: str, retryable: bool) -> None:
    # no skip on a TypeError here: an SDK whose exceptions cannot be built this way must fail this table
    # loudly (the pin in pyproject.toml then needs a look), not silently skip every row of it
    exc = _status_error(cls, status, message)
    error = map_openai_error(exc, backend="vllm")
    assert error.kind == kind
    assert error.status_code == status
    assert error.retryable is retryable
    assert message.split(".")[0] in str(error)


def test_map_timeout_and_connection() -> None:
    assert map_openai_error(asyncio.TimeoutError()).kind == "timeout"
    assert map_openai_error(ValueError("odd")).kind == "server"


async def test_connection_refused_is_a_connection_error() -> None:
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", model="m", max_retries=1, backoff_s=0.01, timeout_s=5)
    try:
        with pytest.raises(ModelError) as info:
            await backend.complete(ModelRequest(messages=[ChatMessage(role="user", content="hi")]))
        assert info.value.kind == "connection"
        assert "after 2 attempts" in str(info.value)
    finally:
        await backend.aclose()


# -- retries against a real local HTTP server -------------------------------------------------


class ScriptedHTTP:
    """A minimal HTTP/1.1 server on 127.0.0.1 answering each request with the next scripted (status, body)."""

    def __init__(self, replies: list[tuple[int, dict]]) -> None:
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.server: asyncio.AbstractServer | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(json.loads(body) if body else {})
        status, payload = self.replies.pop(0) if self.replies else (500, {"error": {"message": "no more replies"}})
        data = json.dumps(payload).encode()
        reason = {200: "OK", 429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Retry-After: 0\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def _completion(content: str, finish_reason: str = "stop") -> dict:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "medgemma-27b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


@pytest.fixture
async def scripted() -> AsyncIterator[type[ScriptedHTTP]]:
    yield ScriptedHTTP


async def test_retries_5xx_and_429_then_parses(scripted: type[ScriptedHTTP]) -> None:
    reply = '<unused94>thought\nsearch first<unused95>{"tool":"search","args":{"q":"a1c"}}'
    http = scripted([(503, {"error": {"message": "busy"}}), (429, {"error": {"message": "slow"}}), (200, _completion(reply))])
    async with http as url:
        backend = OpenAICompatBackend(url, model="medgemma-27b", max_retries=3, backoff_s=0.01)
        request = ModelRequest(messages=[ChatMessage(role="user", content="A1c?")], json_schema=ACTION_SCHEMA, max_tokens=64)
        result = await backend.complete(request)
        await backend.aclose()
    assert result.parsed == {"tool": "search", "args": {"q": "a1c"}}
    assert result.raw_thinking == "search first"
    assert result.usage.prompt_tokens == 11 and result.usage.completion_tokens == 7
    assert len(http.requests) == 3
    sent = http.requests[-1]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == ACTION_SCHEMA
    assert sent["skip_special_tokens"] is False


async def test_gives_up_after_max_retries(scripted: type[ScriptedHTTP]) -> None:
    http = scripted([(503, {"error": {"message": "busy"}})] * 3)
    async with http as url:
        backend = OpenAICompatBackend(url, model="m", max_retries=2, backoff_s=0.01)
        with pytest.raises(ModelError) as info:
            await backend.complete(ModelRequest(messages=[ChatMessage(role="user", content="hi")]))
        await backend.aclose()
    assert info.value.kind == "server" and info.value.status_code == 503
    assert len(http.requests) == 3


async def test_truncated_json_is_invalid_output(scripted: type[ScriptedHTTP]) -> None:
    http = scripted([(200, _completion('{"tool":"search","args":{"q":"hemo', finish_reason="length"))])
    async with http as url:
        backend = OpenAICompatBackend(url, model="m", max_retries=0)
        with pytest.raises(ModelError) as info:
            await backend.complete(ModelRequest(messages=[ChatMessage(role="user", content="hi")], json_schema=ACTION_SCHEMA, max_tokens=8))
        await backend.aclose()
    assert info.value.kind == "invalid_output" and "max_tokens=8" in str(info.value)


async def test_named_tool_mode_sends_one_function(scripted: type[ScriptedHTTP]) -> None:
    body = _completion("")
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "act", "arguments": '{"tool":"final_answer","args":{"answer":"7.2%"}}'}}],
    }
    http = scripted([(200, body)])
    async with http as url:
        backend = OpenAICompatBackend(url, model="m", tool_mode="named_tool", vllm_extras=False)
        result = await backend.complete(ModelRequest(messages=[ChatMessage(role="user", content="hi")], json_schema=ACTION_SCHEMA))
        await backend.aclose()
    assert result.parsed == {"tool": "final_answer", "args": {"answer": "7.2%"}}
    sent = http.requests[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "act"}}
    assert sent["tools"][0]["function"]["parameters"] == ACTION_SCHEMA
    assert "skip_special_tokens" not in sent


async def test_model_name_is_discovered(scripted: type[ScriptedHTTP]) -> None:
    models = {"object": "list", "data": [{"id": "medgemma-27b", "object": "model", "created": 0, "owned_by": "vllm"}]}
    http = scripted([(200, models), (200, _completion("hello"))])
    async with http as url:
        backend = OpenAICompatBackend(url)
        result = await backend.complete(ModelRequest(messages=[ChatMessage(role="user", content="hi")]))
        await backend.aclose()
    assert backend.model == "medgemma-27b"
    assert result.text == "hello" and result.parsed is None
    assert http.requests[1]["model"] == "medgemma-27b"


# -- launch script -------------------------------------------------------------------------


def test_serve_script_reports_missing_model(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "tools" / "serve_vllm.sh"), "--cpu", "--model", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "missing" in result.stderr and "medagent.models prepare" in result.stderr


def test_serve_script_gpu_profiles_dry_run() -> None:
    def dry(*args: str) -> str:
        out = subprocess.run(
            ["bash", str(REPO / "tools" / "serve_vllm.sh"), *args, "--dry-run"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), "VENV": "/bin/true-venv"},
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    big = dry("--profile", "medgemma-27b", "--tp", "2")
    assert "google/medgemma-27b-text-it" in big and "--tensor-parallel-size 2" in big
    assert "--served-model-name medgemma-27b" in big and "--enable-prefix-caching" in big
    assert "xgrammar" in big
    small = dry("--profile", "medgemma-4b")
    assert "google/medgemma-1.5-4b-it" in small and "--served-model-name medgemma-4b" in small


def test_serve_script_serves_a_lora_adapter(tmp_path: Path) -> None:
    adapter = tmp_path / "ehr-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")

    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(REPO / "tools" / "serve_vllm.sh"), "--profile", "medgemma-4b", *args,
                               "--dry-run"], capture_output=True, text=True, timeout=30,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), "VENV": "/bin/true-venv"})

    out = serve("--lora", f"ehr={adapter}")
    assert out.returncode == 0, out.stderr
    assert "--enable-lora" in out.stdout and f"--lora-modules ehr={adapter}" in out.stdout
    missing = serve("--lora", f"ehr={tmp_path / 'nothing'}")
    assert missing.returncode == 2 and "adapter_config.json" in missing.stderr
    malformed = serve("--lora", "ehr")
    assert malformed.returncode == 2 and "NAME=PATH" in malformed.stderr
