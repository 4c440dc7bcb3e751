"""The generative test: texts written to exemplify a hypothesis, scored by both models.

For each held-out prompt the LLM ``exemplar_writer`` writes two replies that differ only in the
hypothesised property (which slot holds the exemplar is drawn at random, against position bias).
Each reply is scored by both models; the statistic of a prompt is

    delta = [log p_ft(exemplar) - log p_base(exemplar)] - [log p_ft(control) - log p_base(control)]

(total log-probabilities of the reply given the chat-rendered prompt, so models with different
tokenizers compare). If the hypothesis describes the finetuned model, exemplars gain more from
the finetune than their controls and the mean delta is positive (negative when the hypothesis
describes the base model). Under the null, exemplar and control are exchangeable within a prompt,
so flipping the sign of each prompt's delta at random gives a valid permutation null.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Scorer", "generative_test", "sign_flip_pvalue"]

Scorer = Callable[[Sequence[str], Sequence[str]], tuple[NDArray[np.float64], NDArray[np.float64]]]
"""``(prompts, replies) -> (log p_base, log p_ft)``: total log-probability of each reply under each model."""

def sign_flip_pvalue(deltas: NDArray[np.float64], sign: int = 1, n_perm: int = 1999, seed: int = 0) -> float:
    """One-sided p-value of mean(sign * deltas) > 0 under sign flips (one flip per prompt).

    Exact (all 2^n sign patterns) for up to 16 prompts; otherwise ``n_perm`` random patterns plus
    the observed one.
    """
    d = sign * np.asarray(deltas, dtype=np.float64)
    if d.size == 0:
        return 1.0
    observed = d.mean()
    if d.size <= 16:
        patterns = 1.0 - 2.0 * ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1)
        return float(np.mean((patterns * d).mean(axis=1) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    flips = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, d.size))
    null = (flips * d).mean(axis=1)
    return float((1 + np.sum(null >= observed - 1e-12)) / (n_perm + 1))


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
        gen_delta=float(sign * deltas.mean()),
        gen_positive_share=float(np.mean(sign * deltas > 0)),
        gen_pvalue=sign_flip_pvalue(deltas, sign, n_perm=n_perm, seed=seed),
    )
    return summary, rows
