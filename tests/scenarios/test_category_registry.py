"""The scenario category registry: every declaration is complete, the frozen sets and the registry agree, and no
oracle handler can reach the bundles or the expected answer (checked on the code each handler reaches)."""

from __future__ import annotations

import ast
import inspect
import sys
from collections import Counter
from pathlib import Path

import pytest

from medagent.scenarios.category import Category, categories, category, category_of
from medagent.scenarios.models import Scenario

# what an oracle handler may use: the tools (through the ToolCaller), the rows they return, the codes and the
# calendar rules the task text states; never the chart (bundles), the population, the reference or the graders
ORACLE_MAY_IMPORT = {
    "medagent.scenarios.tool_caller", "medagent.scenarios.tool_rows", "medagent.scenarios.chart_reads",
    "medagent.scenarios.models", "medagent.scenarios.codes", "medagent.scenarios.clock", "medagent.vocabulary",
    "__future__", "json", "re", "datetime", "statistics", "typing", "collections", "collections.abc", "math",
}
GROUND_TRUTH = {"answer", "expected_writes", "provenance", "read_only", "branch", "setup"}


def assert_complete(c: Category) -> None:
    """One declaration holds everything about its category (also used by the toy-category test)."""
    assert c.suite in ("ehrqa", "agentic") and c.tier in ("core", "hard", "workflow"), c.name
    assert c.description and "\n" not in c.description, c.name
    assert inspect.iscoroutinefunction(c.solve), c.name
    assert len(inspect.signature(c.solve).parameters) == 2, c.name  # (tools, scenario)
    assert c.generate is not None or c.generate_population is not None, c.name
    assert c.phrasings, c.name
    for form, phrasings in c.phrasings.items():
        assert len(phrasings) >= 5 and len(set(phrasings)) == len(phrasings), (c.name, form)
    assert not c.variant_shares or c.suite == "agentic", c.name
    assert category(c.name, c.since) is c
    modules, attributes = oracle_reaches(c)
    assert modules <= ORACLE_MAY_IMPORT, (c.name, modules - ORACLE_MAY_IMPORT)
    assert not attributes & GROUND_TRUTH, (c.name, attributes & GROUND_TRUTH)


def test_every_category_is_complete() -> None:
    assert len(categories()) >= 33
    for version in (2, 3):  # a name is declared once per set; v3 redeclares some of v2's under their names
        declared = categories(since=version)
        assert len({c.name for c in declared}) == len(declared), version
        for tier in {c.tier for c in declared}:
            orders = Counter(c.order for c in declared if c.tier == tier)
            assert max(orders.values()) == 1, (version, tier, orders)  # one place per category in its tier's files
    for c in categories():
        assert_complete(c)


def test_a_name_is_declared_once_per_set() -> None:
    """Two declarations of one name must belong to different sets; lookups take the set's."""
    async def solve(tools: object, sc: Scenario) -> None:  # pragma: no cover - never called
        return None

    def generate(given: object) -> list[Scenario]:  # pragma: no cover - never called
        return []

    first = Category(name="x_once", suite="ehrqa", tier="core", order=999, description="x", solve=solve,  # type: ignore[arg-type]
                     generate=generate, until=2)
    second = Category(name="x_once", suite="ehrqa", tier="core", order=999, description="x", solve=solve,  # type: ignore[arg-type]
                      generate=generate, since=2)
    from medagent.scenarios import category as registry

    registry.register(first)
    with pytest.raises(ValueError, match="declared twice for the same sets"):
        registry.register(Category(name="x_once", suite="ehrqa", tier="core", order=999, description="x",
                                   solve=solve, generate=generate, since=1, until=2))  # type: ignore[arg-type]
    del registry._REGISTRY["x_once"]
    assert category("safety_gated_order", 2).since == 2 and category("safety_gated_order", 3).since == 3
    assert category("safety_gated_order").since == 3  # no set given: the newest
    assert category("interval_age", 3) is category("interval_age", 2)  # carried into v3 as it is
    assert second.in_set(3) and not first.in_set(3)


def test_unknown_category_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown scenario category 'no_such'.*condition_existence"):
        category("no_such")


def test_a_category_needs_a_generator() -> None:
    async def solve(tools: object, sc: Scenario) -> None:  # pragma: no cover - never called
        return None

    with pytest.raises(ValueError, match="no generator"):
        Category(name="x", suite="ehrqa", tier="core", order=1, description="x", solve=solve)  # type: ignore[arg-type]


def test_the_frozen_sets_and_the_registry_agree(frozen: list[Scenario]) -> None:
    """Every scenario's category is registered with the scenario's suite and tier; every form has phrasings."""
    for s in frozen:
        declared = category_of(s)
        assert (declared.suite, declared.tier) == (s.suite, s.tier), s.id
        form = str(s.meta.get("form") or s.category)
        assert form in declared.phrasings, (s.id, form)


def test_v2_holds_every_category_of_version_2(v2_dir: Path) -> None:
    from medagent.scenarios.scenario_files import read_scenarios

    present = {s.category for s in read_scenarios(v2_dir)}
    assert present == {c.name for c in categories(since=2)}


# ---------- the oracle handlers read only the tools, the task text and meta ----------

def _reached(module_tree: ast.Module, start: str) -> list[ast.AST]:
    """The module-level definitions ``start`` reaches by name (functions, classes, constants), itself included."""
    defs: dict[str, ast.AST] = {}
    for node in module_tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    defs[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defs[node.target.id] = node
    seen: dict[str, ast.AST] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen[name] = defs[name]
        todo.extend(n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name))
    return list(seen.values())


def _imported_names(module_tree: ast.Module) -> dict[str, str]:
    """Local name -> the module it was imported from."""
    names: dict[str, str] = {}
    for node in ast.walk(module_tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
    return names


def oracle_reaches(declared: Category) -> tuple[set[str], set[str]]:
    """(modules whose names the category's handler reaches, scenario attributes it reads)."""
    module = sys.modules[declared.solve.__module__]
    tree = ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
    imported = _imported_names(tree)
    nodes = _reached(tree, declared.solve.__name__)
    used = {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}
    modules = {imported[name] for name in used if name in imported}
    attributes = {n.attr for node in nodes for n in ast.walk(node) if isinstance(n, ast.Attribute)
                  and isinstance(n.value, ast.Name) and n.value.id in ("sc", "scenario")}
    return modules, attributes


def test_the_static_check_catches_a_handler_that_reads_the_chart_or_the_answer() -> None:
    """The check above can fail: a handler reaching a generator helper (which reads the chart) is caught."""
    source = '''
from medagent.scenarios.chart import Chart
from medagent.scenarios.tool_caller import OracleAnswer

def _from_chart(chart: Chart) -> str:
    return chart.mrn

async def solve(tools, sc):
    return OracleAnswer(_from_chart(sc.meta["chart"]) + str(sc.answer), [])
'''
    tree = ast.parse(source)
    nodes = _reached(tree, "solve")
    used = {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}
    assert {_imported_names(tree)[n] for n in used if n in _imported_names(tree)} - ORACLE_MAY_IMPORT == {
        "medagent.scenarios.chart"}
    assert {n.attr for node in nodes for n in ast.walk(node) if isinstance(n, ast.Attribute)} & GROUND_TRUTH == {
        "answer"}
