"""The agent loop as a LangGraph StateGraph: decide (model) -> approve (writes) -> act (tool) -> decide.

Not a fixed pipeline: the model chooses each next tool from what it has read, so it can follow
references, narrow by date and ask for more data. Writes pass an approval node that asks the run's
approval policy (``medagent.tools.approval``); an escalated write pauses the run with a LangGraph
interrupt until a reviewer decides. With a checkpointer that outlives the process (SQLite: ``medagent run``,
``medagent serve``) every step is checkpointed synchronously (``durability="sync"``), so a run whose process
is killed resumes from its last finished step; with the in-memory default, whose checkpoints die with the
process, a run is checkpointed when it stops (``"exit"``: finished, paused for a reviewer, or failed), which
is all an in-process :meth:`Agent.resume` reads, at a fraction of the cost per step.

One run context (:class:`~medagent.tools.context.ToolContext`) per run: created when the run starts,
rebuilt from the checkpointed ``run_id``/``now``/``patient``/``actor`` when a run resumes in another
process, and passed to every tool call; its audit entries are checkpointed with the trace.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Durability, interrupt

from medagent.agent.actions import FINAL_ANSWER, action_schema, final_answer_schema, parse_action, with_final_answer
from medagent.agent.answer_format import answer_pattern
from medagent.agent.guards import (
    NOTHING_READ,
    PATIENT_SEARCH,
    failed_before_reading,
    final_answer_problem,
    patient_in_context_refusal,
    search_closed,
)
from medagent.agent.patient_mentions import patient_name_parts, without_patient_name
from medagent.agent.prompts import (
    PromptProfile,
    decision_messages,
    invalid_reply_message,
    must_answer_reason,
    tool_result_message,
    tools_block,
)
from medagent.agent.state import FINAL_STATUSES, AgentResult, AgentState, Limits
from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirClientError
from medagent.models.base import ChatMessage, ModelBackend, ModelError, ModelRequest
from medagent.tools.approval import ApprovalDecision, ApprovalMode, ApprovalPolicy, WriteRequest, approval_policy
from medagent.tools.context import ToolContext
from medagent.tools.registry import Registry, Tool, ToolError, ToolResult, default_registry
from medagent.tools.search_args import require_patient
from medagent.trajectory import Step
from medagent.vocabulary import parse_instant

INTERRUPTS = "__interrupt__"  # where a paused run's output holds its interrupts (LangGraph's human-in-the-loop docs)


@dataclass
class Agent:
    """A tool-using EHR agent: one model backend, its tools, limits and a write policy.

    ``Agent(model, tools=[...], client=...)``: ``tools`` are :class:`~medagent.tools.registry.Tool` objects
    (``@tool`` functions) or a :class:`Registry` (default: every medagent tool, ``default_registry()``);
    ``registry=`` is the same as ``tools=`` given a Registry. ``approval`` (a mode name or an
    :class:`ApprovalPolicy`): ``auto`` approves writes (benchmark runs), ``ask`` pauses the run with a LangGraph
    interrupt until :meth:`resume` gives a decision, ``refuse`` is read-only mode. ``client`` is the default FHIR
    client; a run may bring its own (one compiled agent serves many servers).
    """

    model: ModelBackend
    tools: Iterable[Tool] | Registry | None = None
    client: FhirClient | None = None
    limits: Limits = field(default_factory=Limits)
    approval: ApprovalMode | ApprovalPolicy = "refuse"
    checkpointer: BaseCheckpointSaver | None = None
    tool_names: list[str] | None = None
    actor: str = "medagent"
    few_shot: bool = False  # prepend prompts.EXAMPLE_TURNS (base models copy them verbatim; off by default)
    # "full" or "compact" (prompts.PROMPT_PROFILES); None: the model's preferred_profile (a trained adapter
    # records the one it was trained with), else "full"
    prompt_profile: PromptProfile | None = None
    # the agent's tools as a Registry: ``registry=`` given, else built from ``tools`` in __post_init__
    registry: Registry = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.registry is None:
            if self.tools is None:
                self.registry = default_registry()
            else:
                self.registry = self.tools if isinstance(self.tools, Registry) else Registry(self.tools)
        self.checkpointer = self.checkpointer or InMemorySaver()
        # per-step checkpoints only where they can outlive the process (see the module docstring)
        self.durability: Durability = "exit" if isinstance(self.checkpointer, InMemorySaver) else "sync"
        self.prompt_profile = self.prompt_profile or getattr(self.model, "preferred_profile", None) or "full"
        self.profile: PromptProfile = self.prompt_profile  # the one used (the field stays Optional for callers)
        self.approval_policy = approval_policy(self.approval)
        self._tools = self.registry.openai_schemas(self.tool_names)
        self._tools_text = tools_block(self._tools, self.profile)  # the system prompt's tool list, the same every step
        # the tool actions without and with a patient in context, and with one whose search is closed (no
        # find_patients: guards.search_closed); the final answer is added per step
        names = self.tool_names if self.tool_names is not None else self.registry.names
        self._searches = PATIENT_SEARCH in names
        self._writes = frozenset(item.name for item in self.registry.select(self.tool_names) if item.writes)
        self._tool_actions = {
            in_context: action_schema(self.registry, self.tool_names, final_answer=False, patient_in_context=in_context)
            for in_context in (False, True)
        }
        self._closed_actions = action_schema(
            self.registry, [n for n in names if n != PATIENT_SEARCH], final_answer=False, patient_in_context=True
        )
        self._contexts: dict[str, ToolContext] = {}  # run id -> the run context of a run in progress
        self._run_limits: dict[str, Limits] = {}  # run id -> limits stated for that run
        self.graph = self._build().compile(checkpointer=self.checkpointer)

    # public API ---------------------------------------------------------------------------
    async def run(
        self,
        question: str,
        *,
        now: datetime | str,
        patient: str | None = None,
        run_id: str | None = None,
        client: FhirClient | None = None,
        limits: Limits | None = None,
    ) -> AgentResult:
        """Answer one question (or do one task) at the scenario's clock ``now`` (on ``client``, else the agent's);
        ``limits``: this run's limits in place of the agent's (a task that states its own)."""
        run_id = run_id or str(uuid.uuid4())
        if limits is not None:
            self._run_limits[run_id] = limits
        now_text = now.isoformat() if isinstance(now, datetime) else now
        self._contexts[run_id] = self._new_context(run_id, parse_instant(now_text), patient, self.actor, client)
        initial: AgentState = {
            "run_id": run_id,
            "actor": self.actor,
            "question": question,
            "patient": patient,
            "now": now_text,
            "started_at": time.time(),
            "paused_s": 0.0,
            "messages": [{"role": "user", "content": question}],
            "trace": [],
            "audit": [],
            "steps": 0,
            "invalid_replies": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "pending": None,
            "answer": None,
            "citations": [],
            "status": "running",
            "error": None,
        }
        if limits is not None:
            initial["limits"] = limits.model_dump()
        if patient:
            initial.update(await self._patient_facts(self._contexts[run_id], question))  # type: ignore[typeddict-item]
        return await self._invoke(initial, run_id)

    def limits_of(self, state: AgentState) -> Limits:
        """The run's limits: those it was started with (kept in its state, so a resumed run has them too)."""
        run_id = state.get("run_id", "")
        if run_id not in self._run_limits and state.get("limits"):
            self._run_limits[run_id] = Limits.model_validate(state["limits"])
        return self._run_limits.get(run_id, self.limits)

    async def pending(self, run_id: str) -> WriteRequest | None:
        """The write a paused run waits on (None: the run is not waiting for a decision)."""
        snapshot = await self.graph.aget_state(self._config(run_id))
        return WriteRequest.model_validate(snapshot.interrupts[0].value) if snapshot.interrupts else None

    async def resume(
        self,
        run_id: str,
        *,
        approve: bool | None = None,
        reason: str = "",
        decision: ApprovalDecision | None = None,
        client: FhirClient | None = None,
    ) -> AgentResult:
        """Continue a run: after a crash (from its last checkpoint) or with a reviewer's write decision
        (``decision``, or ``approve`` with an optional ``reason``)."""
        config = self._config(run_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise KeyError(f"no checkpointed run {run_id!r}")
        if client is not None or run_id not in self._contexts:
            values = snapshot.values
            self._contexts[run_id] = self._new_context(
                run_id, parse_instant(values["now"]), values.get("patient"), values.get("actor", self.actor), client
            )
        if decision is None and approve is not None:
            decision = ApprovalDecision.reviewer(approve, reason)
        if snapshot.interrupts:
            if decision is None:
                return self._result(run_id, snapshot.values, snapshot.interrupts)
            return await self._invoke(Command(resume=decision.model_dump()), run_id)
        if not snapshot.next:
            return self._result(run_id, snapshot.values, ())
        return await self._invoke(None, run_id)

    # graph --------------------------------------------------------------------------------
    def _build(self) -> StateGraph:
        builder = StateGraph(AgentState)
        builder.add_node("decide", self._decide)
        builder.add_node("approve", self._approve)
        builder.add_node("review", self._review)
        builder.add_node("act", self._act)
        builder.add_edge(START, "decide")
        builder.add_conditional_edges("decide", self._after_decide, ["decide", "approve", "act", END])
        builder.add_conditional_edges("approve", self._after_approve, ["review", "act"])
        builder.add_edge("review", "act")
        builder.add_edge("act", "decide")
        return builder

    # the routing functions are coroutines: LangGraph runs a plain function routing an async graph on a thread of
    # the default executor (a thread hop and a context copy at every step)
    async def _after_decide(self, state: AgentState) -> str:
        if state.get("status") != "running":
            return END
        if not state.get("pending"):
            return "decide"  # the reply was unusable: ask again
        pending = state.get("pending")
        assert pending is not None
        return "approve" if self.registry[pending["tool"]].writes else "act"

    async def _decide(self, state: AgentState) -> dict[str, Any]:
        stop = self._limit_reached(state)
        if stop:
            return {"status": stop}
        remaining = self.limits_of(state).timeout_s - self._elapsed(state)
        must_answer = self._must_answer(state)
        messages = [
            ChatMessage(**m)
            for m in decision_messages(
                now=state["now"],
                patient=state.get("patient"),
                tools=self._tools,
                history=state["messages"],
                profile=self.profile,
                few_shot=self.few_shot,
                must_answer=must_answer,
                tools_text=self._tools_text,
            )
        ]
        seen = [r for step in state.get("trace", []) for r in [*step.get("references", []), *step.get("wrote", [])]]
        shape = answer_pattern(state.get("question") or "")
        read_first = not must_answer and failed_before_reading(
            state.get("trace", []), self._writes
        )  # no final answer offered
        if must_answer:
            schema = final_answer_schema(seen, shape)
        else:
            schema = self._actions(state) if read_first else with_final_answer(self._actions(state), seen, shape)
        request = ModelRequest(messages=messages, json_schema=schema, max_tokens=self.limits.max_reply_tokens)
        started = time.perf_counter()
        call_limit = self.limits_of(state).model_call_timeout_s
        try:
            reply = await asyncio.wait_for(
                self.model.complete(request),
                timeout=max(min(remaining, call_limit) if call_limit is not None else remaining, 0.001),
            )
        except TimeoutError:
            if call_limit is not None and call_limit < remaining:
                exc = ModelError(
                    "timeout",
                    f"the model did not answer within {call_limit:g} s (the per-call model timeout)",
                    backend=getattr(self.model, "name", None),
                )
                return {"status": "model_error", "error": str(exc), "error_kind": exc.kind}
            return {"status": "timeout", "error": f"run exceeded {self.limits_of(state).timeout_s:.0f} s"}
        except ModelError as exc:
            if exc.kind != "invalid_output":
                return {"status": "model_error", "error": str(exc), "error_kind": exc.kind}
            return self._invalid(state, exc.text or "", str(exc), time.perf_counter() - started)
        model_s = time.perf_counter() - started
        usage = {
            "prompt_tokens": state["prompt_tokens"] + reply.usage.prompt_tokens,
            "completion_tokens": state["completion_tokens"] + reply.usage.completion_tokens,
        }
        action = parse_action(reply.parsed, reply.text, self.registry, self.tool_names)
        tokens = {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens}
        if isinstance(action, str):
            return {**usage, **self._invalid(state, reply.text, action, model_s, tokens)}
        arguments, note = (
            (action.arguments, None)
            if action.tool == FINAL_ANSWER
            else self._with_patient_context(action.tool, action.arguments, state)
        )
        record = Step(
            step=state["steps"] + 1,
            model_output=reply.text,
            thinking=reply.raw_thinking,
            tool=action.tool,
            arguments=arguments,
            model_s=model_s,
            **tokens,
            note=note,
        )
        assistant = {"role": "assistant", "content": reply.text}
        problem = (
            (NOTHING_READ if read_first else None)
            or final_answer_problem(str(action.arguments.get("answer") or ""), state.get("question") or "", shape)
            if action.tool == FINAL_ANSWER
            else None
        )
        if problem:  # an echo of the format text, a placeholder, or no yes/no to a yes/no question: asked again
            return {**usage, **self._invalid(state, reply.text, problem, model_s, tokens)}
        if action.tool == FINAL_ANSWER:
            return {
                **usage,
                "messages": [assistant],
                "trace": [record.model_dump()],
                "status": "answered",
                "answer": action.arguments.get("answer"),
                "citations": action.arguments.get("citations") or [],
            }
        return {
            **usage,
            "messages": [assistant],
            "pending": {"tool": action.tool, "arguments": arguments, "record": record.model_dump()},
        }

    def _invalid(
        self, state: AgentState, text: str, problem: str, model_s: float, tokens: dict[str, int] | None = None
    ) -> dict[str, Any]:
        count = state["invalid_replies"] + 1
        record = Step(
            step=state["steps"] + 1, model_output=text, tool=None, error=problem, model_s=model_s, **(tokens or {})
        ).model_dump()
        if count > self.limits.max_invalid_replies:
            return {
                "invalid_replies": count,
                "trace": [record],
                "status": "invalid_output",
                "error": f"model replies could not be parsed {count} times; last: {problem}",
            }
        return {
            "invalid_replies": count,
            "trace": [record],
            "messages": [{"role": "assistant", "content": text}, invalid_reply_message(problem)],
        }

    def _must_answer(self, state: AgentState) -> str | None:
        """Why the next reply may only be the final answer: the last allowed step, or a repeated call."""
        return must_answer_reason(state["steps"], state["trace"], self.limits_of(state).max_steps)

    def _limit_reached(self, state: AgentState) -> str | None:
        return self.limits_of(state).reached(
            state["steps"], state["prompt_tokens"] + state["completion_tokens"], self._elapsed(state)
        )

    @staticmethod
    def _elapsed(state: AgentState) -> float:
        """The run's own wall-clock seconds: since it started, less the time it waited for reviewers."""
        return time.time() - state["started_at"] - state.get("paused_s", 0.0)

    async def _approve(self, state: AgentState) -> dict[str, Any]:
        """Ask the run's approval policy; an escalated write goes to ``review`` to wait for a reviewer."""
        pending = dict(state["pending"] or {})
        ctx = self._context(state)
        review = await self.registry.review(pending["tool"], pending["arguments"], ctx)
        request, decision = review if review is not None else (None, None)
        if request is not None and decision is not None and decision.verdict == "escalate":
            return {"pending": {**pending, "review": request.model_dump(), "asked_at": time.time()}}
        pending["decision"] = decision.model_dump() if decision is not None else None
        return {"pending": pending}

    async def _after_approve(self, state: AgentState) -> str:
        return "review" if (state.get("pending") or {}).get("review") else "act"

    async def _review(self, state: AgentState) -> dict[str, Any]:
        """The run pauses here (a LangGraph interrupt) until a reviewer decides the escalated write. The wait
        is not the agent's time: it is added to ``paused_s``, which the wall-clock limit leaves out."""
        pending = dict(state["pending"] or {})
        answer = interrupt(pending.pop("review"))
        decision = (
            ApprovalDecision.model_validate(answer)
            if isinstance(answer, dict)
            else ApprovalDecision.reviewer(bool(answer))
        )
        waited = max(0.0, time.time() - float(pending.pop("asked_at", time.time())))
        pending["decision"] = decision.model_dump()
        return {"pending": pending, "paused_s": state.get("paused_s", 0.0) + waited}

    async def _act(self, state: AgentState) -> dict[str, Any]:
        pending = state["pending"] or {}
        tool, arguments = pending["tool"], pending["arguments"]
        decision = ApprovalDecision.model_validate(pending["decision"]) if pending.get("decision") else None
        ctx = self._context(state)
        audited = len(ctx.audit)
        started = time.perf_counter()
        refusal = (
            await patient_in_context_refusal(ctx, arguments, closed=bool(state.get("search_closed")))
            if tool == PATIENT_SEARCH
            else None
        )
        result = (
            ToolResult.failure(refusal)
            if refusal
            else await self.registry.call(tool, arguments, ctx, decision=decision)
        )
        record = Step.model_validate(
            {**pending.get("record", {"step": state["steps"] + 1, "tool": tool}), "arguments": arguments}
        )
        record = record.model_copy(
            update={
                "approval": decision.label if decision else None,
                "result": result.text,
                "error": result.error,
                "references": result.references,
                "wrote": result.wrote,
                "tool_s": time.perf_counter() - started,
            }
        )
        return {
            "messages": [tool_result_message(tool, result.text, result.error)],
            "trace": [record.model_dump()],
            "audit": [entry.model_dump() for entry in ctx.audit[audited:]],
            "steps": state["steps"] + 1,
            "pending": None,
        }

    # helpers ------------------------------------------------------------------------------
    def _actions(self, state: AgentState) -> dict[str, Any]:
        """The tool actions the model may choose from at this step (the final answer is added per step)."""
        if state.get("search_closed"):
            return self._closed_actions
        return self._tool_actions[bool(state.get("patient"))]

    def _new_context(
        self, run_id: str, now: datetime, patient: str | None, actor: str, client: FhirClient | None
    ) -> ToolContext:
        fhir = client or self.client
        if fhir is None:
            raise ValueError("no FHIR client: give Agent(client=...) or run(..., client=...)")
        return ToolContext(
            client=fhir, now=now, approval=self.approval_policy, actor=actor, run_id=run_id, patient=patient
        )

    def _context(self, state: AgentState) -> ToolContext:
        """The run context of this run (rebuilt from the checkpointed fields if this process has none)."""
        run_id = state["run_id"]
        if run_id not in self._contexts:
            self._contexts[run_id] = self._new_context(
                run_id, parse_instant(state["now"]), state.get("patient"), state.get("actor", self.actor), None
            )
        return self._contexts[run_id]

    async def _patient_facts(self, ctx: ToolContext, question: str) -> dict[str, Any]:
        """What the guards keep in the state of a run about one patient, read once when it starts: their name
        words, and whether find_patients is closed (guards.search_closed)."""
        try:
            record = await require_patient(ctx, ctx.patient or "")
        except (ToolError, FhirClientError, OSError):
            return {}
        facts: dict[str, Any] = {"patient_names": sorted(patient_name_parts(record))}
        if self._searches:
            facts["search_closed"] = await search_closed(ctx, question)
        return facts

    def _with_patient_context(
        self, tool: str, arguments: dict[str, Any], state: AgentState
    ) -> tuple[dict[str, Any], str | None]:
        """Like an EHR launch context: a run about one patient fills a missing or empty ``patient`` argument, and
        takes the patient's name out of a search's free text (guards: it names no record). The step's note says
        what was changed."""
        patient = state.get("patient")
        properties = self.registry[tool].parameters()["properties"]
        if not patient or "patient" not in properties:
            return arguments, None
        notes = []
        if not arguments.get("patient"):
            arguments = {**arguments, "patient": f"Patient/{patient}"}
            notes.append("patient filled from the run's patient context")
        text = arguments.get("text")
        if isinstance(text, str) and "text" in properties and state.get("patient_names"):
            cleaned = without_patient_name(text, state.get("patient_names") or [])
            if cleaned != text:
                rest = {k: v for k, v in arguments.items() if k != "text"}
                arguments = rest if cleaned is None else {**rest, "text": cleaned}
                notes.append(f"the patient's name taken out of text {text!r}")
        return arguments, "; ".join(notes) or None

    def _config(self, run_id: str) -> RunnableConfig:
        steps = self._run_limits.get(run_id, self.limits).max_steps
        return {"configurable": {"thread_id": run_id}, "recursion_limit": 4 * steps + 20}

    async def _invoke(self, payload: Any, run_id: str) -> AgentResult:
        try:
            values = dict(await self.graph.ainvoke(payload, self._config(run_id), durability=self.durability))
        except BaseException:
            self._contexts.pop(run_id, None)
            raise
        # a paused run's output carries its interrupt (the write waiting for a reviewer), as its state would
        result = self._result(run_id, values, values.pop(INTERRUPTS, ()))
        if result.status in FINAL_STATUSES:
            self._contexts.pop(run_id, None)  # the run is over: its context goes with it
            self._run_limits.pop(run_id, None)
        return result

    def _result(self, run_id: str, values: dict[str, Any], interrupts: Any) -> AgentResult:
        pending = WriteRequest.model_validate(interrupts[0].value) if interrupts else None
        return AgentResult(
            run_id=run_id,
            status=values.get("status", "running"),
            answer=values.get("answer"),
            citations=list(values.get("citations") or []),
            steps=values.get("steps", 0),
            error=values.get("error"),
            error_kind=values.get("error_kind"),
            trace=values.get("trace", []),
            audit=values.get("audit", []),
            pending_approval=pending,
        )
