"""One code solver's tool session: calls through the agent's registry at the scenario's now, the trace, the writes.

Shared by the oracle and the deliberately wrong solvers (``medagent.bench.solvers.oracle``,
``medagent.bench.solvers.wrong``): every tool call becomes one :class:`~medagent.trajectory.Step`, the
record the agent writes, so the HTML report shows a code solver's trajectory like an agent's. One run context
per task (``ctx``); writes are approved like every benchmark write (the grader judges the server's diff).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from medagent.fhir.client import FhirClient
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import ToolGap
from medagent.tools.approval import APPROVE_WRITES
from medagent.tools.context import ToolContext
from medagent.tools.registry import FINAL_ANSWER, Registry, ToolResult
from medagent.trajectory import RunOutcome, Step
from medagent.vocabulary import parse_instant

# The agent's tools answer within 800 tokens per call by default: a patient's whole medication list
# (up to ~100 orders) then needs several pages (since/until). The oracle reads such a list in one call
# with a larger budget; every call whose completeness matters is checked for rows left out (ToolGap).
ORACLE_TOKEN_BUDGET = 8000
TRACE_RESULT_CHARS = 4000  # the copy of a tool's text kept in the trace (results.jsonl stays small)


class ToolSession:
    """One task's tool calls: a ToolContext at the scenario's now, the trace, and the write log."""

    def __init__(
        self,
        registry: Registry,
        client: FhirClient,
        scenario: Scenario,
        *,
        actor: str,
        token_budget: int = ORACLE_TOKEN_BUDGET,
        run_id: str | None = None,
    ) -> None:
        self.registry = registry
        self.scenario = scenario
        self.now = parse_instant(scenario.now)
        self.ctx = ToolContext(
            client=client,
            now=self.now,
            approval=APPROVE_WRITES,
            actor=actor,
            run_id=run_id or scenario.id,
            patient=scenario.patient_context,
            token_budget=token_budget,
        )
        self.trace: list[Step] = []
        self.wrote: list[str] = []
        self._contexts = [self.ctx]  # the task's context and any retry contexts: the audit of all of them

    @property
    def tool_calls(self) -> int:
        return sum(1 for step in self.trace if step.is_tool_call)

    @property
    def tool_s(self) -> float:
        return sum(step.tool_s for step in self.trace)

    async def call(
        self,
        tool: str,
        *,
        strict: bool = True,
        complete: bool = False,
        ctx: ToolContext | None = None,
        **arguments: Any,
    ) -> ToolResult:
        """Call a tool through the registry and record the step.

        ``strict``: an error result raises ToolGap (the oracle never expects one).
        ``complete``: rows left out (limit or budget) raise ToolGap (the solver needs them all).
        """
        args = {k: v for k, v in arguments.items() if v is not None}
        started = time.perf_counter()
        result = await self.registry.call(tool, args, ctx or self.ctx)
        elapsed = time.perf_counter() - started
        text = (
            result.text
            if len(result.text) <= TRACE_RESULT_CHARS
            else (
                result.text[:TRACE_RESULT_CHARS] + f"\n... (trace copy cut at {TRACE_RESULT_CHARS} characters; "
                f"the policy read all {len(result.rows)} rows)"
            )
        )
        self.trace.append(
            Step(
                step=len(self.trace) + 1,
                tool=tool,
                arguments=args,
                result=text,
                error=result.error,
                references=result.references,
                wrote=result.wrote,
                tool_s=round(elapsed, 4),
            )
        )
        self.wrote.extend(result.wrote)
        if strict and result.error:
            raise ToolGap(f"{tool}({json.dumps(args, default=str)}) failed: {result.error}")
        if complete and result.truncated:
            raise ToolGap(f"{tool}({json.dumps(args, default=str)}) left {result.truncated} row(s) out")
        return result

    def retry_context(self, suffix: str) -> ToolContext:
        """A context for the same task under another run id (its writes get other idempotency keys)."""
        retry = dataclasses.replace(self.ctx, run_id=f"{self.ctx.run_id}{suffix}", audit=[], cache={})
        self._contexts.append(retry)
        return retry

    def final(self, answer: str | None, citations: list[str]) -> None:
        self.trace.append(
            Step(step=len(self.trace) + 1, tool=FINAL_ANSWER, arguments={"answer": answer, "citations": citations})
        )

    def is_write(self, tool: str) -> bool:
        """Whether this tool writes to the EHR (an unknown tool is called as a read and fails there)."""
        return tool in self.registry and self.registry[tool].writes

    def outcome(self, **fields: Any) -> RunOutcome:
        """The task's outcome: the given status/answer/citations/error plus this session's trace and audit."""
        audit = [entry for ctx in self._contexts for entry in ctx.audit]
        return RunOutcome(trace=self.trace, steps=self.tool_calls, audit=audit, **fields)
