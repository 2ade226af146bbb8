"""Answer types: one declaration each (how an answer of that type is graded, and the answer a perfect agent
writes), found by name. The declarations live beside the graders (``medagent.scenarios.answers``); a new answer
type is one :func:`register_answer_type` call there."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medagent.scenarios.models import Check, ExpectedAnswer

__all__ = ["AnswerKind", "answer_type", "answer_types", "register_answer_type"]

DECLARED_IN = "medagent.scenarios.answers"


@dataclass(frozen=True, kw_only=True)
class AnswerKind:
    """One answer type: ``grade`` gives the checks of a final answer, ``reference`` the answer that must pass."""

    name: str
    description: str
    grade: Callable[[ExpectedAnswer, Any], list[Check]]
    reference: Callable[[ExpectedAnswer], Any]


_TYPES: dict[str, AnswerKind] = {}


def register_answer_type(kind: AnswerKind) -> AnswerKind:
    if kind.name in _TYPES and _TYPES[kind.name] is not kind:
        raise ValueError(f"answer type {kind.name!r} is declared twice")
    _TYPES[kind.name] = kind
    return kind


def answer_types() -> list[AnswerKind]:
    """Every answer type, in declaration order."""
    importlib.import_module(DECLARED_IN)
    return list(_TYPES.values())


def answer_type(name: str) -> AnswerKind:
    """The answer type of this name; KeyError naming the known ones."""
    importlib.import_module(DECLARED_IN)
    try:
        return _TYPES[name]
    except KeyError:
        raise KeyError(f"unknown answer type {name!r}; known: {', '.join(_TYPES)}") from None
