"""The agent loop as a LangGraph StateGraph: decide (model) -> approve (writes) -> act (tool) -> decide.

Not a fixed pipeline: the model chooses each next tool from what it has read, so it can follow
references, narrow by date and ask for more data. Writes pass an approval node built on
LangGraph interrupts. Every step is checkpointed synchronously (``durability="sync"``), so a run
whose process is killed resumes from its last finished step.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from medagent.agent.actions import FINAL_ANSWER, parse_action
from medagent.agent.prompts import EXAMPLE_TURNS, invalid_reply_message, system_prompt, tool_result_message
from medagent.agent.state import AgentResult, AgentState, Limits, StepRecord
from medagent.fhir.client import FhirClient
from medagent.models.base import ChatMessage, ModelBackend, ModelError, ModelRequest
from medagent.tools.registry import Registry, ToolContext

ApprovalPolicy = Literal["auto", "ask", "refuse"]


def aware(moment: str) -> datetime:
    """The run's clock as a timezone-aware datetime (a date or naive time is taken as UTC)."""
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class Agent:
    """A tool-using EHR agent: one model backend, one tool registry, limits and a write policy.

    ``approval``: ``auto`` approves writes (benchmark runs), ``ask`` pauses the run with a
    LangGraph interrupt until :meth:`resume` gives a decision, ``refuse`` is read-only mode.
    """

    model: ModelBackend
    registry: Registry
    client: FhirClient
    limits: Limits = field(default_factory=Limits)
    approval: ApprovalPolicy = "refuse"
    checkpointer: BaseCheckpointSaver | None = None
    tool_names: list[str] | None = None
    actor: str = "medagent"
    few_shot: bool = False  # prepend prompts.EXAMPLE_TURNS (base models copy them verbatim; off by default)

    def __post_init__(self) -> None:
        self.checkpointer = self.checkpointer or InMemorySaver()
        self._tools = self.registry.openai_schemas(self.tool_names)
        self._schema = self.registry.json_schema_union(self.tool_names)
        self.graph = self._build().compile(checkpointer=self.checkpointer)

    # public API ---------------------------------------------------------------------------
    async def run(self, question: str, *, now: datetime | str, patient: str | None = None,
                  run_id: str | None = None) -> AgentResult:
        """Answer one question (or do one task) at the scenario's clock ``now``."""
        run_id = run_id or str(uuid.uuid4())
        now_text = now.isoformat() if isinstance(now, datetime) else now
        initial: AgentState = {
            "run_id": run_id, "question": question, "patient": patient, "now": now_text, "started_at": time.time(),
            "messages": [{"role": "user", "content": question}], "trace": [], "steps": 0, "invalid_replies": 0,
            "prompt_tokens": 0, "completion_tokens": 0, "pending": None, "answer": None, "citations": [],
            "status": "running", "error": None,
        }
        return await self._invoke(initial, run_id)

    async def resume(self, run_id: str, *, approve: bool | None = None, reason: str = "") -> AgentResult:
        """Continue a run: after a crash (from its last checkpoint) or with a write decision."""
        config = self._config(run_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise KeyError(f"no checkpointed run {run_id!r}")
        if snapshot.interrupts:
            if approve is None:
                return self._result(run_id, snapshot.values, snapshot.interrupts)
            return await self._invoke(Command(resume={"approve": approve, "reason": reason}), run_id)
        if not snapshot.next:
            return self._result(run_id, snapshot.values, ())
        return await self._invoke(None, run_id)

    # graph --------------------------------------------------------------------------------
    def _build(self) -> StateGraph:
        builder = StateGraph(AgentState)
        builder.add_node("decide", self._decide)
        builder.add_node("approve", self._approve)
        builder.add_node("act", self._act)
        builder.add_edge(START, "decide")
        builder.add_conditional_edges("decide", self._after_decide, ["decide", "approve", "act", END])
        builder.add_edge("approve", "act")
        builder.add_edge("act", "decide")
        return builder

    def _after_decide(self, state: AgentState) -> str:
        if state.get("status") != "running":
            return END
        if not state.get("pending"):
            return "decide"  # the reply was unusable: ask again
        return "approve" if self.registry[state["pending"]["tool"]].writes else "act"

    async def _decide(self, state: AgentState) -> dict[str, Any]:
        stop = self._limit_reached(state)
        if stop:
            return {"status": stop}
        remaining = self.limits.timeout_s - (time.time() - state["started_at"])
        must_answer = self._must_answer(state)
        messages = [ChatMessage(role="system", content=system_prompt(state["now"], state.get("patient"), self._tools)),
                    *(ChatMessage(**m) for m in (EXAMPLE_TURNS if self.few_shot else [])),
                    *(ChatMessage(**m) for m in state["messages"])]
        if must_answer:
            messages.append(ChatMessage(role="user", content=f"{must_answer} Reply now with final_answer, from what "
                                        "you have read (say so if the record did not tell you)."))
        request = ModelRequest(
            messages=messages,
            json_schema=self.registry.final_answer_schema() if must_answer else self._schema,
            max_tokens=self.limits.max_reply_tokens,
        )
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(self.model.complete(request), timeout=max(remaining, 0.001))
        except asyncio.TimeoutError:
            return {"status": "timeout", "error": f"run exceeded {self.limits.timeout_s:.0f} s"}
        except ModelError as exc:
            if exc.kind != "invalid_output":
                return {"status": "model_error", "error": str(exc)}
            return self._invalid(state, exc.text or "", str(exc), time.perf_counter() - started)
        model_s = time.perf_counter() - started
        usage = {"prompt_tokens": state["prompt_tokens"] + reply.usage.prompt_tokens,
                 "completion_tokens": state["completion_tokens"] + reply.usage.completion_tokens}
        action = parse_action(reply.parsed, reply.text, self.registry, self.tool_names)
        if isinstance(action, str):
            return {**usage, **self._invalid(state, reply.text, action, model_s)}
        record: StepRecord = {"step": state["steps"] + 1, "model_output": reply.text, "thinking": reply.raw_thinking,
                              "tool": action.tool, "arguments": action.arguments, "model_s": model_s,
                              "prompt_tokens": reply.usage.prompt_tokens,
                              "completion_tokens": reply.usage.completion_tokens}
        assistant = {"role": "assistant", "content": reply.text}
        if action.tool == FINAL_ANSWER:
            return {**usage, "messages": [assistant], "trace": [record], "status": "answered",
                    "answer": action.arguments.get("answer"), "citations": action.arguments.get("citations") or []}
        return {**usage, "messages": [assistant], "pending": {"tool": action.tool, "arguments": action.arguments,
                                                               "record": record}}

    def _invalid(self, state: AgentState, text: str, problem: str, model_s: float) -> dict[str, Any]:
        count = state["invalid_replies"] + 1
        record: StepRecord = {"step": state["steps"] + 1, "model_output": text, "tool": None, "error": problem,
                              "model_s": model_s}
        if count > self.limits.max_invalid_replies:
            return {"invalid_replies": count, "trace": [record], "status": "invalid_output",
                    "error": f"model replies could not be parsed {count} times; last: {problem}"}
        return {"invalid_replies": count, "trace": [record],
                "messages": [{"role": "assistant", "content": text}, invalid_reply_message(problem)]}

    def _must_answer(self, state: AgentState) -> str | None:
        """Why the next reply may only be the final answer: the last allowed step, or a repeated call."""
        if state["steps"] >= self.limits.max_steps - 1:
            return "This is your last step."
        calls = [(s.get("tool"), s.get("arguments")) for s in state["trace"] if s.get("tool")]
        if len(calls) >= 2 and calls[-1] == calls[-2]:
            return "You repeated the same tool call; its result will not change."
        return None

    def _limit_reached(self, state: AgentState) -> str | None:
        if state["steps"] >= self.limits.max_steps:
            return "step_limit"
        if state["prompt_tokens"] + state["completion_tokens"] >= self.limits.max_tokens:
            return "token_budget"
        if time.time() - state["started_at"] >= self.limits.timeout_s:
            return "timeout"
        return None

    async def _approve(self, state: AgentState) -> dict[str, Any]:
        pending = dict(state["pending"] or {})
        if self.approval == "refuse":
            pending["approval"] = "refused: read-only mode"
        elif self.approval == "auto":
            pending["approval"] = "auto-approved"
        else:
            decision = interrupt({"tool": pending["tool"], "arguments": pending["arguments"],
                                  "question": "Approve this write to the EHR?"})
            approved = decision.get("approve") if isinstance(decision, dict) else bool(decision)
            reason = decision.get("reason", "") if isinstance(decision, dict) else ""
            pending["approval"] = "approved" if approved else f"rejected by user{': ' + reason if reason else ''}"
        return {"pending": pending}

    async def _act(self, state: AgentState) -> dict[str, Any]:
        pending = state["pending"] or {}
        tool = pending["tool"]
        arguments, filled = self._with_patient_context(tool, pending["arguments"], state.get("patient"))
        approval = pending.get("approval")
        record: StepRecord = {**pending.get("record", {}), "approval": approval, "arguments": arguments}
        if filled:
            record["note"] = "patient filled from the run's patient context"
        started = time.perf_counter()
        if approval and not approval.startswith(("approved", "auto")):
            text, error, references, wrote = "", f"write not performed ({approval})", [], []
        else:
            context = ToolContext(client=self.client, now=aware(state["now"]),
                                  read_only=self.approval == "refuse", actor=self.actor,
                                  run_id=state["run_id"])
            result = await self.registry.call(tool, arguments, context)
            text, error, references, wrote = result.text, result.error, result.references, result.wrote
        record.update(result=text, error=error, references=references, wrote=wrote,
                      tool_s=time.perf_counter() - started)
        return {"messages": [tool_result_message(tool, text, error)], "trace": [record],
                "steps": state["steps"] + 1, "pending": None}

    # helpers ------------------------------------------------------------------------------
    def _with_patient_context(self, tool: str, arguments: dict[str, Any],
                              patient: str | None) -> tuple[dict[str, Any], bool]:
        """Like an EHR launch context: a run about one patient fills a missing or empty ``patient`` argument."""
        if not patient or arguments.get("patient") or "patient" not in self.registry[tool].parameters()["properties"]:
            return arguments, False
        return {**arguments, "patient": f"Patient/{patient}"}, True

    def _config(self, run_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": run_id}, "recursion_limit": 4 * self.limits.max_steps + 20}

    async def _invoke(self, payload: Any, run_id: str) -> AgentResult:
        values = await self.graph.ainvoke(payload, self._config(run_id), durability="sync")
        snapshot = await self.graph.aget_state(self._config(run_id))
        return self._result(run_id, values, snapshot.interrupts)

    def _result(self, run_id: str, values: dict[str, Any], interrupts: Any) -> AgentResult:
        pending = interrupts[0].value if interrupts else None
        return AgentResult(
            run_id=run_id, status=values.get("status", "running"), answer=values.get("answer"),
            citations=list(values.get("citations") or []), steps=values.get("steps", 0),
            prompt_tokens=values.get("prompt_tokens", 0), completion_tokens=values.get("completion_tokens", 0),
            error=values.get("error"), trace=[dict(r) for r in values.get("trace", [])], pending_approval=pending,
        )
