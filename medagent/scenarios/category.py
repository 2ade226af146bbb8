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
from typing import get_args

from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario, Split, Suite, Tier
from medagent.scenarios.population import Population
from medagent.scenarios.tool_caller import OracleHandler

__all__ = [
    "Category",
    "ChartInput",
    "PopulationInput",
    "Tier",
    "categories",
    "category",
    "category_of",
    "register",
    "set_version",
]

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
Selection = Callable[[list[Scenario], int], list[Scenario]]


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
    - ``since``: the first scenario set (2 = v2) whose build includes the category; ``until``: the last one
      (None: every later set). Two declarations may share a name when their ranges do not overlap (v3 rebuilds
      v2's hard categories under their names).
    - ``select``: ``(candidates of every chart, seed) -> the items kept`` (balanced across the split), applied
      after generation; None keeps every candidate.
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
    until: int | None = None
    select: Selection | None = None

    def __post_init__(self) -> None:
        if self.generate is None and self.generate_population is None:
            raise ValueError(f"category {self.name!r} has no generator (generate or generate_population)")
        if self.until is not None and self.until < self.since:
            raise ValueError(f"category {self.name!r}: until {self.until} before since {self.since}")

    def in_set(self, version: int) -> bool:
        """Whether the build of set ``version`` includes this declaration."""
        return self.since <= version and (self.until is None or version <= self.until)


_REGISTRY: dict[str, list[Category]] = {}
_discovered = False


def register(declared: Category) -> Category:
    """Add a category (at import of its module); a second declaration of the same name is an error unless the sets
    they belong to do not overlap."""
    known = [
        c
        for c in _REGISTRY.get(declared.name, [])
        if c is not declared and (_origin(c), c.since, c.until) != (_origin(declared), declared.since, declared.until)
    ]
    for other in known:
        last, other_last = declared.until or 10**6, other.until or 10**6
        if declared.since <= other_last and other.since <= last:
            raise ValueError(
                f"category {declared.name!r} is declared twice for the same sets ({_origin(other)} and "
                f"{_origin(declared)})"
            )
    _REGISTRY[declared.name] = [*known, declared]
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
    chosen = [
        c
        for versions in _REGISTRY.values()
        for c in versions
        if (tier is None or c.tier == tier)
        and (suite is None or c.suite == suite)
        and (since is None or c.in_set(since))
    ]
    tiers = list(get_args(Tier))
    return sorted(chosen, key=lambda c: (tiers.index(c.tier), c.order, c.name))


def category(name: str, version: int | None = None) -> Category:
    """The category of this name in set ``version`` (None: the newest declaration; a set older than every
    declaration, v1: the earliest); KeyError naming the known ones."""
    discover()
    versions = _REGISTRY.get(name, [])
    by_age = sorted(versions, key=lambda c: c.since)
    found = (
        by_age[-1:]
        if version is None
        else [c for c in versions if c.in_set(version)] or [c for c in by_age if version < c.since][:1]
    )  # v1 (frozen data) is solved by its earliest declaration
    if not found:
        raise KeyError(
            f"unknown scenario category {name!r}"
            + (f" in set v{version}" if version else "")
            + f"; known: {', '.join(sorted(_REGISTRY))}"
        )
    return found[0]


def set_version(scenario: Scenario) -> int:
    """The set a scenario belongs to, from its id's tag (``v3-...`` -> 3, ``v2-...`` -> 2; v1 ids carry none)."""
    head = scenario.id.split("-", 1)[0]
    return int(head[1:]) if head[:1] == "v" and head[1:].isdigit() else 1


def category_of(scenario: Scenario) -> Category:
    """The declaration that generated this scenario (by its category's name and its set)."""
    return category(scenario.category, set_version(scenario))
