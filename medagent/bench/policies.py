"""Code policies for scored runs: the oracle, and deliberately wrong policies that the graders must fail.

``medagent bench run --agent NAME`` maps each name to ``make_policy(NAME)`` (a bench ``Solver``):

- ``oracle``: solves every scenario through the agent's typed tools (``Registry.call`` on the bench's
  FHIR client, the path the agent takes), never through the bundles. It reads the question's
  *meaning* from the task (``scenario.meta``: which codes, which form of question; the task text:
  names, the reported list, the note to write) and every *value* from the server. It never reads
  ``scenario.answer``, ``expected_writes`` or ``provenance``. It must score 100% on every frozen set;
  anything less is a tool gap or a ground-truth bug.
- ``oracle-by-name``: the oracle, searching conditions and medications with ``text=`` the name the question
  writes instead of the code it reads from ``meta`` (``oracle_by_name.py``): trajectories to train on, since a
  model has only the question's words. A training-data policy, not the grading proof (it may miss a name).
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
- ``chart-blind`` (null baseline, ``medagent.bench.baselines``): never reads the chart; answers from the dev
  split's answer statistics by question form and entity.
- ``none-answerer`` (null baseline): answers "none" to everything, reads and writes nothing.
- ``nearest-dev``, ``stated-number``, ``setup-only``, ``first-sentences``, ``lab-name-prior``: one policy per
  shortcut measured on v2's hard tier (``medagent.bench.shortcut_policies``), each on the categories it targets.

Every tool call becomes one trace step in the agent's format (step, tool, arguments, result, error,
references, wrote, tool_s), and the final answer a ``final_answer`` step, so the HTML report shows a
policy's trajectory like an agent's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medagent.bench.baselines import ChartBlindPolicy, NoneAnswererPolicy
from medagent.bench.oracle import OraclePolicy
from medagent.bench.oracle_by_name import OracleByNamePolicy
from medagent.bench.shortcut_policies import (
    FirstSentencesPolicy,
    LabNamePriorPolicy,
    NearestDevPolicy,
    SetupOnlyPolicy,
    StatedNumberPolicy,
)
from medagent.bench.solvers import Solver
from medagent.bench.wrong_policies import (
    AlwaysActPolicy,
    AlwaysNoPolicy,
    DoNothingPolicy,
    WriteTwicePolicy,
    WrongPatientPolicy,
)

__all__ = ["POLICY_NAMES", "make_policy"]

POLICIES: dict[str, Callable[[], Solver]] = {
    "oracle": OraclePolicy,
    "oracle-by-name": OracleByNamePolicy,
    "always-no": AlwaysNoPolicy,
    "do-nothing": DoNothingPolicy,
    "always-act": AlwaysActPolicy,
    "write-twice": WriteTwicePolicy,
    "wrong-patient": WrongPatientPolicy,
    "none-answerer": NoneAnswererPolicy,
    "stated-number": StatedNumberPolicy,
    "setup-only": SetupOnlyPolicy,
    "first-sentences": FirstSentencesPolicy,
}
SET_POLICIES: dict[str, Callable[[Path | None], Solver]] = {  # learn from the set's dev split
    "chart-blind": ChartBlindPolicy, "nearest-dev": NearestDevPolicy, "lab-name-prior": LabNamePriorPolicy}
POLICY_NAMES = (*POLICIES, *SET_POLICIES)


def make_policy(name: str, set_folder: Path | None = None) -> Solver:
    """The code policy for ``medagent bench run --agent NAME`` (``set_folder``: the set a prior learns from)."""
    if name in SET_POLICIES:
        return SET_POLICIES[name](set_folder)
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}") from None
