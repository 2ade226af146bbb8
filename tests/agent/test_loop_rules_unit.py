"""The loop's rules as pure functions (in-process, no server: fast enough for mutation testing):
when a run stops (``Limits.reached``) and when the next reply may only be the final answer
(``must_answer_reason``). Boundaries are hand-made: the step, token and time limits are inclusive
("12 steps allowed" means the 12th call is the last), the must-answer turn comes one step before the
step limit, and a repeated call is the same tool with the same arguments twice in a row."""

from __future__ import annotations

import pytest

from medagent.agent.prompts import must_answer_reason
from medagent.agent.state import Limits

LIMITS = Limits(max_steps=5, max_tokens=1000, timeout_s=30.0)


@pytest.mark.parametrize(("steps", "tokens", "elapsed", "expected"), [
    (0, 0, 0.0, None),
    (4, 999, 29.9, None),              # one short of every limit: the run goes on
    (5, 0, 0.0, "step_limit"),         # the step limit is reached at max_steps, not after it
    (6, 0, 0.0, "step_limit"),
    (0, 1000, 0.0, "token_budget"),    # exactly the budget is spent
    (0, 1001, 0.0, "token_budget"),
    (0, 0, 30.0, "timeout"),           # exactly the wall-clock limit
    (0, 0, 31.0, "timeout"),
    (5, 1000, 30.0, "step_limit"),     # several at once: the step limit is named first
    (4, 1000, 30.0, "token_budget"),   # then the token budget, then time
])
def test_limits_are_inclusive_and_named_in_order(steps: int, tokens: int, elapsed: float,
                                                 expected: str | None) -> None:
    assert LIMITS.reached(steps, tokens, elapsed) == expected


def step(tool: str | None, **arguments: object) -> dict[str, object]:
    return {"tool": tool, "arguments": arguments}


def test_the_last_allowed_step_asks_for_the_answer() -> None:
    assert must_answer_reason(4, [], 5) == "This is your last step."    # the 5th call would be the last
    assert must_answer_reason(5, [], 5) == "This is your last step."
    assert must_answer_reason(3, [], 5) is None


def test_a_repeat_is_the_same_tool_with_the_same_arguments_twice_in_a_row() -> None:
    a = step("search_observations", patient="p", text="glucose")
    assert must_answer_reason(2, [a, dict(a)], 10) == "You repeated the same tool call; its result will not change."
    other_args = step("search_observations", patient="p", text="hemoglobin a1c")
    assert must_answer_reason(2, [a, other_args], 10) is None        # same tool, other arguments
    other_tool = step("search_conditions", patient="p", text="glucose")
    assert must_answer_reason(2, [a, other_tool], 10) is None        # same arguments, other tool
    assert must_answer_reason(3, [a, a, other_args], 10) is None     # only the last two calls count
    assert must_answer_reason(1, [a], 10) is None                     # one call is not a repeat


def test_an_unparseable_reply_between_two_equal_calls_does_not_hide_the_repeat() -> None:
    a = step("get_patient", patient="p")
    invalid = step(None)  # a reply that could not be parsed is recorded with no tool
    assert must_answer_reason(2, [a, invalid, a], 10) == "You repeated the same tool call; its result will not change."
