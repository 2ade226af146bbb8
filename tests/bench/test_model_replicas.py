"""``bench run --model URL1,URL2``: the agent's calls are spread over replicas of one model, each a real
HTTP server (the OpenAI stand-in test double), least-in-flight first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from medagent.bench.endpoints import ReplicaBackend, load_endpoints, split_model_spec
from medagent.bench.model_check import ModelUnreachable
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.catalog import make_solver
from medagent.config import UserError
from medagent.fhir.server.process import free_port
from medagent.models.base import ModelReply, ModelRequest, Usage
from tests.bench.openai_stand_in import MODEL, OpenAIStandIn

TASKS = 6
CALLS_PER_TASK = 2  # the stand-in's script: get_patient, then final_answer


async def test_a_run_spreads_its_calls_over_both_replicas(tmp_path: Path, bench_home: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=TASKS)
    with OpenAIStandIn(latency=0.05) as first, OpenAIStandIn(latency=0.05) as second:
        solver = make_solver("agent", f"{first.base_url},{second.base_url}", MODEL, None)
        assert isinstance(solver.backend, ReplicaBackend)
        summary = await run_benchmark(scenarios, solver, out_dir=tmp_path / "run", home=bench_home, concurrency=2,
                                      show_progress=False)
        await solver.backend.aclose()
    assert summary["overall"]["failures"].get("error", 0) == 0, summary["overall"]["failures"]
    assert first.chat_requests > 0 and second.chat_requests > 0, "both replicas served the run"
    assert first.chat_requests + second.chat_requests == TASKS * CALLS_PER_TASK
    assert abs(first.chat_requests - second.chat_requests) <= CALLS_PER_TASK


async def test_every_replica_is_checked_before_the_first_task(tmp_path: Path, bench_home: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=2)
    with OpenAIStandIn() as alive:
        solver = make_solver("agent", f"{alive.base_url},{dead}", MODEL, None)
        with pytest.raises(ModelUnreachable, match=dead.replace(".", r"\.")):
            await run_benchmark(scenarios, solver, out_dir=tmp_path / "run", home=bench_home, show_progress=False)
        await solver.backend.aclose()
    assert alive.chat_requests == 0


class GatedReplica:
    """A unit-test double of a model backend: each call waits until the test opens its gate."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gate = asyncio.Event()
        self.started = 0

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.started += 1
        await self.gate.wait()
        return ModelReply(text=self.name, usage=Usage(prompt_tokens=0, completion_tokens=0), latency_s=0)

    async def aclose(self) -> None:
        return None


async def test_a_call_goes_to_the_replica_with_fewest_in_flight() -> None:
    slow, idle = GatedReplica("slow"), GatedReplica("idle")
    router = ReplicaBackend([slow, idle], start=0)
    request = ModelRequest(messages=[{"role": "user", "content": "hi"}])
    first = asyncio.create_task(router.complete(request))  # round-robin start: slow
    await asyncio.sleep(0)
    second = asyncio.create_task(router.complete(request))  # slow has one in flight: idle
    await asyncio.sleep(0)
    third = asyncio.create_task(router.complete(request))  # one each: round-robin goes on (slow)
    await asyncio.sleep(0)
    assert (slow.started, idle.started) == (2, 1)
    idle.gate.set()
    assert (await second).text == "idle"
    fourth = asyncio.create_task(router.complete(request))  # slow has two in flight, idle none
    await asyncio.sleep(0)
    assert (slow.started, idle.started) == (2, 2)
    slow.gate.set()
    assert [(await t).text for t in (first, third, fourth)] == ["slow", "slow", "idle"]
    assert router.calls == [2, 2] and router.in_flight == [0, 0]


def test_bad_endpoint_lists_are_user_errors() -> None:
    with pytest.raises(UserError, match="empty endpoint"):
        split_model_spec("http://a:8000/v1,")
    with pytest.raises(UserError, match="embedded"):
        split_model_spec("http://a:8000/v1,embedded")
    assert split_model_spec("embedded") == ["embedded"]
    assert not isinstance(load_endpoints("http://127.0.0.1:9/v1", MODEL), ReplicaBackend)
