"""What a category's oracle handler may use: the agent's typed tools at the scenario's now, nothing else.

A handler is ``async def solve(tools: ToolCaller, scenario: Scenario) -> OracleAnswer``. It reads the
question's *meaning* from ``scenario.meta`` and the task text, and every *value* from the server through
``tools.call`` (the agent's own tools, by name); never the bundles, never the expected answer, writes or
provenance. The bench hands it a caller that records every call in the task's trace and applies the code
solver's write rule (``medagent.bench.solvers``); this layer imports none of that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from medagent.scenarios.models import Scenario

if TYPE_CHECKING:
    from medagent.scenarios.chart_reads import ChartReads

__all__ = ["OracleAnswer", "OracleHandler", "ToolCaller", "ToolGap", "ToolOutput"]


class ToolGap(RuntimeError):
    """A tool could not give the solver what it needs (an error, or rows cut off): a tool gap to report."""


class OracleAnswer(NamedTuple):
    """A handler's final answer (in the format the task asks for) and the references it cites."""

    answer: str
    citations: list[str]


class ToolOutput(Protocol):
    """What one tool call returns (the bench's ``ToolResult`` is one)."""

    @property
    def rows(self) -> list[dict[str, Any]]: ...

    @property
    def text(self) -> str: ...

    @property
    def references(self) -> list[str]: ...

    @property
    def truncated(self) -> int:
        """Rows that matched but were left out (the limit or the token budget): ask again from the next offset."""
        ...


class ToolCaller(Protocol):
    """The agent's tools as a code solver calls them: ``call(tool_name, **arguments)`` at the scenario's now.

    ``complete=True``: rows left out (limit or token budget) raise :class:`ToolGap` (the handler needs them
    all); an error result always raises it. A write tool goes through the solver's write rule (the oracle
    writes once; the deliberately wrong solvers write twice, to another patient ...). ``act_on_every_branch``
    is set by the always-act solver: a conditional task then takes its action on either branch. ``reads``
    are the shared lookups (:class:`~medagent.scenarios.chart_reads.ChartReads`), which a solver may
    override (``oracle-by-name`` searches by the question's words instead of codes).
    """

    @property
    def now(self) -> datetime: ...

    @property
    def act_on_every_branch(self) -> bool: ...

    @property
    def reads(self) -> ChartReads: ...

    async def call(self, tool_name: str, /, *, complete: bool = False, **arguments: Any) -> ToolOutput: ...


OracleHandler = Callable[[ToolCaller, Scenario], Awaitable[OracleAnswer]]
