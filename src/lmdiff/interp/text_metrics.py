"""Offline measures of generated text: word n-gram repetition and perplexity under the base model.

One implementation of each, used by adl's steering search and by the organism builders and
checks. Repetition is counted on lower-cased words (so "The cat. the cat." repeats); blank
replies are not scored by the base model (their perplexity is infinite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of lower-cased word n-grams that repeat an earlier n-gram (0 = no repetition)."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(max(0, len(words) - n + 1))]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def reply_logprobs(
    base: LanguageModel, prompts: Sequence[str], replies: Sequence[str], *, batch_size: int = 8
) -> list[np.ndarray]:
    """Per-token log-probabilities of each reply under ``base``, given its chat-rendered prompt.

    Blank replies are not scored: their entry is an empty array.
    """
    if len(prompts) != len(replies):
        raise ValueError("prompts and replies differ in length")
    out: list[np.ndarray] = [np.zeros(0)] * len(replies)
    keep = [i for i, r in enumerate(replies) if r.strip()]
    if keep:
        scored = base.score([base.chat_text(prompts[i]) for i in keep], [replies[i] for i in keep],
                            batch_size=batch_size)
        for i, s in zip(keep, scored, strict=True):
            out[i] = s
    return out


def base_perplexity(
    base: LanguageModel, prompts: Sequence[str], replies: Sequence[str], *, batch_size: int = 8
) -> list[float]:
    """Perplexity of each reply under the base model, given its chat-rendered prompt (inf when blank)."""
    return [math.exp(-float(x.mean())) if len(x) else float("inf")
            for x in reply_logprobs(base, prompts, replies, batch_size=batch_size)]


def pooled_base_perplexity(
    base: LanguageModel, prompts: Sequence[str], replies: Sequence[str], *, batch_size: int = 8
) -> float:
    """Perplexity of all non-blank replies together (token-weighted) under the base model (inf when none)."""
    lps = reply_logprobs(base, prompts, replies, batch_size=batch_size)
    n = sum(len(x) for x in lps)
    return math.exp(-sum(float(x.sum()) for x in lps) / n) if n else float("inf")
