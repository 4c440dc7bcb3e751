"""Steering search: the largest strength whose steered generations stay coherent (offline measures).

One implementation, used by adl (mean differences) and the dictionary methods (PCA components,
SAE and crosscoder latents). The settings come from any object with the fields of
:class:`SteeringSettings` (adl's and the dictionary methods' configs both have them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from lmdiff.config import GenerationConfig
from lmdiff.interp.hooks import steer
from lmdiff.interp.text_metrics import base_perplexity, repetition_rate

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

#: Prompts steered generations answer (the first ``steering_prompts`` are used).
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


class SteeringSettings(Protocol):
    """The settings a steering search reads."""

    temperature: float
    max_new_tokens: int
    steering_samples: int
    steering_search_steps: int
    batch_size: int
    max_strength: float
    max_ppl_factor: float
    max_repetition: float


def search_strength(
    lm: LanguageModel, base: LanguageModel, layer: int, vector: torch.Tensor, prompts: Sequence[str],
    cfg: SteeringSettings, seed: int = 0,
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


def steered_vs_plain(
    lm: LanguageModel, base: LanguageModel, layer: int, vector: torch.Tensor, prompts: Sequence[str],
    cfg: SteeringSettings, seed: int = 0,
) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]]]:
    """Search the coherent strength for ``vector``, then one unsteered and one steered generation per prompt.

    Returns:
        (strength, sample rows with ``prompt``/``unsteered``/``steered``/``alpha``, search trace).
    """
    alpha, trace = search_strength(lm, base, layer, vector, prompts, cfg, seed)
    gen = GenerationConfig(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=seed,
                           batch_size=cfg.batch_size)
    plain = lm.generate(list(prompts), gen)
    with steer(lm, layer, vector, alpha):
        steered = lm.generate(list(prompts), gen)
    rows = [{"alpha": alpha, "prompt": pr, "unsteered": plain[i][0].text, "steered": steered[i][0].text}
            for i, pr in enumerate(prompts)]
    return alpha, rows, trace
