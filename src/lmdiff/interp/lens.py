"""Logit lens of residual vectors, and the lens delta of two mean activations, read out in float32.

The final norm and head run with float32 weights whatever the model's dtype
(:meth:`lmdiff.models.lm.LanguageModel.logit_lens`): a bf16 head's logits are spaced 0.125
apart between 16 and 32, as large as the log-probability differences these readouts rank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

TokenValues = list[tuple[str, float]]


def logit_lens(lm: LanguageModel, vectors: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Log-probabilities [..., V] (float32) of residual vectors [..., D] through ``lm``'s final norm and head."""
    return lm.logit_lens(torch.as_tensor(vectors, dtype=torch.float32))


def lens_tokens(lm: LanguageModel, vector: np.ndarray | torch.Tensor, top_k: int) -> TokenValues:
    """Top tokens (string, probability) of the logit lens of ``vector`` [D]."""
    vals, idx = torch.topk(logit_lens(lm, vector), top_k)
    return list(zip(lm.token_strings(idx.tolist()), vals.exp().tolist(), strict=True))


def lens_delta(lm: LanguageModel, mean_ft: np.ndarray, mean_base: np.ndarray) -> torch.Tensor:
    """lens(mean finetuned) - lens(mean base): each token's log-probability gain [V] (float32)."""
    lp = logit_lens(lm, np.stack([mean_ft, mean_base]))
    return lp[0] - lp[1]


def lens_delta_tokens(
    lm: LanguageModel, mean_ft: np.ndarray, mean_base: np.ndarray, top_k: int
) -> tuple[TokenValues, TokenValues]:
    """Top tokens (string, log-prob gain) of lens(mean finetuned) - lens(mean base), and of its negation.

    The lens of the raw difference vector is easily dominated by rare tokens whose unembedding
    happens to align with it; comparing the lens of the two mean activations asks instead which
    tokens the finetuned model's mean state favours over the base model's (and, negated, the reverse).
    """
    delta = lens_delta(lm, mean_ft, mean_base)
    up: TokenValues = []
    down: TokenValues = []
    for d, out in ((delta, up), (-delta, down)):
        vals, idx = torch.topk(d, top_k)
        out.extend(zip(lm.token_strings(idx.tolist()), vals.tolist(), strict=True))
    return up, down
