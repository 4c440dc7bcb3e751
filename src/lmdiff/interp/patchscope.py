"""Patchscope: put a vector in place of the last token's residual in identity prompts and read the next token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from lmdiff.interp.hooks import layer_hook

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

IDENTITY_PROMPTS = (
    "man -> man\n1135 -> 1135\nhello -> hello\n?",
    "bear -> bear\n42 -> 42\nblue -> blue\n?",
    "921 -> 921\ntarget -> target\nanna -> anna\n?",
)


def patchscope(
    lm: LanguageModel, layer: int, vector: torch.Tensor, scales: Sequence[float],
    prompts: Sequence[str] = IDENTITY_PROMPTS, top: int = 100, keep: int = 20,
) -> list[dict[str, Any]]:
    """Replace the last token's residual at block ``layer`` by ``scale * vector`` for each scale.

    Args:
        lm: the model read out.
        layer: the block whose output is patched.
        vector: the vector [D].
        scales: multiples of ``vector`` tried.
        prompts: identity prompts ending where the patched token stands.
        top: each prompt's top list; a token is kept only if it is in every prompt's.
        keep: tokens returned per scale.

    Returns:
        Per scale: ``{"scale", "tokens" (ids ranked by mean probability), "probs", "mass"}``.
    """
    seqs = [lm.encode(p) for p in prompts]
    out = []
    for scale in scales:
        def fn(h: torch.Tensor, _s: float = scale) -> torch.Tensor:
            h = h.clone()
            for r, s in enumerate(seqs):
                if len(s) <= h.shape[1]:
                    h[r, len(s) - 1] = _s * vector.to(h.device, h.dtype)
            return h

        with layer_hook(lm, layer, fn):
            (batch,) = list(lm.iter_forward(seqs, batch_size=len(seqs), sort_by_length=False))
        lp = batch.logprobs()
        probs = torch.stack([lp[r, len(s) - 1].exp() for r, s in enumerate(seqs)])
        tops = [set(torch.topk(p, min(top, p.shape[0])).indices.tolist()) for p in probs]
        stable = set.intersection(*tops)
        mean = probs.mean(0)
        ranked = sorted(stable, key=lambda t: -float(mean[t]))[:keep]
        out.append({"scale": float(scale), "tokens": ranked, "probs": [float(mean[t]) for t in ranked],
                    "mass": float(mean[ranked].sum()) if ranked else 0.0})
    return out
