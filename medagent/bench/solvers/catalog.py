"""The solvers by ``--agent`` name: the agent, the whole-record baseline, and the code solvers (the oracle, and
deliberately wrong solvers that the graders must fail).

``medagent bench run --agent NAME`` maps each code solver's name to ``make_code_solver(NAME)`` (a ``Solver``):

- ``oracle``: solves every scenario through the agent's typed tools (``Registry.call`` on the bench's
  FHIR client, the path the agent takes), never through the bundles. It reads the question's
  *meaning* from the task (``scenario.meta``: which codes, which form of question; the task text:
  names, the reported list, the note to write) and every *value* from the server. It never reads
  ``scenario.answer``, ``expected_writes`` or ``provenance``. It must score 100% on every frozen set;
  anything less is a tool gap or a ground-truth bug.
- ``oracle-by-name``: the oracle, searching conditions and medications with ``text=`` the name the question
  writes instead of the code it reads from ``meta`` (``oracle_by_name.py``): trajectories to train on, since a
  model has only the question's words. A training-data solver, not the grading proof (it may miss a name).
- ``always-no``: deliberately wrong; answers "no" to everything, reads and writes nothing. Passes only
  the boolean questions whose answer is no (about half of them).
- ``do-nothing``: deliberately wrong; a silent finish (empty answer, no tool call). Scores 0%: an
  empty answer never passes and every task with an ungraded answer requires a write.
- ``always-act``: deliberately wrong; the oracle's reads and answer, but it takes the action of every
  conditional task on either branch, and writes a note when a task leaves it nothing to act on. Fails
  every read-only task and every no-action branch, except where the write tools refuse to write at all
  (a patient who died before now).
- ``write-twice``: deliberately wrong; the oracle, but every write is sent again under another run id
  (a real second resource, not an idempotent retry). Fails every task that creates a resource; stopping
  an order a second time changes nothing, so discontinue tasks still pass.
- ``wrong-patient``: deliberately wrong; the oracle's reads and answer, but every write goes to another
  (living) patient. Fails every task that requires a write.
- ``chart-blind`` (null baseline, ``chart_blind.py``): never reads the chart; answers from the dev
  split's answer statistics by question form and entity.
- ``none-answerer`` (null baseline): answers "none" to everything, reads and writes nothing.
- ``nearest-dev``, ``stated-number``, ``setup-only``, ``first-sentences``, ``lab-name-prior``: one solver per
  shortcut measured on v2's hard tier (``shortcuts.py``), each on the categories it targets; ``setup-only`` also
  on the workflow tier (the oracle seeing only what the setup added, ``workflow.py``).
- ``note-only``, ``empty-chart`` (workflow tier, ``workflow.py``): the oracle writing only its note; applying the
  protocol to an empty chart.

Every tool call becomes one trace step in the agent's format (step, tool, arguments, result, error,
references, wrote, tool_s), and the final answer a ``final_answer`` step, so the HTML report shows a
code solver's trajectory like an agent's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast, get_args

from medagent.bench.solvers import Solver
from medagent.bench.solvers.chart_blind import ChartBlindSolver
from medagent.bench.solvers.oracle import OracleSolver
from medagent.bench.solvers.oracle_by_name import OracleByNameSolver
from medagent.bench.solvers.shortcuts import (
    FirstSentencesSolver,
    LabNamePriorSolver,
    NearestDevSolver,
    SetupOnlySolver,
    StatedNumberSolver,
)
from medagent.bench.solvers.workflow import EmptyChartSolver, NoteOnlySolver
from medagent.bench.solvers.wrong import (
    AlwaysActSolver,
    AlwaysNoSolver,
    DoNothingSolver,
    NoneAnswererSolver,
    WriteTwiceSolver,
    WrongPatientSolver,
)
from medagent.config import UserError
from medagent.models.base import ModelError, PromptProfile

__all__ = ["AGENT_NAMES", "CODE_SOLVER_NAMES", "make_code_solver", "make_solver"]

# every code solver once; its CLI name is its ``name``
CODE_SOLVERS: tuple[type[Any], ...] = (
    OracleSolver,
    OracleByNameSolver,
    AlwaysNoSolver,
    DoNothingSolver,
    AlwaysActSolver,
    WriteTwiceSolver,
    WrongPatientSolver,
    NoneAnswererSolver,
    ChartBlindSolver,
    NearestDevSolver,
    StatedNumberSolver,
    SetupOnlySolver,
    FirstSentencesSolver,
    LabNamePriorSolver,
    NoteOnlySolver,
    EmptyChartSolver,
)
LEARNS_FROM_SET = (ChartBlindSolver, NearestDevSolver, LabNamePriorSolver)  # built from the set's dev split
CODE_SOLVER_NAMES: tuple[str, ...] = tuple(solver.name for solver in CODE_SOLVERS)
AGENT_NAMES: tuple[str, ...] = ("agent", "whole-record", *CODE_SOLVER_NAMES)


def make_code_solver(name: str, set_folder: Path | None = None) -> Solver:
    """The code solver for ``medagent bench run --agent NAME`` (``set_folder``: the set a prior learns from)."""
    for solver in CODE_SOLVERS:
        if solver.name == name:
            built: Solver = solver(set_folder) if solver in LEARNS_FROM_SET else solver()
            return built
    raise ValueError(f"unknown code solver {name!r}; choose one of {', '.join(CODE_SOLVER_NAMES)}")


def make_solver(
    agent: str,
    model: str,
    model_name: str | None,
    max_steps: int | None,
    set_folder: Path | None = None,
    tool_names: list[str] | None = None,
    prompt_profile: str | None = None,
    model_timeout: float | None = None,
) -> Solver:
    """The solver for ``--agent``: the LangGraph agent (with ``tool_names``: only those tools), the whole-record
    baseline, or a code solver; a choice that does not fit is a :class:`UserError`. ``model_timeout``: seconds
    one model call may take (its retries included)."""
    if tool_names is not None and agent != "agent":
        raise UserError(f"--tools applies to --agent agent only ({agent} does not choose tools)")
    if agent in CODE_SOLVER_NAMES:
        return make_code_solver(agent, set_folder)
    if agent not in AGENT_NAMES:
        raise UserError(f"unknown agent {agent!r}; choose one of {', '.join(AGENT_NAMES)}")
    from medagent.agent.state import Limits
    from medagent.bench.endpoints import load_endpoints

    try:
        backend = load_endpoints(model, model_name)
    except ModelError as exc:
        if exc.kind != "config":
            raise
        raise UserError(f"--model {model}: {exc}") from None
    label = model_name or model
    if agent == "whole-record":
        from medagent.bench.solvers.whole_record import WholeRecordSolver

        return WholeRecordSolver(backend, model=label, model_call_timeout_s=model_timeout)
    from medagent.bench.solvers.agent import AgentSolver

    limits = Limits(**({"max_steps": max_steps} if max_steps else {}), model_call_timeout_s=model_timeout)
    if prompt_profile not in (None, *get_args(PromptProfile)):
        raise UserError(f"--prompt-profile {prompt_profile!r}: choose one of {', '.join(get_args(PromptProfile))}")
    return AgentSolver(
        backend,
        model=label,
        limits=limits,
        tool_names=tool_names,
        prompt_profile=cast(PromptProfile | None, prompt_profile),
    )
