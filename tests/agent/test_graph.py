"""The LangGraph agent loop driven by ScriptedPolicy (a test policy) over the real tools and server."""

from __future__ import annotations

import asyncio

import httpx

from medagent.agent.actions import action_schema
from medagent.agent.graph import Agent
from medagent.agent.state import Limits
from medagent.fhir.client import FhirClient
from medagent.models.base import ModelError, ModelRequest
from medagent.models.scripted import ScriptedPolicy
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, call, final


def agent(policy: ScriptedPolicy, registry: Registry, client: FhirClient, **limits: float) -> Agent:
    return Agent(model=policy, registry=registry, client=client, limits=Limits(**limits))  # type: ignore[arg-type]


async def test_loop_calls_tools_then_answers_with_citations(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([
        call("find_patients", name="Hartmann"),
        call("get_patient", patient=PATIENT),
        final("1949-11-29", f"Patient/{PATIENT}"),
    ])
    result = await agent(policy, registry, client).run("When was Adalberto Hartmann born?", now=NOW)
    assert result.status == "answered"
    assert result.answer == "1949-11-29"
    assert result.citations == [f"Patient/{PATIENT}"]
    assert result.steps == 2
    assert [s.tool for s in result.trace] == ["find_patients", "get_patient", "final_answer"]
    assert PATIENT in result.trace[0].result
    assert "1949-11-29" in result.trace[1].result
    # the model saw the first tool's output before choosing the second call
    assert PATIENT in policy.requests[1].messages[-1].content
    # every request carries the scenario's clock and the constrained action schema
    assert NOW in policy.requests[0].messages[0].content
    assert policy.requests[0].json_schema == action_schema(registry, citable=[])
    # what may be cited grows with what was read: nothing at first, then the records the tools returned
    def citations_rule(request):
        return request.json_schema["anyOf"][-1]["properties"]["arguments"]["properties"]["citations"]
    assert citations_rule(policy.requests[0])["maxItems"] == 0
    assert f"Patient/{PATIENT}" in citations_rule(policy.requests[-1])["items"]["enum"]
    assert policy.requests[0].json_schema is not None and len(policy.requests[0].json_schema["anyOf"]) == len(registry) + 1


async def test_malformed_replies_are_reasked_then_fail_cleanly(registry: Registry, client: FhirClient) -> None:
    recovered = await agent(ScriptedPolicy(["not json at all", final("no")]), registry, client).run("q?", now=NOW)
    assert recovered.status == "answered" and recovered.answer == "no"
    assert recovered.trace[0].error == "it is not a JSON object"

    unknown_tool = ScriptedPolicy([call("drop_database"), final("done")])
    result = await agent(unknown_tool, registry, client).run("q?", now=NOW)
    assert result.status == "answered"
    assert "no tool named 'drop_database'" in unknown_tool.requests[1].messages[-1].content

    broken = ScriptedPolicy(["{", "[]", '{"tool": 3}'])
    failed = await agent(broken, registry, client, max_invalid_replies=2).run("q?", now=NOW)
    assert failed.status == "invalid_output"
    assert failed.answer is None and "could not be parsed 3 times" in (failed.error or "")


async def test_bad_tool_arguments_come_back_as_tool_errors(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([call("get_patient", patient=PATIENT, bogus=1), final("x"), final("x")])
    result = await agent(policy, registry, client).run("q?", now=NOW)
    assert result.status == "answered"
    assert "unknown argument" in (result.trace[0].error or "")
    assert "ERROR" in policy.requests[1].messages[-1].content
    # nothing read yet: the answer is asked for once more, after a read (guards.failed_before_reading)
    assert "nothing has been read" in (result.trace[1].error or "") and result.answer == "x"


async def test_step_limit_ends_the_run(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy(lambda request: call("get_patient", patient=PATIENT))
    result = await agent(policy, registry, client, max_steps=3).run("loop forever", now=NOW)
    assert result.status == "step_limit"
    assert result.steps == 3 and len(policy.requests) == 3


async def test_token_budget_ends_the_run(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy(lambda request: call("get_patient", patient=PATIENT))
    result = await agent(policy, registry, client, max_tokens=1500).run("loop", now=NOW)
    assert result.status == "token_budget"
    assert result.prompt_tokens + result.completion_tokens >= 1500


async def test_timeout_ends_a_hanging_model_call(registry: Registry, client: FhirClient) -> None:
    async def hang(request: ModelRequest) -> dict[str, object]:
        await asyncio.sleep(30)
        return final("late")

    result = await agent(ScriptedPolicy(hang), registry, client, timeout_s=0.5).run("q?", now=NOW)
    assert result.status == "timeout"


async def test_model_errors_end_the_run_with_a_status(registry: Registry, client: FhirClient) -> None:
    down = ScriptedPolicy([ModelError("connection", "vLLM is down", backend="openai")])
    result = await agent(down, registry, client).run("q?", now=NOW)
    assert result.status == "model_error" and "vLLM is down" in (result.error or "")


async def test_patient_context_fills_a_missing_patient_argument(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([call("get_patient", patient=""), final("1949-11-29")])
    result = await agent(policy, registry, client).run("When was the patient born?", now=NOW, patient=PATIENT)
    assert result.trace[0].arguments["patient"] == f"Patient/{PATIENT}"
    assert result.trace[0].note == "patient filled from the run's patient context"
    assert "1949-11-29" in (result.trace[0].result or "")
    other = ScriptedPolicy([call("get_patient", patient="nobody-here"), final("x")])
    kept = await agent(other, registry, client).run("q", now=NOW, patient=PATIENT)
    assert kept.trace[0].arguments["patient"] == "nobody-here"  # an explicit choice is never overridden
    assert kept.trace[0].error


async def test_last_step_and_repeated_calls_only_allow_a_final_answer(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([call("get_patient", patient=PATIENT), final("1949-11-29")])
    result = await agent(policy, registry, client, max_steps=2).run("q", now=NOW, patient=PATIENT)
    assert result.status == "answered"
    first, last = policy.requests
    # every tool and the final answer, less find_patients: the patient is in context and "q" names no one else
    assert len(first.json_schema["anyOf"]) == len(registry)
    assert [o["properties"]["tool"]["const"] for o in last.json_schema["anyOf"]] == ["final_answer"]
    assert "last step" in last.messages[-1].content

    looping = ScriptedPolicy([call("get_patient", patient=PATIENT), call("get_patient", patient=PATIENT), final("x")])
    await agent(looping, registry, client, max_steps=10).run("q", now=NOW, patient=PATIENT)
    assert "repeated the same tool call" in looping.requests[2].messages[-1].content
    assert len(looping.requests[2].json_schema["anyOf"]) == 1


async def test_each_run_brings_its_own_client_and_context(registry: Registry, fhir_url: str) -> None:
    """One compiled agent serves several servers: a run's tool calls go to the client of that run."""
    policy = ScriptedPolicy([call("get_patient", patient=PATIENT), final("1949-11-29"),
                             call("get_patient", patient=PATIENT), final("unknown")])
    shared = Agent(model=policy, registry=registry)  # type: ignore[arg-type]
    async with FhirClient(fhir_url) as live, FhirClient("http://127.0.0.1:9", retries=0, timeout=2) as dead:
        first = await shared.run("born?", now=NOW, patient=PATIENT, run_id="r-live", client=live)
        second = await shared.run("born?", now=NOW, patient=PATIENT, run_id="r-dead", client=dead)
    assert "1949-11-29" in (first.trace[0].result or "")
    assert "could not be reached" in (second.trace[0].error or "")
    assert shared._contexts == {}  # finished runs leave no context behind


class CountingTransport(httpx.AsyncBaseTransport):
    """Real HTTP to the real server; it only counts the requests (to see what the run context caches)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_one_run_context_per_run_caches_the_patient_across_steps(registry: Registry, fhir_url: str) -> None:
    transport = CountingTransport()
    policy = ScriptedPolicy([call("search_conditions", patient=PATIENT, text="hypertension"),
                             call("search_medications", patient=PATIENT), final("done")])
    async with FhirClient(fhir_url, transport=transport) as counted:
        result = await agent(policy, registry, counted).run("conditions and medications?", now=NOW, patient=PATIENT)
    assert result.status == "answered" and [s.tool for s in result.trace][:2] == ["search_conditions",
                                                                                   "search_medications"]
    assert all(s.error is None for s in result.trace)
    assert transport.paths.count(f"/Patient/{PATIENT}") == 1  # read once per run, not once per step


async def test_a_run_with_stated_limits_keeps_them_and_the_agent_keeps_its_own(registry: Registry,
                                                                               client: FhirClient) -> None:
    """A task's stated limits (workflow: 40 steps) replace the agent's for that run only."""
    from medagent.bench.solvers.agent import limits_for
    from medagent.scenarios.models import ExpectedAnswer, Scenario, StatedLimits

    calls = [call("get_patient", patient=PATIENT) if i % 2 else call("find_patients", name="Hartmann")
             for i in range(6)]
    base = agent(ScriptedPolicy([*calls, final("done")]), registry, client, max_steps=3)
    stated = base.limits.stated(max_steps=8, max_tokens=500_000)
    longer = await base.run("q?", now=NOW, limits=stated)
    assert longer.status == "answered" and longer.steps == 6, "the stated 8 steps allow six calls"
    again = agent(ScriptedPolicy([*calls, final("done")]), registry, client, max_steps=3)
    short = await again.run("q?", now=NOW)
    assert short.steps <= 3 < longer.steps, "without stated limits the agent's own 3 apply"
    assert base.limits.max_steps == 3
    scenario = Scenario(id="x", suite="agentic", category="c", patient=PATIENT, now=NOW, question="q",
                        answer=ExpectedAnswer(type="none"), limits=StatedLimits(max_steps=40, max_tokens=300_000))
    assert limits_for(scenario, base.limits).max_steps == 40 and limits_for(scenario, base.limits).timeout_s == \
        base.limits.timeout_s
    assert limits_for(scenario.model_copy(update={"limits": None}), base.limits) is base.limits
