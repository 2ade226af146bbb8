"""What a code solver's trajectory would cost the agent: tool calls, and the tokens of every model call it implies.

The agent re-reads the whole conversation at every step, so a trajectory of n tool calls costs n + 1 model calls,
each prompted with the system prompt, the tool catalog, the task and every earlier step (``decision_messages``,
the agent's own prompt builder) and answered with one action. ``trajectory_cost`` replays a trajectory (the
oracle's, from a run's ``results.jsonl``) through those prompts and counts tokens with a tokenizer (the Gemma
tokenizer MedGemma shares, when the converted embedded model is in MEDAGENT_HOME) or characters / 4.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medagent.agent.prompts import decision_messages, tool_result_message
from medagent.agent.state import Limits
from medagent.scenarios.models import Scenario
from medagent.trajectory import Step

TokenCounter = Callable[[str], int]
TOKENIZER_PATH = Path("models") / "gemma3-270m" / "tokenizer.json"


@dataclass(frozen=True)
class TrajectoryCost:
    tool_calls: int
    tokens: int
    largest_result_chars: int

    def within(self, limits: Limits) -> bool:
        """Whether the agent could follow it: a tool call per step before its last, which must answer, and the
        tokens under its budget."""
        return self.tool_calls <= limits.max_steps - 1 and self.tokens < limits.max_tokens


def token_counter(home: Path | None) -> tuple[TokenCounter, str]:
    """(count, what it counts with): the Gemma tokenizer under ``home`` if present, else characters / 4."""
    path = home / TOKENIZER_PATH if home else None
    if path is not None and path.exists():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
        return (lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)), "Gemma 3 tokenizer"
    return (lambda text: (len(text) + 3) // 4), "characters / 4"


def _action(step: Step) -> str:
    return json.dumps({"tool": step.tool, "arguments": step.arguments or {}}, ensure_ascii=False, separators=(",", ":"))


def trajectory_cost(
    scenario: Scenario, trace: list[Step], tools: list[dict[str, Any]], count: TokenCounter, *, profile: str = "full"
) -> TrajectoryCost:
    """Tool calls and tokens (every prompt plus every reply) of one trajectory replayed as the agent's turns."""
    history: list[dict[str, str]] = [{"role": "user", "content": scenario.question}]
    tokens = calls = largest = 0
    counted: dict[str, int] = {}  # each turn is counted once (every later prompt repeats it)

    def turn(text: str) -> int:
        if text not in counted:
            counted[text] = count(text) + 4  # 4: a turn's role markers
        return counted[text]

    for step in trace:
        if step.tool is None:
            continue
        messages = decision_messages(
            now=scenario.now,
            patient=scenario.patient_context,
            tools=tools,
            history=history,
            profile=profile,  # type: ignore[arg-type]
        )
        reply = _action(step)
        tokens += sum(turn(m["content"]) for m in messages) + count(reply)
        if not step.is_tool_call:
            break
        calls += 1
        result = step.result or ""
        largest = max(largest, len(result))
        history = [
            *history,
            {"role": "assistant", "content": reply},
            tool_result_message(step.tool, result, step.error),
        ]
    return TrajectoryCost(calls, tokens, largest)
