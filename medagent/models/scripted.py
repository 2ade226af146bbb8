"""ScriptedPolicy: a deterministic TEST POLICY, not a model. It replays scripted replies.

Used by graph unit tests and by policies written in code (the oracle, the wrong policies) that
speak to the agent through the same model interface as a real model.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from medagent.models.base import ModelError, ModelReply, ModelRequest, Usage

Reply = str | dict[str, Any] | Exception
Script = list[Reply] | Callable[[ModelRequest], Awaitable[Reply] | Reply]


class ScriptedPolicy:
    """Returns the next scripted reply per call (a dict becomes JSON text; an Exception is raised)."""

    name = "scripted"

    def __init__(self, script: Script) -> None:
        self._script = script
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        started = time.perf_counter()
        self.requests.append(request)
        if callable(self._script):
            reply = self._script(request)
            if isinstance(reply, Awaitable):
                reply = await reply
        elif self._script:
            reply = self._script.pop(0)
        else:
            raise ModelError("invalid_output", "scripted policy ran out of replies", backend=self.name)
        if isinstance(reply, Exception):
            raise reply
        text = reply if isinstance(reply, str) else orjson.dumps(reply).decode()
        parsed = reply if isinstance(reply, dict) else None
        prompt_tokens = sum(len(m.content) for m in request.messages) // 4
        return ModelReply(
            text=text,
            parsed=parsed,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text) // 4),
            latency_s=time.perf_counter() - started,
            model="scripted",
        )

    async def aclose(self) -> None:
        return None
