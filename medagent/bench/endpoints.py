"""Several endpoints of one model (``bench run --model URL1,URL2``): each call goes to the replica with the
fewest calls in flight, ties broken round-robin, so vLLM replicas share the load."""

from __future__ import annotations

import random
from typing import Any

from medagent.config import UserError
from medagent.models.base import ModelBackend, ModelReply, ModelRequest, load_backend


class ReplicaBackend:
    """A model backend over several replicas (the same model served several times): least-in-flight routing.

    ``calls`` counts what each replica was sent. The round-robin start is random, so separate processes
    (Ray actors, each with its own router) do not all begin on the first replica."""

    def __init__(self, replicas: list[ModelBackend], *, start: int | None = None) -> None:
        if len(replicas) < 2:
            raise ValueError("ReplicaBackend needs two or more replicas")
        self.replicas = replicas
        self.in_flight = [0] * len(replicas)
        self.calls = [0] * len(replicas)
        self._next = random.randrange(len(replicas)) if start is None else start % len(replicas)
        self.name = "replicas[" + ", ".join(r.name for r in replicas) + "]"

    @property
    def base_urls(self) -> list[str]:
        return [url for r in self.replicas if isinstance(url := getattr(r, "base_url", None), str)]

    def _pick(self) -> int:
        count = len(self.replicas)
        order = [(self._next + offset) % count for offset in range(count)]
        chosen = min(order, key=lambda index: self.in_flight[index])  # min keeps the first of equals
        self._next = (chosen + 1) % count
        return chosen

    async def complete(self, request: ModelRequest) -> ModelReply:
        index = self._pick()
        self.in_flight[index] += 1
        self.calls[index] += 1
        try:
            return await self.replicas[index].complete(request)
        finally:
            self.in_flight[index] -= 1

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.aclose()


def split_model_spec(spec: str) -> list[str]:
    """``--model``: one spec, or comma-separated OpenAI-compatible base URLs (replicas of one model)."""
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) == 1:
        return parts
    if any(not part for part in parts):
        raise UserError(f"--model {spec!r}: an empty endpoint in the comma-separated list")
    bad = [part for part in parts if not part.startswith(("http://", "https://"))]
    if bad:
        raise UserError(f"--model: several endpoints must all be http(s) base URLs of one model; not {', '.join(bad)}")
    return parts


def load_endpoints(spec: str, model_name: str | None = None, **opts: Any) -> ModelBackend:
    """The backend for ``--model``: one backend, or a :class:`ReplicaBackend` over comma-separated URLs."""
    specs = split_model_spec(spec)
    if len(specs) == 1:
        return load_backend(specs[0], model_name, **opts)
    return ReplicaBackend([load_backend(url, model_name, **opts) for url in specs])


def endpoint_urls(backend: Any) -> list[str]:
    """Every HTTP base URL a backend calls (one, several replicas, or none for an embedded model)."""
    urls = getattr(backend, "base_urls", None)
    if isinstance(urls, list):
        return urls
    url = getattr(backend, "base_url", None)
    return [url] if isinstance(url, str) else []
