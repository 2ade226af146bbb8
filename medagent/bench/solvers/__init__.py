"""Solvers: what answers a scenario. The agent (any model backend) or a solver written in code.

A solver gets the scenario, a FHIR client on a freshly reset server and the run id, and returns its
:class:`~medagent.trajectory.RunOutcome` (answer, trajectory, audit); the runner then reads the server's
diff and grades. Same contract for the real agent (``agent``), the whole-record baseline (``whole_record``),
the oracle and the deliberately wrong code solvers (``oracle``, ``oracle_by_name``, ``wrong``, ``chart_blind``),
so the graders are proven on the path the agent takes. ``catalog`` builds one by its ``--agent`` name.
"""

from __future__ import annotations

from typing import Protocol

from medagent.fhir.client import FhirClient
from medagent.scenarios.models import Scenario
from medagent.trajectory import RunOutcome

__all__ = ["Solver"]


class Solver(Protocol):
    """Answers one scenario on the FHIR server ``client`` points at (``model``: the model it calls, if any)."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str | None: ...

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome: ...
