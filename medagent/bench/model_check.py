"""One check before the first task of a scored run: a model server that does not answer fails the run
at once (a clear error, recorded in run.json), instead of every task retrying a dead model and being
scored as a wrong answer."""

from __future__ import annotations

from typing import Any

import httpx

from medagent.bench.endpoints import endpoint_urls
from medagent.config import UserError

CHECK_TIMEOUT_S = 10.0


class ModelUnreachable(UserError):
    """The run's model server did not answer the check before the first task."""


async def check_model_reachable(solver: Any, *, timeout: float = CHECK_TIMEOUT_S) -> None:
    """``GET <base_url>/models`` of each endpoint of an agent's OpenAI-compatible backend; any HTTP answer below 500 counts as
    reachable (a 401 still means the server is up). Solvers without a model server (code solvers, the
    embedded model) pass."""
    await check_backend_reachable(getattr(solver, "backend", None), timeout=timeout)


async def check_backend_reachable(backend: Any, *, timeout: float = CHECK_TIMEOUT_S) -> None:
    """The same check for a model backend itself (``medagent ask`` checks its ``--model`` before a run starts)."""
    for base_url in endpoint_urls(backend):
        if base_url.startswith(("http://", "https://")):
            await _check_url(base_url, timeout)


async def _check_url(base_url: str, timeout: float) -> None:
    url = f"{base_url.rstrip('/')}/models"
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        raise ModelUnreachable(
            f"--model {base_url}: the model server cannot be reached ({type(exc).__name__}: "
            f"{exc}); start it (tools/serve_vllm.sh) or pass another --model. Nothing was run."
        ) from None
    if response.status_code >= 500:
        raise ModelUnreachable(
            f"--model {base_url}: the model server answered {response.status_code} to GET {url}; nothing was run"
        )
