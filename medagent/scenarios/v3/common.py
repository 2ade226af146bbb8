"""What the v3 generators share: the set's tag, JSON answer formats, strict numbers, balanced selection."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from medagent.scenarios.category import ChartInput
from medagent.scenarios.codes import LabInfo
from medagent.scenarios.hard.common import HardBuilder
from medagent.scenarios.identity import rng_for
from medagent.scenarios.models import ExpectedAnswer, Scenario, Tolerance

TAG = "v3"
SET_NAME = "v3"


def builder(given: ChartInput) -> HardBuilder:
    """A hard-tier builder for one chart that writes v3 ids."""
    return HardBuilder(given.chart, given.population, given.seed, given.split, tag=TAG)


def number(value: float, unit: str | None, tolerance: float, factors: dict[str, float] | None = None) -> ExpectedAnswer:
    """A v3 number: one number alone (``single_number``), within ``tolerance`` in ``unit`` or a listed unit."""
    return ExpectedAnswer(
        type="number",
        value=round(value, 6),
        unit=unit,
        tolerance=Tolerance(abs=tolerance),
        unit_factors=dict(factors or {}),
        single_number=True,
    )


def lab_number(value: float, info: LabInfo, decimals: int) -> ExpectedAnswer:
    return number(value, info.unit, 10.0**-decimals, info.unit_factors)


def none_field(unit: str | None = None) -> ExpectedAnswer:
    """A field whose right answer is "none"/"not recorded" (a number there fails)."""
    return ExpectedAnswer(type="number", value=None, unit=unit, single_number=True)


def record(**fields: ExpectedAnswer) -> ExpectedAnswer:
    return ExpectedAnswer(type="record", fields=fields)


def json_format(fields: Sequence[tuple[str, str]], lead: str = "Answer as JSON") -> str:
    """'Answer as JSON: {"a": <what a holds>, "b": <...>}.' (keys in the order the grader reads them)."""
    return f"{lead}: {{" + ", ".join(f'"{key}": <{what}>' for key, what in fields) + "}."


def balanced(
    items: Iterable[Scenario],
    seed: int,
    category: str,
    key: Callable[[Scenario], str],
    shares: dict[str, int] | None = None,
) -> list[Scenario]:
    """Per split, the same number of items of every key (or the stated shares), drawn by the seeded stream."""
    grouped: dict[str, dict[str, list[Scenario]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        grouped[item.split][key(item)].append(item)
    chosen: list[Scenario] = []
    for split, by_key in sorted(grouped.items()):
        want = shares or {k: 1 for k in by_key}
        if any(k not in by_key for k in want):
            continue
        unit = min(len(by_key[k]) // want[k] for k in want)
        for k in sorted(want):
            rng = rng_for(seed, "v3-select", category, split, k)
            chosen.extend(rng.sample(sorted(by_key[k], key=lambda s: s.id), unit * want[k]))
    return chosen


def shuffled(rng: random.Random, values: Sequence[Any]) -> list[Any]:
    out = list(values)
    rng.shuffle(out)
    return out
