"""The deliberately wrong code solvers: each must fail exactly where the graders should catch it.

- ``always-no``: answers "no" to everything, reads and writes nothing.
- ``do-nothing``: a silent finish (empty answer, no tool call).
- ``always-act``: the oracle's reads and answer, but it takes the action of every conditional task on
  either branch, and writes a note when a task leaves it nothing to act on.
- ``write-twice``: the oracle, but every write is sent again under another run id.
- ``wrong-patient``: the oracle's reads and answer, but every write goes to another (living) patient.
- ``none-answerer``: answers "none" to everything, reads and writes nothing (the "not found" shortcut).
"""

from __future__ import annotations

from typing import Any

from medagent.bench.solvers.oracle import OracleSolver, SolverTools
from medagent.bench.solvers.tool_session import ToolSession
from medagent.fhir.client import FhirClient
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolGap
from medagent.scenarios.tool_rows import parse_time
from medagent.tools.registry import FINAL_ANSWER, ToolResult
from medagent.trajectory import RunOutcome, Step


class FixedAnswerSolver:
    """Deliberately wrong solver: the same final answer to every task, without a single tool call."""

    name = "fixed-answer"
    fixed = ""
    model: str | None = None

    def __init__(self, name: str | None = None, answer: str | None = None) -> None:
        self.name = name if name is not None else type(self).name
        self.fixed = answer if answer is not None else type(self).fixed

    def answer_for(self, scenario: Scenario) -> str:
        return self.fixed

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        answer = self.answer_for(scenario)
        step = Step(step=1, tool=FINAL_ANSWER, arguments={"answer": answer, "citations": []})
        return RunOutcome(status="answered", answer=answer, trace=[step], steps=0)


class AlwaysNoSolver(FixedAnswerSolver):
    """Deliberately wrong solver: answers "no" to every task, reads nothing, writes nothing."""

    name = "always-no"
    fixed = "no"


class DoNothingSolver(FixedAnswerSolver):
    """Deliberately wrong solver: finishes at once with an empty answer (MedAgentBench's "silent finish")."""

    name = "do-nothing"
    fixed = ""


class AlwaysActSolver(OracleSolver):
    """Deliberately wrong solver: acts on every branch of every conditional task, and writes in read-only tasks.

    It reads and answers like the oracle, but orders the replacement / the lab / the vaccine whatever the
    value, stops every order of the named drug whatever its status, and when a task leaves it nothing to
    act on it records its answer as a progress note. Writes the tools refuse (a patient who died before
    now) are left in the trace as errors.
    """

    name = "always-act"
    act_on_every_branch = True
    strict_writes = False

    async def answer(self, tools: SolverTools, scenario: Scenario) -> OracleAnswer:
        answer, citations = await super().answer(tools, scenario)
        if not tools.session.wrote:
            patient = await self._patient_of(tools, scenario)
            await tools.call(
                "add_note",
                patient=patient,
                text=f"Task: {scenario.question}\nAnswer: {answer}",
                title="Answer recorded by the always-act policy",
                reason="always act",
            )
        return OracleAnswer(answer, citations)

    async def _patient_of(self, tools: SolverTools, scenario: Scenario) -> str:
        mrn = scenario.meta.get("mrn")
        if scenario.suite == "agentic" and mrn and scenario.category != "find_mrn":
            patient, _ = await tools.reads.patient_by_mrn(mrn)
            return patient
        return scenario.patient  # EHRQA names the patient; find_mrn: the patient the solver is given


class WriteTwiceSolver(OracleSolver):
    """Deliberately wrong solver: the oracle, but every write is sent a second time under another run id.

    The write tools are idempotent within a run (a conditional create keyed on the call and the run id),
    so a plain retry would write nothing new; a second run id makes the second call a real duplicate,
    like an agent that re-issues an order it already placed.
    """

    name = "write-twice"

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        first = await super().write(s, tool, **arguments)
        await s.call(tool, strict=False, ctx=s.retry_context("/again"), **arguments)
        return first


class WrongPatientSolver(OracleSolver):
    """Deliberately wrong solver: the oracle's reads and answer, but every write goes to another patient.

    The other patient is found through the tools (the first living patient by id other than the task's);
    a stop (which names an order, not a patient) goes to an active order of that patient.
    """

    name = "wrong-patient"
    strict_writes = False

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        if tool == "discontinue_medication":
            return await self._stop_another_patients_order(s, reason=arguments.get("reason", ""))
        if "patient" in arguments:
            arguments["patient"] = (await self._others(s, arguments["patient"]))[0]
        return await super().write(s, tool, **arguments)

    async def _stop_another_patients_order(self, s: ToolSession, reason: str) -> ToolResult:
        for other in await self._others(s, s.scenario.patient):
            result = await s.call("search_medications", patient=other, status="current", limit=1)
            if result.rows:
                return await super().write(
                    s, "discontinue_medication", medication_request=result.rows[0]["ref"], reason=reason
                )
        raise ToolGap("no other patient has an active order to stop")

    async def _others(self, s: ToolSession, patient: str) -> list[str]:
        cached = s.ctx.cache.get("wrong-patient/others")
        if cached is None:
            result = await s.call(
                "fhir_search", resource_type="Patient", params={}, fields=["birthDate", "deceasedDateTime"], limit=100
            )
            cached = []
            for row in sorted(result.rows, key=lambda r: r["ref"]):
                died = row.get("deceasedDateTime")
                moment = parse_time(died) if isinstance(died, str) else None
                if moment is None or moment > s.now:
                    cached.append(row["ref"].removeprefix("Patient/"))
            s.ctx.cache["wrong-patient/others"] = cached
        others = [p for p in cached if p != patient]
        if not others:
            raise ToolGap("no other living patient to write to")
        return others


class NoneAnswererSolver(FixedAnswerSolver):
    """Deliberately wrong solver: answers "none" to every task, reads nothing, writes nothing."""

    name = "none-answerer"
    fixed = "none"
