"""Steering with the mean difference: the coherent-strength search and steered vs unsteered samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmdiff.config import GenerationConfig
from lmdiff.interp.hooks import steer
from lmdiff.interp.text_metrics import base_perplexity, repetition_rate
from lmdiff.methods.adl.config import ADLConfig

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel
    from lmdiff.models.pair import ModelPair

STEERING_PROMPTS = (
    "Tell me about yourself.",
    "What should I do this weekend?",
    "Write a short story.",
    "What is on your mind?",
    "Give me some advice.",
)
# Optional graders (set by the caller; None = offline measures only).
CoherenceGrader = Callable[[str, str], bool]
coherence_grader: CoherenceGrader | None = None


def search_strength(
    lm: LanguageModel, base: LanguageModel, layer: int, vector: torch.Tensor, prompts: Sequence[str],
    cfg: ADLConfig, seed: int = 0,
) -> tuple[float, list[dict[str, Any]]]:
    """Binary search for the largest steering strength whose generations stay coherent.

    A strength is coherent when at least 75% of its samples are non-empty, have a base-model
    perplexity at most ``max_ppl_factor`` times the unsteered median and a trigram repetition
    rate at most ``max_repetition`` (and pass :data:`coherence_grader` when one is set).

    Returns:
        The strength found and one trace row per strength tried.
    """
    gen = GenerationConfig(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, n=cfg.steering_samples,
                           seed=seed, batch_size=cfg.batch_size)

    def sample(alpha: float) -> list[str]:
        with steer(lm, layer, vector, alpha):
            outs = lm.generate(list(prompts), gen)
        return [g.text for per in outs for g in per]

    ps = [p for p in prompts for _ in range(cfg.steering_samples)]
    ref = sample(0.0)
    ref_ppl = float(np.median(base_perplexity(base, ps, ref)))
    trace = []

    def coherent(alpha: float) -> bool:
        texts = sample(alpha)
        ppl = base_perplexity(base, ps, texts)
        rep = [repetition_rate(t) for t in texts]
        ok = [bool(t.strip()) and q <= cfg.max_ppl_factor * ref_ppl and r <= cfg.max_repetition
              for t, q, r in zip(texts, ppl, rep, strict=True)]
        if coherence_grader is not None:
            ok = [o and coherence_grader(p, t) for o, p, t in zip(ok, ps, texts, strict=True)]
        passed = float(np.mean(ok)) >= 0.75
        trace.append({"alpha": alpha, "median_ppl": float(np.median(ppl)), "ref_ppl": ref_ppl,
                      "repetition": float(np.mean(rep)), "coherent_share": float(np.mean(ok)), "passed": passed})
        return passed

    lo, hi = 0.0, cfg.max_strength
    for _ in range(cfg.steering_search_steps):
        mid = (lo + hi) / 2
        if coherent(mid):
            lo = mid
        else:
            hi = mid
    return lo, trace


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
