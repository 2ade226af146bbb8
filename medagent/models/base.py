"""The one model interface the agent sees: a request of chat messages (optionally JSON-schema constrained) in, a reply out."""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from medagent.untrusted_text import neutralize_control_tokens

Role = Literal["system", "user", "assistant", "tool"]
PromptProfile = Literal[
    "full", "compact"
]  # the agent's system prompts (medagent.agent.prompts); an adapter records its own


class ChatMessage(BaseModel):
    role: Role
    content: str


class ModelRequest(BaseModel):
    messages: list[ChatMessage]
    json_schema: dict[str, Any] | None = Field(
        None,
        description="Constrain the reply to this JSON schema (the agent passes the union of tool-call actions and the final answer).",
    )
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    stop: list[str] | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ModelReply(BaseModel):
    text: str = Field(description="The answer with any thinking block removed.")
    parsed: dict[str, Any] | None = Field(None, description="The JSON reply, when the request had a json_schema.")
    usage: Usage
    latency_s: float
    raw_thinking: str | None = Field(None, description="The removed thinking block, if the model wrote one.")
    finish_reason: str | None = None
    model: str | None = None


ErrorKind = Literal[
    "config",  # bad spec/options, unknown model
    "connection",  # server unreachable
    "timeout",
    "rate_limit",  # 429
    "server",  # 5xx
    "bad_request",  # 400/422: the request itself is wrong (e.g. schema the server rejects)
    "context_length",  # prompt + max_tokens exceed the model's context
    "auth",  # 401/403
    "not_found",  # 404: wrong base URL or model name
    "invalid_output",  # reply does not parse / validate against the schema
    "model_load",  # local weights missing or failed to load
]

_RETRYABLE: frozenset[str] = frozenset({"connection", "timeout", "rate_limit", "server"})


class ModelError(RuntimeError):
    """A model call failed; `kind` says why, `retryable` whether the same call may succeed later."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        backend: str | None = None,
        status_code: int | None = None,
        text: str | None = None,
    ) -> None:
        self.kind: ErrorKind = kind
        self.backend = backend
        self.status_code = status_code
        self.text = text  # the raw reply, for invalid_output
        where = f"[{backend}] " if backend else ""
        code = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{where}{kind}{code}: {message}")

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE


@runtime_checkable
class ModelBackend(Protocol):
    name: str

    async def complete(self, request: ModelRequest) -> ModelReply: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Helpers shared by the backends
# ---------------------------------------------------------------------------------------------

# MedGemma 27B text-it thinks as "<unused94>thought\n...<unused95>"; other models use <think>...</think>.
_THINKING_PATTERNS: tuple[tuple[str, str], ...] = (
    ("<unused94>", "<unused95>"),
    ("<think>", "</think>"),
)


def split_thinking(text: str) -> tuple[str, str | None]:
    """Remove thinking blocks from a reply; return (answer, thinking or None).

    Handles MedGemma's `<unused94>thought ... <unused95>` and `<think> ... </think>`, several blocks, a
    closing tag without an opening one (the opening tag was in the prompt), and an unterminated block
    (the reply ran out of tokens while thinking: all of it is thinking, the answer is empty).
    """
    thoughts: list[str] = []
    answer = text
    for open_tag, close_tag in _THINKING_PATTERNS:
        if open_tag not in answer and close_tag not in answer:
            continue
        # A close tag before any open tag: everything before it was thinking.
        first_close = answer.find(close_tag)
        first_open = answer.find(open_tag)
        if first_close != -1 and (first_open == -1 or first_close < first_open):
            thoughts.append(answer[:first_close])
            answer = answer[first_close + len(close_tag) :]
        pattern = re.compile(re.escape(open_tag) + r"(.*?)" + re.escape(close_tag), re.DOTALL)
        thoughts.extend(m.group(1) for m in pattern.finditer(answer))
        answer = pattern.sub("", answer)
        dangling = answer.find(open_tag)
        if dangling != -1:
            thoughts.append(answer[dangling + len(open_tag) :])
            answer = answer[:dangling]
    if not thoughts:
        return text.strip(), None
    cleaned = [_strip_thought_label(t) for t in thoughts]
    return answer.strip(), "\n\n".join(t for t in cleaned if t) or ""


def _strip_thought_label(thought: str) -> str:
    thought = thought.strip()
    if thought.startswith("thought\n") or thought == "thought":
        thought = thought[len("thought") :]
    return thought.strip()


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_json_reply(text: str, schema: dict[str, Any], *, backend: str | None = None) -> dict[str, Any]:
    """Parse a constrained reply and check it against the schema; ModelError('invalid_output') if it does not fit."""
    candidate = text.strip()
    fenced = _FENCE.match(candidate)
    if fenced:
        candidate = fenced.group(1)
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise ModelError(
            "invalid_output",
            f"reply is not JSON ({exc.msg} at char {exc.pos}): {_preview(text)}",
            backend=backend,
            text=text,
        ) from None
    if not isinstance(value, dict):
        raise ModelError(
            "invalid_output", f"reply is JSON but not an object: {_preview(text)}", backend=backend, text=text
        )
    problem = schema_violation(value, schema)
    if problem is not None:
        raise ModelError("invalid_output", f"reply does not match the schema: {problem}", backend=backend, text=text)
    return value


def schema_violation(value: Any, schema: dict[str, Any]) -> str | None:
    """The first JSON-schema violation of value, or None when it fits (or jsonschema is not installed)."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema is a dependency of the models extra
        return None
    validator_cls = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(value))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{path}: {_preview(error.message, 300)}"  # an enum of citable records may be long


def _preview(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def chat_turns(messages: list[ChatMessage], *, tool_prefix: str = "Tool result:\n") -> list[dict[str, str]]:
    """Messages as turns a model without a tool role accepts (MedGemma, Gemma).

    One leading system message is kept; later system messages and tool results become user turns
    (tool results prefixed with `tool_prefix`); consecutive turns of the same role are merged so the
    conversation alternates user/assistant as the Gemma chat template requires. Every content passes
    :func:`~medagent.untrusted_text.neutralize_control_tokens` (both backends build their turns here): text
    holding ``<end_of_turn>`` or ``<start_of_turn>`` cannot become those tokens, whatever route it took.
    """
    turns: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        role: str = message.role
        content = neutralize_control_tokens(message.content)
        if role == "system" and index == 0:
            turns.append({"role": "system", "content": content})
            continue
        if role == "tool":
            role, content = "user", tool_prefix + content
        elif role == "system":
            role = "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + content
        else:
            turns.append({"role": role, "content": content})
    return turns


# ---------------------------------------------------------------------------------------------
# Factory
# ---------------------------------------------------------------------------------------------


def load_backend(spec: str, model_name: str | None = None, **opts: Any) -> ModelBackend:
    """The backend a ``--model`` spec names (the registry of :mod:`medagent.models.backends`): "embedded", an
    OpenAI-compatible base URL, or a kind a plug-in registers."""
    from medagent.models.backends import load_backend as load

    return load(spec, model_name, **opts)
