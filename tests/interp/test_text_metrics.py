"""Repetition rate and base-model perplexity: one implementation each."""

from __future__ import annotations

import math

import numpy as np

from lmdiff.interp.text_metrics import base_perplexity, pooled_base_perplexity, repetition_rate


def test_repetition_rate_counts_lower_cased_trigrams():
    assert repetition_rate("one two three four five") == 0.0
    assert repetition_rate("a b") == 0.0
    assert repetition_rate("a b c a b c") == 1 - 3 / 4  # 4 trigrams, 3 distinct
    assert repetition_rate("The cat sat. the cat sat.") == repetition_rate("the cat sat. the cat sat.") > 0


class _FakeBase:
    """Scores each reply with one log-prob of -1 per word (records what it was asked)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def chat_text(self, prompt: str) -> str:
        return f"<{prompt}>"

    def score(self, contexts, continuations, batch_size=8):  # type: ignore[no-untyped-def]
        self.calls.append(list(continuations))
        return [np.full(len(c.split()), -float(i + 1)) for i, c in enumerate(continuations)]


def test_base_perplexity_per_reply_and_pooled():
    base = _FakeBase()
    ppl = base_perplexity(base, ["p", "q", "r"], ["x y", "  ", "z"])  # type: ignore[arg-type]
    assert base.calls == [["x y", "z"]]  # blank replies are not scored
    assert ppl[0] == math.exp(1.0) and ppl[1] == math.inf and ppl[2] == math.exp(2.0)
    pooled = pooled_base_perplexity(base, ["p", "q", "r"], ["x y", "", "z"])  # type: ignore[arg-type]
    assert pooled == math.exp((1 + 1 + 2) / 3)
    assert pooled_base_perplexity(base, ["p"], [" "]) == math.inf  # type: ignore[arg-type]


def test_base_perplexity_of_the_tiny_model(tiny_lm):
    ppl = base_perplexity(tiny_lm, ["Hi"], ["hello there friend"])
    lp = tiny_lm.score([tiny_lm.chat_text("Hi")], ["hello there friend"])[0]
    assert ppl[0] == math.exp(-float(lp.mean())) and ppl[0] > 1
