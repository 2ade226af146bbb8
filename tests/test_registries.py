"""Every extension point is one declaration found by a registry; this lists every registry and checks each entry
is complete: scenario categories, answer types, model backends, tools and code solvers."""

from __future__ import annotations

import inspect

import pytest

from medagent.bench.solvers.catalog import CODE_SOLVER_NAMES, make_code_solver
from medagent.models.backends import BackendKind, backend_kinds, load_backend
from medagent.models.base import ModelError
from medagent.scenarios.answer_types import answer_type, answer_types
from medagent.scenarios.category import categories
from medagent.scenarios.models import ExpectedAnswer, Tolerance
from medagent.tools.registry import Tool, ToolArgs, default_registry

# one expected answer per answer type, with a value: its reference answer must pass its own grader
SAMPLES = {
    "boolean": ExpectedAnswer(type="boolean", value=True),
    "date": ExpectedAnswer(type="date", value="2019-05-02"),
    "names": ExpectedAnswer(type="names", value=["Lisinopril 10 MG Oral Tablet"], names_kind="medication"),
    "number": ExpectedAnswer(type="number", value=6.1, unit="%", tolerance=Tolerance(abs=0.05)),
    "text-contains": ExpectedAnswer(type="text-contains", value=["increasing"]),
    "record": ExpectedAnswer(type="record", fields={"value": ExpectedAnswer(type="number", value=6.1, unit="%"),
                                                    "date": ExpectedAnswer(type="date", value="2019-05-02")}),
    "none": ExpectedAnswer(type="none"),
}
SPECS = {"embedded": "embedded", "openai-compatible": "http://127.0.0.1:8000/v1"}  # one spec each kind claims


def test_the_registries_and_their_sizes() -> None:
    """The registries there are (a new one belongs in this file)."""
    sizes = {"categories": len(categories()), "answer types": len(answer_types()), "model backends": len(backend_kinds()),
             "tools": len(default_registry()), "code solvers": len(CODE_SOLVER_NAMES)}
    assert sizes["categories"] >= 33 and sizes["answer types"] == 7 and sizes["model backends"] >= 2
    assert sizes["tools"] >= 20 and sizes["code solvers"] >= 9


def test_every_category_is_declared_completely() -> None:
    from tests.scenarios.test_category_registry import assert_complete

    for declared in categories():
        assert_complete(declared)


@pytest.mark.parametrize("name", [kind.name for kind in answer_types()])
def test_every_answer_type_grades_its_own_reference_answer(name: str) -> None:
    kind = answer_type(name)
    assert kind.description and callable(kind.grade) and callable(kind.reference)
    expected = SAMPLES[name]  # a type without a sample here fails: declare its sample with it
    answer = kind.reference(expected)
    checks = kind.grade(expected, answer)
    assert all(check.passed for check in checks), (answer, checks)
    assert (not checks) == (name == "none")  # every type but "none" grades something
    if checks:
        assert not all(check.passed for check in kind.grade(expected, "I am not sure"))


def test_an_unknown_answer_type_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown answer type 'bolean'.*boolean"):
        ExpectedAnswer(type="bolean")


@pytest.mark.parametrize("kind", backend_kinds(), ids=lambda k: k.name)
def test_every_model_backend_claims_its_specs_alone(kind: BackendKind) -> None:
    assert kind.usage and callable(kind.load)
    spec = SPECS[kind.name]  # a kind without a sample spec here fails: add one with it
    assert [k.name for k in backend_kinds() if k.claims(spec)] == [kind.name]


def test_a_backend_registered_at_run_time_is_found_and_an_unclaimed_spec_names_every_usage() -> None:
    from medagent.models.backends import _KINDS, register_backend
    from medagent.models.scripted import ScriptedPolicy

    kind = BackendKind(name="scripted-test", usage="'scripted-test'", claims=lambda spec: spec == "scripted-test",
                       load=lambda spec, model_name=None, **opts: ScriptedPolicy([]))
    register_backend(kind)
    try:
        assert isinstance(load_backend("scripted-test"), ScriptedPolicy)
        with pytest.raises(ModelError, match="'scripted-test'") as info:
            load_backend("nope")
        assert all(k.usage in str(info.value) for k in backend_kinds())
    finally:
        _KINDS.pop(kind.name)


def test_every_tool_is_declared_completely() -> None:
    for item in default_registry():
        assert isinstance(item, Tool) and inspect.iscoroutinefunction(item.fn), item.name
        assert item.description and issubclass(item.args_model, ToolArgs), item.name
        assert item.example, item.name  # a model sees an example of every tool
        item.args_model.model_validate(item.example)


@pytest.mark.parametrize("name", CODE_SOLVER_NAMES)
def test_every_code_solver_is_built_by_its_cli_name(name: str) -> None:
    solver = make_code_solver(name)
    assert solver.name == name and solver.model is None and inspect.iscoroutinefunction(solver.solve)
