"""A model backend over any OpenAI-compatible chat endpoint (vLLM first), with JSON-schema constrained actions."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import openai
from openai import AsyncOpenAI

from medagent.models.base import (
    ModelError,
    ModelReply,
    ModelRequest,
    Usage,
    chat_turns,
    parse_json_reply,
    split_thinking,
)

log = logging.getLogger(__name__)

ToolMode = Literal["json_schema", "named_tool"]


def map_openai_error(exc: BaseException, *, backend: str | None = None) -> ModelError:
    """The typed ModelError for an exception raised by the openai SDK (or the transport under it)."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return ModelError("timeout", "the model server did not answer in time", backend=backend)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause else ""
        return ModelError("connection", f"cannot reach the model server{detail}", backend=backend)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = _status_message(exc)
        lowered = message.lower()
        if status == 429:
            kind = "rate_limit"
        elif status >= 500:
            kind = "server"
        elif status in (401, 403):
            kind = "auth"
        elif status == 404:
            kind = "not_found"
            message += " (check the base URL ends with /v1 and the model name is one of /v1/models)"
        elif "context length" in lowered or "maximum context" in lowered or "too long" in lowered:
            kind = "context_length"
        else:
            kind = "bad_request"
        return ModelError(kind, message, backend=backend, status_code=status)  # type: ignore[arg-type]
    if isinstance(exc, openai.APIError):
        return ModelError("server", str(exc), backend=backend)
    return ModelError("server", f"{type(exc).__name__}: {exc}", backend=backend)


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(exc.message or exc)


class OpenAICompatBackend:
    """Chat completions against an OpenAI-compatible server.

    tool_mode "json_schema" (default) sends the request's schema as `response_format` json_schema
    (strict): vLLM's structured outputs make every reply parse. tool_mode "named_tool" sends the
    schema as the parameters of one function and names it in `tool_choice` (vLLM guides that too).
    MedGemma has no native tool-call format, so the action is always the reply's JSON.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        tool_mode: ToolMode = "json_schema",
        tool_name: str = "act",
        timeout_s: float = 300.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_concurrency: int = 8,
        vllm_extras: bool = True,
        extra_body: dict[str, Any] | None = None,
        system_in_user: bool = False,
    ) -> None:
        if tool_mode not in ("json_schema", "named_tool"):
            raise ModelError("config", f"tool_mode must be 'json_schema' or 'named_tool', not {tool_mode!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model or '?'}@{self.base_url}"
        self.tool_mode: ToolMode = tool_mode
        self.tool_name = tool_name
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.system_in_user = system_in_user
        self._extra_body: dict[str, Any] = {}
        if vllm_extras:
            # Keep MedGemma's <unused94>/<unused95> thinking markers so the thinking can be split off.
            self._extra_body["skip_special_tokens"] = False
        self._extra_body.update(extra_body or {})
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._model_lock = asyncio.Lock()
        self._client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or "EMPTY",
            timeout=timeout_s,
            max_retries=0,  # retries are ours, with typed errors
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> OpenAICompatBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- model name ------------------------------------------------------------------------

    async def resolve_model(self) -> str:
        """The served model name: the one given, else the server's first model."""
        if self.model:
            return self.model
        async with self._model_lock:
            if not self.model:
                page = await self._with_retries(lambda: self._client.models.list())
                ids = [m.id for m in page.data]
                if not ids:
                    raise ModelError("not_found", "the server lists no models at /v1/models", backend=self.name)
                self.model = ids[0]
                self.name = f"openai:{self.model}@{self.base_url}"
        return self.model

    # -- requests --------------------------------------------------------------------------

    def _payload(self, request: ModelRequest, model: str) -> dict[str, Any]:
        turns = chat_turns(request.messages)
        if self.system_in_user and turns and turns[0]["role"] == "system":
            system = turns.pop(0)["content"]
            if turns and turns[0]["role"] == "user":
                turns[0]["content"] = system + "\n\n" + turns[0]["content"]
            else:
                turns.insert(0, {"role": "user", "content": system})
        payload: dict[str, Any] = {
            "model": model,
            "messages": turns,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = request.stop
        if request.json_schema is not None:
            schema = xgrammar_compatible(request.json_schema)
            if self.tool_mode == "json_schema":
                payload["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "action", "schema": schema, "strict": True},
                }
            else:
                payload["tools"] = [
                    {
                        "type": "function",
                        "function": {
                            "name": self.tool_name,
                            "description": "Take the next action.",
                            "parameters": schema,
                        },
                    }
                ]
                payload["tool_choice"] = {"type": "function", "function": {"name": self.tool_name}}
        if self._extra_body:
            payload["extra_body"] = dict(self._extra_body)
        return payload

    async def complete(self, request: ModelRequest) -> ModelReply:
        model = await self.resolve_model()
        payload = self._payload(request, model)
        async with self._semaphore:
            started = time.perf_counter()
            response = await self._with_retries(lambda: self._client.chat.completions.create(**payload))
            latency = time.perf_counter() - started
        if not response.choices:
            raise ModelError("server", "the reply has no choices", backend=self.name)
        choice = response.choices[0]
        message = choice.message
        content = message.content or ""
        if self.tool_mode == "named_tool" and request.json_schema is not None and message.tool_calls:
            content = message.tool_calls[0].function.arguments or ""
        text, thinking = split_thinking(_strip_end_tokens(content))
        server_thinking = _reasoning_field(message)
        if server_thinking:
            thinking = server_thinking if not thinking else server_thinking + "\n\n" + thinking
        usage = Usage(
            prompt_tokens=response.usage.prompt_tokens if response.usage else 0,
            completion_tokens=response.usage.completion_tokens if response.usage else 0,
        )
        parsed = None
        if request.json_schema is not None:
            if choice.finish_reason == "length" and not _looks_complete(text):
                raise ModelError(
                    "invalid_output",
                    f"the reply was cut at max_tokens={request.max_tokens} before the JSON closed; raise max_tokens",
                    backend=self.name,
                    text=content,
                )
            parsed = parse_json_reply(text, request.json_schema, backend=self.name)
        return ModelReply(
            text=text,
            parsed=parsed,
            usage=usage,
            latency_s=latency,
            raw_thinking=thinking,
            finish_reason=choice.finish_reason,
            model=response.model or model,
        )

    async def stream_complete(self, request: ModelRequest) -> AsyncIterator[str]:
        """Yield the reply's text deltas as they arrive (thinking markers included; no schema check)."""
        model = await self.resolve_model()
        payload = self._payload(request, model)
        async with self._semaphore:
            stream = await self._with_retries(lambda: self._client.chat.completions.create(stream=True, **payload))
            try:
                async for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    piece = delta.content
                    if not piece and delta.tool_calls:
                        piece = delta.tool_calls[0].function.arguments if delta.tool_calls[0].function else None
                    if piece:
                        yield piece
            except Exception as exc:  # noqa: BLE001 - mapped to a typed error
                raise map_openai_error(exc, backend=self.name) from exc
            finally:
                await stream.close()

    async def _with_retries(self, call: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await call()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a ModelError
                error = map_openai_error(exc, backend=self.name)
                if not error.retryable or attempt >= self.max_retries:
                    if attempt:
                        error.args = (f"{error.args[0]} (after {attempt + 1} attempts)",)
                    raise error from exc
                delay = min(self.max_backoff_s, self.backoff_s * (2**attempt))
                retry_after = _retry_after(exc)
                if retry_after is not None:
                    delay = min(self.max_backoff_s, max(delay, retry_after))
                delay *= 1 + random.uniform(0, 0.25)
                log.warning("%s; retrying in %.1fs (attempt %d of %d)", error, delay, attempt + 2, self.max_retries + 1)
                attempt += 1
                await asyncio.sleep(delay)


_END_TOKENS = ("<end_of_turn>", "<eos>", "<|im_end|>", "<|endoftext|>")


def _strip_end_tokens(content: str) -> str:
    """Turn-end tokens that may show when special tokens are kept (skip_special_tokens=False)."""
    stripped = content.rstrip()
    changed = True
    while changed:
        changed = False
        for token in _END_TOKENS:
            if stripped.endswith(token):
                stripped = stripped[: -len(token)].rstrip()
                changed = True
    return stripped


def _reasoning_field(message: Any) -> str | None:
    """Thinking the server already split off (vLLM with --reasoning-parser)."""
    extra = getattr(message, "model_extra", None) or {}
    for key in ("reasoning_content", "reasoning"):
        value = getattr(message, key, None) or extra.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _looks_complete(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return False
    return True


def xgrammar_compatible(schema: dict[str, Any]) -> dict[str, Any]:
    """vLLM's xgrammar backend rejects a string with both a pattern (or format) and length bounds:
    such strings keep the pattern, which bounds them, and lose minLength/maxLength."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: walk(value) for key, value in node.items()}
        if out.get("type") == "string" and {"pattern", "format"} & out.keys():
            out.pop("minLength", None)
            out.pop("maxLength", None)
        return out

    return walk(schema)
