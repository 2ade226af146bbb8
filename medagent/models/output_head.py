"""The embedded model's output head (hidden state -> next token), cheap for greedy decoding.

On 2 CPU cores a decode step of Gemma 3 270M spent half its time in the output head: a 262,144 x 640
float32 matrix, 670 MB read for every token (~70 ms of ~146 ms). For greedy decoding only the best
allowed token matters, so the head is taken in two passes:

1. a bfloat16 copy of the matrix scores every token (half the bytes; ~25 ms);
2. the ``candidates`` best of those among the tokens the grammar allows are scored again exactly, in
   float32 with the model's own matrix, and the pick is the best of them.

The pick is the exact float32 argmax whenever that token is among the bfloat16 pass's best
``candidates``; bfloat16 moves a logit by a few hundredths to a few tenths, far less than the spread
of the best 64 (checked on the real weights and real prompts: tests/models/test_output_head.py).
Sampling (temperature > 0) needs every probability, so it uses the exact float32 head for all tokens.
"""

from __future__ import annotations

from typing import Any

CANDIDATES = 64


class OutputHead:
    """Picks the next token from the last hidden state; ``weight`` is the model's (tied) output matrix."""

    def __init__(self, weight: Any, *, softcap: float | None = None, candidates: int = CANDIDATES) -> None:
        import torch

        self.weight = weight  # float32 [vocab, hidden], shared with the model (no copy)
        self.approx = weight.detach().to(torch.bfloat16)
        self.softcap = softcap
        self.candidates = candidates

    def logits(self, hidden: Any) -> Any:
        """Exact float32 logits of every token (what the model's own head computes)."""
        return self._capped(self.weight @ hidden)

    def pick(self, hidden: Any, allowed: Any | None, temperature: float, generator: Any) -> int:
        """The next token: greedy through the two passes, or sampled from the exact distribution.
        ``allowed``: a bool mask over the vocabulary (the grammar's), or None for any token."""
        import torch

        if temperature > 0:
            scores = self.logits(hidden)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            probs = torch.softmax(scores / temperature, dim=-1)
            return int(torch.multinomial(probs, 1, generator=generator))
        approx = (self.approx @ hidden.to(torch.bfloat16)).float()
        if allowed is not None:
            approx = approx.masked_fill(~allowed, float("-inf"))
        top = torch.topk(approx, min(self.candidates, approx.shape[0])).indices
        if allowed is not None:
            top = top[allowed[top]]
            if top.numel() == 0:  # nothing is allowed: the grammar will refuse whatever comes
                return int(torch.argmax(approx))
        exact = self._capped(self.weight[top] @ hidden)
        return int(top[torch.argmax(exact)])

    def _capped(self, logits: Any) -> Any:
        import torch

        if self.softcap is None:
            return logits
        return torch.tanh(logits / self.softcap) * self.softcap
