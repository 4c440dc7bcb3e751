"""The generative test: texts written to exemplify a hypothesis, scored by both models.

For each held-out prompt the LLM ``exemplar_writer`` writes two replies that differ only in the
hypothesised property (which slot holds the exemplar is drawn at random, against position bias).
Each reply is scored by both models; the statistic of a prompt is

    delta = [lp_ft(exemplar) - lp_base(exemplar)] - [lp_ft(control) - lp_base(control)]

where lp is the mean per-token log-probability of the reply given the chat-rendered prompt (each
model over its own tokens, so models with different tokenizers compare). Per token, not in total:
a finetune that shifts every token by c nats would otherwise give c x (length difference), so
length, tokenisation and fluency would count as support. If the hypothesis says the finetuned
model shows the property more, exemplars gain more from the finetune than their controls and the
mean delta is positive (negative when it says less). Under the null, exemplar and control are
exchangeable within a prompt, so flipping the sign of each prompt's delta at random gives a valid
permutation null.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmdiff.stats import sign_flip_test

__all__ = ["Scorer", "generative_test"]

Scorer = Callable[[Sequence[str], Sequence[str]], tuple[NDArray[np.float64], NDArray[np.float64]]]
"""``(prompts, replies) -> (lp_base, lp_ft)``: mean per-token log-probability of each reply under each model."""

def generative_test(
    writer: Any,
    hypothesis: str,
    prompts: Sequence[str],
    scorer: Scorer,
    *,
    direction: int = 1,
    max_words: int = 60,
    n_perm: int = 1999,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the generative test of one hypothesis on held-out prompts.

    Args:
        writer: the bound ``exemplar_writer`` role.
        hypothesis: the hypothesis sentence.
        prompts: held-out prompts (one exemplar/control pair each).
        scorer: scores replies under both models.
        direction: +1 when the hypothesis says the finetuned model shows the property more, -1 less
            (the exemplar, which shows the property, should then be likelier under the base model).
        max_words: length asked of each written reply.
        n_perm: sign-flip permutations.
        seed: seed of the slot draws and of the permutations.

    Returns:
        ``(summary, rows)``: the summary has ``gen_n`` (prompts with a valid pair), ``gen_n_invalid``,
        ``gen_delta`` (mean delta in the expected direction, nats), ``gen_positive_share`` and
        ``gen_pvalue``; one row per prompt holds the texts and the four log-probabilities behind it.
    """
    rng = random.Random(seed)
    inputs = [
        {"hypothesis": hypothesis, "prompt": p, "exemplar_slot": 1 if rng.random() < 0.5 else 2, "max_words": max_words}
        for p in prompts
    ]
    results = writer.many(inputs, progress=False)
    ok = [(item, r) for item, r in zip(inputs, results, strict=True) if r.valid and r.value is not None]
    sign = -1 if direction < 0 else 1
    summary: dict[str, Any] = {"gen_n": len(ok), "gen_n_invalid": len(inputs) - len(ok), "gen_sign": sign}
    if not ok:
        return {**summary, "gen_delta": float("nan"), "gen_positive_share": float("nan"), "gen_pvalue": 1.0}, []
    ps = [str(item["prompt"]) for item, _ in ok]
    exemplars = [r.value[0] for _, r in ok]
    controls = [r.value[1] for _, r in ok]
    lb_e, lf_e = scorer(ps, exemplars)
    lb_c, lf_c = scorer(ps, controls)
    deltas = (np.asarray(lf_e) - np.asarray(lb_e)) - (np.asarray(lf_c) - np.asarray(lb_c))
    rows = [
        {
            "prompt": p,
            "exemplar_slot": item["exemplar_slot"],
            "exemplar": e,
            "control": c,
            "logp_base_exemplar": float(a),
            "logp_ft_exemplar": float(b),
            "logp_base_control": float(c_),
            "logp_ft_control": float(d_),
            "delta": float(dl),
            "producer": r.producer,
        }
        for (item, r), p, e, c, a, b, c_, d_, dl in zip(
            ok, ps, exemplars, controls, lb_e, lf_e, lb_c, lf_c, deltas, strict=True
        )
    ]
    summary.update(
        gen_delta=float(sign * np.nanmean(deltas)),
        gen_positive_share=float(np.mean(sign * deltas[~np.isnan(deltas)] > 0)),
        gen_pvalue=sign_flip_test(sign * deltas, alternative="greater", n_perm=n_perm, seed=seed).pvalue,
    )
    return summary, rows
