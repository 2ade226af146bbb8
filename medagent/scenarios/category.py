"""Scenario categories: one :class:`Category` declaration per category, in its own module, found by the registry.

A category module (in a tier package of ``medagent.scenarios``: ``ehrqa``, ``agentic``, ``hard``, or a new one)
declares everything about its category in one place and registers it on import::

    CATEGORY = register(Category(
        name="temporal_window", suite="ehrqa", tier="hard", order=10,
        description="A lab value located by the dates of a diagnosis.",
        generate=generate,            # (ChartInput) -> list[Scenario]: ground truth from the chart (bundles)
        solve=solve,                  # async (ToolCaller, Scenario) -> OracleAnswer: the oracle, through the tools
        phrasings={"window_extreme": EXTREME_PHRASINGS, "first_after": FIRST_PHRASINGS},
    ))

The registry imports every module of every subpackage of ``medagent.scenarios`` (:func:`categories`), so a new
category is one new module (plus its tests): no table to extend. The build, the oracle and the tests read the
categories from here. This module imports no tools, FHIR, agent or bench code.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario, Split, Suite
from medagent.scenarios.population import Population
from medagent.scenarios.tool_caller import OracleHandler

__all__ = ["Category", "ChartInput", "PopulationInput", "Tier", "categories", "category", "register"]

Tier = Literal["core", "hard", "workflow"]
PACKAGE = "medagent.scenarios"


@dataclass(frozen=True)
class ChartInput:
    """What a per-chart generator is given: one patient's chart, the population, the build seed, the split."""

    chart: Chart
    population: Population
    seed: int
    split: Split

    @property
    def test(self) -> bool:
        """The patient is in the test split (the test-only phrasings are allowed)."""
        return self.split == "test"


@dataclass(frozen=True)
class PopulationInput:
    """What a population generator (cohort questions) is given: every chart, the seed, the test patients."""

    charts: Sequence[Chart]
    population: Population
    seed: int
    test_patients: frozenset[str]


ChartGenerator = Callable[[ChartInput], list[Scenario]]
PopulationGenerator = Callable[[PopulationInput], list[Scenario]]


@dataclass(frozen=True, kw_only=True)
class Category:
    """One scenario category: what it asks, how its scenarios are generated and how the oracle solves them.

    - ``order``: its place among the categories of its tier (set files, tables); unique within the tier.
    - ``generate``: the per-chart generator; ``generate_population``: one over the whole population (cohort
      questions). A category has at least one of them.
    - ``solve``: the oracle's handler (only the agent's tools, the scenario's meta and its text).
    - ``phrasings``: question form (or the category's name) -> the templates its generator draws from; the last
      of each list is used only in the test split.
    - ``conditional``: an agentic task with an act and a no-action branch, sampled 1:1.
    - ``variant_shares``: variant -> share when a core agentic task is sampled (default: equal shares).
    - ``since``: the first scenario set (2 = v2) whose build includes the category.
    """

    name: str
    suite: Suite
    tier: Tier
    order: int
    description: str
    solve: OracleHandler
    generate: ChartGenerator | None = None
    generate_population: PopulationGenerator | None = None
    phrasings: Mapping[str, Sequence[str]] = field(default_factory=dict)
    conditional: bool = False
    variant_shares: Mapping[str, int] = field(default_factory=dict)
    since: int = 2

    def __post_init__(self) -> None:
        if self.generate is None and self.generate_population is None:
            raise ValueError(f"category {self.name!r} has no generator (generate or generate_population)")


_REGISTRY: dict[str, Category] = {}
_discovered = False


def register(declared: Category) -> Category:
    """Add a category (at import of its module); a second category of the same name is an error."""
    known = _REGISTRY.get(declared.name)
    if known is not None and known is not declared and _origin(known) != _origin(declared):
        raise ValueError(f"category {declared.name!r} is declared twice ({_origin(known)} and {_origin(declared)})")
    _REGISTRY[declared.name] = declared
    return declared


def _origin(declared: Category) -> str:
    return getattr(declared.solve, "__module__", "?")


def discover() -> None:
    """Import every module of every subpackage of ``medagent.scenarios`` once (their categories register)."""
    global _discovered
    if _discovered:
        return
    package = importlib.import_module(PACKAGE)
    for info in pkgutil.iter_modules(package.__path__, f"{PACKAGE}."):
        if not info.ispkg:
            continue
        subpackage = importlib.import_module(info.name)
        for module in pkgutil.walk_packages(subpackage.__path__, f"{info.name}."):
            importlib.import_module(module.name)
    _discovered = True


def categories(*, tier: Tier | None = None, suite: Suite | None = None, since: int | None = None) -> list[Category]:
    """The registered categories, by tier then ``order``; ``since``: only those a set of that version includes."""
    discover()
    chosen = [c for c in _REGISTRY.values() if (tier is None or c.tier == tier) and (suite is None or c.suite == suite)
              and (since is None or c.since <= since)]
    tiers = list(get_args(Tier))
    return sorted(chosen, key=lambda c: (tiers.index(c.tier), c.order, c.name))


def category(name: str) -> Category:
    """The category of this name; KeyError naming the known ones."""
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown scenario category {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
