"""medagent: build, serve and score EHR agents on FHIR.

What you build with, importable from here (each loaded on first use, so ``import medagent`` stays light)::

    import asyncio
    from medagent import Agent, EmbeddedServer, FhirClient, get_settings, load_backend

    async def main() -> None:
        with EmbeddedServer(get_settings().db_path) as server:  # the packaged Synthea patients (loaded once)
            async with FhirClient(server.base_url) as client:
                agent = Agent(load_backend("embedded"), client=client)  # every medagent tool, writes refused
                result = await agent.run("What was the patient's most recent HbA1c?", now="2019-06-01T09:00:00Z",
                                         patient="ba18818d-faef-44cd-9744-b12d8973d402")
        print(result.answer, result.citations)

    asyncio.run(main())

- the agent: ``Agent``, ``Limits``, ``AgentResult``;
- tools: ``tool`` (decorator), ``Tool``, ``ToolArgs``, ``ToolContext``, ``ToolResult``, ``ToolError``,
  ``Registry``, ``default_registry``; write approval: ``ApprovalDecision``, ``approval_policy``;
- FHIR: ``FhirClient``, ``EmbeddedServer``;
- models: ``load_backend``, ``ModelBackend``, ``BackendKind``, ``register_backend``, ``ScriptedPolicy`` (the test
  model);
- scenarios and grading: ``Scenario``, ``ExpectedAnswer``, ``Verdict``, ``grade``, ``Category``, ``categories``,
  ``register``, ``load_scenarios``;
- the benchmark: ``run_benchmark``, ``make_solver``, ``Solver``, ``TaskRecord``;
- settings: ``get_settings``, ``Settings``.
"""

from __future__ import annotations

import importlib

from medagent.version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (import medagent stays light)
if TYPE_CHECKING:
    from typing import Any

    from medagent.agent.graph import Agent as Agent
    from medagent.agent.state import AgentResult as AgentResult
    from medagent.agent.state import Limits as Limits
    from medagent.bench.results import TaskRecord as TaskRecord
    from medagent.bench.runner import run_benchmark as run_benchmark
    from medagent.bench.scenario_sets import load_scenarios as load_scenarios
    from medagent.bench.solvers import Solver as Solver
    from medagent.bench.solvers.catalog import make_solver as make_solver
    from medagent.config import Settings as Settings
    from medagent.config import get_settings as get_settings
    from medagent.fhir.client import FhirClient as FhirClient
    from medagent.fhir.server.process import EmbeddedServer as EmbeddedServer
    from medagent.models.backends import BackendKind as BackendKind
    from medagent.models.backends import register_backend as register_backend
    from medagent.models.base import ModelBackend as ModelBackend
    from medagent.models.base import load_backend as load_backend
    from medagent.models.scripted import ScriptedPolicy as ScriptedPolicy
    from medagent.scenarios.category import Category as Category
    from medagent.scenarios.category import categories as categories
    from medagent.scenarios.category import register as register
    from medagent.scenarios.grading import grade as grade
    from medagent.scenarios.models import ExpectedAnswer as ExpectedAnswer
    from medagent.scenarios.models import Scenario as Scenario
    from medagent.scenarios.models import Verdict as Verdict
    from medagent.tools.approval import ApprovalDecision as ApprovalDecision
    from medagent.tools.approval import approval_policy as approval_policy
    from medagent.tools.context import ToolContext as ToolContext
    from medagent.tools.registry import Registry as Registry
    from medagent.tools.registry import Tool as Tool
    from medagent.tools.registry import ToolArgs as ToolArgs
    from medagent.tools.registry import ToolError as ToolError
    from medagent.tools.registry import ToolResult as ToolResult
    from medagent.tools.registry import default_registry as default_registry
    from medagent.tools.registry import tool as tool

# public name -> the module that defines it (imported on first access: PEP 562)
_EXPORTS = {
    "Agent": "medagent.agent.graph",
    "AgentResult": "medagent.agent.state",
    "Limits": "medagent.agent.state",
    "tool": "medagent.tools.registry",
    "Tool": "medagent.tools.registry",
    "ToolArgs": "medagent.tools.registry",
    "ToolResult": "medagent.tools.registry",
    "ToolError": "medagent.tools.registry",
    "Registry": "medagent.tools.registry",
    "default_registry": "medagent.tools.registry",
    "ToolContext": "medagent.tools.context",
    "ApprovalDecision": "medagent.tools.approval",
    "approval_policy": "medagent.tools.approval",
    "FhirClient": "medagent.fhir.client",
    "EmbeddedServer": "medagent.fhir.server.process",
    "load_backend": "medagent.models.base",
    "ModelBackend": "medagent.models.base",
    "BackendKind": "medagent.models.backends",
    "register_backend": "medagent.models.backends",
    "ScriptedPolicy": "medagent.models.scripted",
    "Scenario": "medagent.scenarios.models",
    "ExpectedAnswer": "medagent.scenarios.models",
    "Verdict": "medagent.scenarios.models",
    "grade": "medagent.scenarios.grading",
    "Category": "medagent.scenarios.category",
    "categories": "medagent.scenarios.category",
    "register": "medagent.scenarios.category",
    "load_scenarios": "medagent.bench.scenario_sets",
    "run_benchmark": "medagent.bench.runner",
    "make_solver": "medagent.bench.solvers.catalog",
    "Solver": "medagent.bench.solvers",
    "TaskRecord": "medagent.bench.results",
    "get_settings": "medagent.config",
    "Settings": "medagent.config",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
