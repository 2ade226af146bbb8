"""The agent: a LangGraph loop (decide -> approve -> act) over one model backend and the typed tools.

``Agent`` (``graph``), its ``Limits`` and ``AgentResult`` (``state``), the action protocol the model answers in
(``actions``), the prompts it reads (``prompts``) and the answer formats the task text asks for
(``answer_format``). ``Agent`` and the state types are loaded on first use, so importing a light module of this
package (``prompts``) does not import LangGraph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.agent.graph import Agent
    from medagent.agent.state import AgentResult, Limits

__all__ = ["Agent", "AgentResult", "Limits"]
_WHERE = {"Agent": "medagent.agent.graph", "AgentResult": "medagent.agent.state", "Limits": "medagent.agent.state"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
