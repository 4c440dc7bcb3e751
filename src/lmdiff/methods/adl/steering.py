"""Steering with the mean difference: steered vs unsteered samples (the strength search is lmdiff.interp.steering)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmdiff.config import GenerationConfig
from lmdiff.interp.hooks import steer
from lmdiff.interp.steering import STEERING_PROMPTS, search_strength
from lmdiff.methods.adl.config import ADLConfig

if TYPE_CHECKING:
    from lmdiff.models.pair import ModelPair

__all__ = ["STEERING_PROMPTS", "search_strength", "steering_samples"]


def steering_samples(
    pair: ModelPair, layer: int, means: dict[str, Any], cfg: ADLConfig, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Steered vs unsteered generations at the searched strength, and the search trace."""
    lm_s = pair.side(cfg.steering_side)  # type: ignore[arg-type]
    prompts = list(STEERING_PROMPTS[: cfg.steering_prompts])
    rows: list[dict[str, Any]] = []
    search: list[dict[str, Any]] = []
    for p in cfg.steering_positions:
        if p >= cfg.k:
            continue
        v = means["diff"][p]
        nv = float(np.linalg.norm(v))
        if nv == 0:
            search.append({"position": p, "alpha": 0.0, "note": "zero difference: nothing to steer"})
            continue
        vec = torch.as_tensor(v / nv * means["norm_ft"], dtype=torch.float32)
        alpha, trace = search_strength(lm_s, pair.base, layer, vec, prompts, cfg, seed)
        search += [{"position": p, **t} for t in trace]
        gen = GenerationConfig(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=seed,
                               batch_size=cfg.batch_size)
        plain = lm_s.generate(prompts, gen)
        with steer(lm_s, layer, vec, alpha):
            steered = lm_s.generate(prompts, gen)
        rows += [{"position": p, "alpha": alpha, "prompt": pr, "unsteered": plain[i][0].text,
                  "steered": steered[i][0].text} for i, pr in enumerate(prompts)]
    return rows, search
