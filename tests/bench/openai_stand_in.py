"""A test double of an OpenAI-compatible model server (NOT a model): a real HTTP server (Starlette on uvicorn,
in a thread) that answers ``/v1/models`` and ``/v1/chat/completions`` from a fixed script after a fixed
latency: one ``get_patient`` call for the patient the question names, then a final answer. It counts the
chat requests it served, so a test can see where a run's calls went. Failure modes: ``die_after=k`` answers k chat
requests, then fails every later one (503) and stops (later calls find nothing listening, as after a crash);
``hang=True`` accepts every chat request and never answers (``/v1/models`` still answers)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from medagent.agent.answer_format import YES_NO_PATTERN
from medagent.fhir.server.process import free_port

MODEL = "stand-in"


def _patterns(node: Any) -> Iterator[str]:
    """Every string pattern a JSON schema holds."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def scripted_action(messages: list[dict[str, Any]], response_format: Any = None) -> dict[str, Any]:
    """The script; its answer is "No" where the request's grammar holds the answer to yes or no (a server decoding
    under it could write nothing else, and the agent asks a yes/no question again until it starts so), else
    "unknown"."""
    text = "\n".join(m["content"] for m in messages)
    if "[result of get_patient]" in text:
        answer = "No" if YES_NO_PATTERN in set(_patterns(response_format)) else "unknown"
        return {"tool": "final_answer", "arguments": {"answer": answer, "citations": []}}
    found = re.search(r"Patient/([A-Za-z0-9\-.]+)", text)  # the system prompt names the patient in context
    return {"tool": "get_patient", "arguments": {"patient": found.group(1).rstrip(".") if found else ""}}


class OpenAIStandIn:
    """``with OpenAIStandIn(latency=0.05) as model: model.base_url, model.chat_requests``"""

    def __init__(self, *, latency: float = 0.0, die_after: int | None = None, hang: bool = False,
                 port: int | None = None) -> None:
        self.latency = latency
        self.die_after = die_after
        self.hang = hang
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.chat_requests = 0
        app = Starlette(routes=[Route("/v1/models", self._models), Route("/v1/chat/completions", self._chat,
                                                                          methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"stand-in-{self.port}")

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.chat_requests += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.die_after is not None and self.chat_requests > self.die_after:
            self._server.should_exit = True  # a dying server: this and every later call fails, then nothing listens
            return JSONResponse({"error": {"message": "the model server is going away"}}, status_code=503)
        await asyncio.sleep(self.latency)
        content = json.dumps(scripted_action(body["messages"], body.get("response_format")))
        return JSONResponse({
            "id": f"chatcmpl-{self.chat_requests}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", MODEL),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        })

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the OpenAI stand-in did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
