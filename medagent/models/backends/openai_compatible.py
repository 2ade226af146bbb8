"""The ``http(s)://`` spec: an OpenAI-compatible server (vLLM serving MedGemma, or any chat-completions API)."""

from __future__ import annotations

from typing import Any

from medagent.models.backends import BackendKind, register_backend
from medagent.models.base import ModelBackend


def _claims(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def _load(spec: str, model_name: str | None = None, **opts: Any) -> ModelBackend:
    from medagent.models.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(base_url=spec, model=model_name, **opts)


BACKEND = register_backend(
    BackendKind(
        name="openai-compatible",
        claims=_claims,
        load=_load,
        usage="an OpenAI-compatible base URL such as http://127.0.0.1:8000/v1",
    )
)
