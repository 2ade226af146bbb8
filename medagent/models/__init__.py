"""How a model is called: an OpenAI-compatible server (vLLM) or an embedded CPU model, behind one interface."""

from medagent.models.base import (
    ChatMessage,
    ModelBackend,
    ModelError,
    ModelReply,
    ModelRequest,
    Usage,
    load_backend,
    split_thinking,
)

__all__ = [
    "ChatMessage",
    "ModelBackend",
    "ModelError",
    "ModelReply",
    "ModelRequest",
    "Usage",
    "load_backend",
    "split_thinking",
]
