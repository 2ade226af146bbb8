"""The oracle, given each scenario without its truth: the proof it never peeks (shared by the policy tests)."""

from __future__ import annotations

from medagent.bench.solvers.oracle import OracleSolver
from medagent.fhir.client import FhirClient
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.trajectory import RunOutcome


class BlindOracle:
    """The oracle, given each scenario without its truth (answer, writes, provenance, branch)."""

    name = "oracle"
    model = None

    def __init__(self) -> None:
        self.oracle = OracleSolver()

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        blind = scenario.model_copy(update={"answer": ExpectedAnswer(type="none"), "expected_writes": [],
                                            "provenance": [], "read_only": True, "branch": None})
        return await self.oracle.solve(blind, client, run_id=run_id)
