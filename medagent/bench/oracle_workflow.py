"""The oracle's handler for the workflow tier: each category reads its facts through the tools, applies its
protocol and carries out the plan (writes, the structured note, the JSON answer).

The category modules (``medagent.scenarios.workflow.<category>``) hold the reading and the protocol; this
module only dispatches and decides how much of the plan a policy carries out (all of it for the oracle; the
deliberately wrong workflow policies override ``workflow_actions``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medagent.bench.tool_session import ToolSession
from medagent.scenarios.models import Scenario
from medagent.scenarios.workflow import category_module
from medagent.scenarios.workflow.reading import carry_out, open_chart

if TYPE_CHECKING:
    from medagent.bench.oracle import OraclePolicy

Answer = tuple[str, list[str]]


async def solve_workflow(policy: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    await open_chart(s, sc.patient, str(sc.meta["mrn"]))
    plan = await category_module(sc.category).solve_plan(s, sc)
    actions, note = policy.workflow_actions(plan)
    answer = await carry_out(s, sc.patient, plan, actions=actions, note=note)
    cited = sorted({ref for step in s.trace for ref in step.references})[:20]
    return answer, cited
