"""Builders of expected answers, with the tolerance rules every generator shares.

Numbers: the question states the rounding (d decimals); the tolerance is one unit of the last
decimal (10**-d), so a correctly rounded or truncated value passes. A question is only asked
if every other value of the same measurement in the chart (the "near misses": the previous
result, a later one) lies more than twice the tolerance away; otherwise d grows by one, up to
two more places, and the question is dropped if that is still not enough.
"""

from __future__ import annotations

from collections.abc import Iterable

from medagent.scenarios.codes import LabInfo
from medagent.scenarios.models import ExpectedAnswer, Tolerance


def number_answer(
    value: float, info: LabInfo, distractors: Iterable[float] = (), extra_decimals: int = 2
) -> tuple[ExpectedAnswer, int] | None:
    """(expected answer, decimals to state) or None when near misses cannot be told apart."""
    others = [d for d in distractors if d != value]
    for decimals in range(info.decimals, info.decimals + extra_decimals + 1):
        tolerance = 10.0**-decimals
        if all(abs(other - value) > 2 * tolerance for other in others):
            expected = ExpectedAnswer(
                type="number",
                value=round(value, 6),
                unit=info.unit,
                tolerance=Tolerance(abs=tolerance),
                unit_factors=dict(info.unit_factors),
            )
            return expected, decimals
    return None


def none_number(info: LabInfo) -> ExpectedAnswer:
    """The expected answer when the measurement does not exist: the agent must say 'none'."""
    return ExpectedAnswer(type="number", value=None, unit=info.unit, unit_factors=dict(info.unit_factors))


def rounding_phrase(decimals: int) -> str:
    if decimals == 0:
        return "rounded to the nearest whole number"
    return f"rounded to {decimals} decimal place{'s' if decimals > 1 else ''}"


def boolean(value: bool) -> ExpectedAnswer:
    return ExpectedAnswer(type="boolean", value=value)


def on_date(value: str | None) -> ExpectedAnswer:
    return ExpectedAnswer(type="date", value=value)


def names(values: list[str], kind: str = "generic", aliases: dict[str, list[str]] | None = None) -> ExpectedAnswer:
    return ExpectedAnswer(type="names", value=sorted(set(values)), names_kind=kind, aliases=aliases or {})
