"""Effect sizes for differences between two models, and a prompt-level test of a proportion shift.

The plain effect sizes follow the usual "first minus second" convention:

* :func:`cohens_h`: ``2 asin(sqrt(p1)) - 2 asin(sqrt(p2))`` (0.2 small, 0.5 medium, 0.8 large);
* :func:`cohens_d`: standardised mean difference with the pooled standard deviation;
* :func:`log_odds_ratio`: log odds ratio with a Woolf (log-scale Wald) interval;
* :func:`risk_difference`: ``p1 - p2`` with Newcombe's hybrid score interval.

:func:`proportion_shift` takes per-prompt counts for two models (model A, e.g. the base, and model B,
e.g. the finetune) and reports the shift *from A to B* (``p_b - p_a``): effect sizes, cluster-bootstrap
intervals over prompts, and a permutation test whose unit is the prompt, never a z-test over texts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmdiff.stats._common import (
    SeedLike,
    StatsResult,
    as_float_vector,
    batches,
    check_alternative,
    check_positive_int,
    check_probability,
    make_rng,
    monte_carlo_pvalue,
    normal_quantile,
    percentile_interval,
    seed_record,
    wilson_interval,
)

__all__ = [
    "EffectSize",
    "ProportionShiftResult",
    "cohens_d",
    "cohens_h",
    "log_odds_ratio",
    "proportion_shift",
    "risk_difference",
]


@dataclasses.dataclass(frozen=True)
class EffectSize(StatsResult):
    """An effect size with a confidence interval.

    Attributes:
        name: ``"log_odds_ratio"`` or ``"risk_difference"``.
        estimate: the point estimate.
        low: lower end of the interval.
        high: upper end of the interval.
        ci: the confidence level.
        se: the standard error on the estimate's scale (NaN when the interval is not Wald-type).
        method: how the interval was computed.
        n1: trials in the first sample.
        n2: trials in the second sample.
    """

    name: str
    estimate: float
    low: float
    high: float
    ci: float
    se: float
    method: str
    n1: int
    n2: int


def _check_counts(k: float, n: float, name: str) -> None:
    if n <= 0 or k < 0 or k > n:
        raise ValueError(f"{name}: need 0 <= successes <= trials and trials > 0, got {k}/{n}")


def cohens_h(p1: float, p2: float) -> float:
    """Return Cohen's h, ``2 asin(sqrt(p1)) - 2 asin(sqrt(p2))``, for two proportions in [0, 1].

    Args:
        p1: the first proportion.
        p2: the second proportion.

    Returns:
        h, between -pi and pi; 0.2 / 0.5 / 0.8 are Cohen's small / medium / large.

    Raises:
        ValueError: if a proportion lies outside [0, 1].
    """
    if not (0.0 <= p1 <= 1.0 and 0.0 <= p2 <= 1.0):
        raise ValueError(f"proportions must lie in [0, 1], got {p1} and {p2}")
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


def cohens_d(x: ArrayLike, y: ArrayLike) -> float:
    """Return Cohen's d, ``(mean(x) - mean(y)) / s_pooled``, with the pooled (n-1) standard deviation.

    This describes the size of a difference; it is not a test, and it treats the values as
    independent (pass per-prompt means when values are grouped by prompt).

    Args:
        x: the first sample (no NaN).
        y: the second sample (no NaN).

    Returns:
        The standardised difference; NaN when the pooled standard deviation is 0.

    Raises:
        ValueError: on NaN values or fewer than 2 values per sample.
    """
    a = as_float_vector(x, "x")
    b = as_float_vector(y, "y")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("cohens_d got NaN values; exclude them explicitly")
    if a.size < 2 or b.size < 2:
        raise ValueError(f"cohens_d needs at least 2 values per sample, got {a.size} and {b.size}")
    pooled = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    if pooled == 0:
        return math.nan
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


def log_odds_ratio(
    k1: float, n1: float, k2: float, n2: float, *, ci: float = 0.95, correction: float = 0.5
) -> EffectSize:
    """Log odds ratio of sample 1 versus sample 2, with a Woolf (Wald on the log scale) interval.

    ``log[(k1 / (n1 - k1)) / (k2 / (n2 - k2))]``. When a cell of the 2x2 table is zero,
    ``correction`` (Haldane-Anscombe, 0.5) is added to all four cells; the method string says so.

    Args:
        k1: successes in sample 1.
        n1: trials in sample 1.
        k2: successes in sample 2.
        n2: trials in sample 2.
        ci: the confidence level.
        correction: the value added to every cell when one is zero (0 disables it; the estimate is
            then infinite or NaN for such tables).

    Returns:
        An :class:`EffectSize` named ``"log_odds_ratio"``.
    """
    check_probability(ci, "ci")
    _check_counts(k1, n1, "sample 1")
    _check_counts(k2, n2, "sample 2")
    cells = np.array([k1, n1 - k1, k2, n2 - k2], dtype=np.float64)
    method = "woolf"
    if (cells == 0).any() and correction > 0:
        cells = cells + correction
        method = f"woolf+haldane_anscombe({correction})"
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(np.log(cells[0]) - np.log(cells[1]) - np.log(cells[2]) + np.log(cells[3]))
        se = float(np.sqrt((1.0 / cells).sum()))
    z = normal_quantile(ci)
    return EffectSize(
        name="log_odds_ratio",
        estimate=est,
        low=est - z * se,
        high=est + z * se,
        ci=float(ci),
        se=se,
        method=method,
        n1=int(n1),
        n2=int(n2),
    )


def risk_difference(k1: float, n1: float, k2: float, n2: float, *, ci: float = 0.95) -> EffectSize:
    """Risk difference ``k1/n1 - k2/n2`` with Newcombe's hybrid score interval (method 10, 1998).

    Newcombe's interval combines the two Wilson intervals; unlike the Wald interval it keeps its
    coverage near 0 and 1 and never leaves [-1, 1].

    Args:
        k1: successes in sample 1.
        n1: trials in sample 1.
        k2: successes in sample 2.
        n2: trials in sample 2.
        ci: the confidence level.

    Returns:
        An :class:`EffectSize` named ``"risk_difference"``; ``se`` is the Wald standard error.
    """
    check_probability(ci, "ci")
    _check_counts(k1, n1, "sample 1")
    _check_counts(k2, n2, "sample 2")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(p1, n1, ci)
    l2, u2 = wilson_interval(p2, n2, ci)
    d = p1 - p2
    return EffectSize(
        name="risk_difference",
        estimate=float(d),
        low=float(d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
        high=float(d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)),
        ci=float(ci),
        se=math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2),
        method="newcombe_hybrid_score",
        n1=int(n1),
        n2=int(n2),
    )


@dataclasses.dataclass(frozen=True)
class ProportionShiftResult(StatsResult):
    """A shift of a proportion from model A to model B, with the prompt as the unit of inference.

    Attributes:
        p_a: pooled proportion of model A (``sum k_a / sum n_a``).
        p_b: pooled proportion of model B.
        risk_difference: ``p_b - p_a``.
        risk_difference_low: cluster-bootstrap (over prompts) lower bound.
        risk_difference_high: cluster-bootstrap upper bound.
        cohens_h: ``h(p_b, p_a)``.
        cohens_h_low: cluster-bootstrap lower bound.
        cohens_h_high: cluster-bootstrap upper bound.
        log_odds_ratio: pooled log odds ratio of B versus A (0.5 added to all cells if one is 0).
        log_odds_ratio_low: cluster-bootstrap lower bound.
        log_odds_ratio_high: cluster-bootstrap upper bound.
        mean_group_difference: mean over informative prompts of ``k_b/n_b - k_a/n_a`` (prompts
            weighted equally).
        pvalue: permutation p-value ``(b + 1) / (n_perm + 1)`` for ``p_b - p_a`` (two-sided:
            twice the smaller one-sided p-value, capped at 1).
        test: ``"within_group"`` (model labels of texts permuted within each prompt: a stratified,
            exact conditional test) or ``"whole_group"`` (A and B swapped per prompt: a paired
            sign-flip test).
        alternative: ``"two-sided"``, ``"greater"`` (B higher) or ``"less"``.
        n_a: texts of model A (sum of ``n_a``).
        n_b: texts of model B.
        k_a: texts of model A with the property.
        k_b: texts of model B with the property.
        n_groups: prompts with at least one text.
        n_informative_groups: prompts with texts of both models.
        n_perm: permutations.
        n_boot: bootstrap replicates.
        ci: confidence level of the intervals.
        seed: the int seed, or None.
    """

    p_a: float
    p_b: float
    risk_difference: float
    risk_difference_low: float
    risk_difference_high: float
    cohens_h: float
    cohens_h_low: float
    cohens_h_high: float
    log_odds_ratio: float
    log_odds_ratio_low: float
    log_odds_ratio_high: float
    mean_group_difference: float
    pvalue: float
    test: str
    alternative: str
    n_a: int
    n_b: int
    k_a: int
    k_b: int
    n_groups: int
    n_informative_groups: int
    n_perm: int
    n_boot: int
    ci: float
    seed: int | None


def _as_counts(values: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = as_float_vector(values, name)
    if np.isnan(arr).any() or (arr < 0).any() or (arr != np.round(arr)).any():
        raise ValueError(f"{name} must hold non-negative integer counts")
    return arr.astype(np.int64)


def _pooled_lor(ka: ArrayLike, na: ArrayLike, kb: ArrayLike, nb: ArrayLike) -> NDArray[np.float64]:
    """Pooled log odds ratio (B vs A) along the last axis, 0.5 added to all cells where one is 0."""
    ka, na, kb, nb = (np.asarray(v, dtype=np.float64) for v in (ka, na, kb, nb))
    cells = np.stack([kb, nb - kb, ka, na - ka])
    cells = np.where((cells == 0).any(axis=0, keepdims=True), cells + 0.5, cells)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_or: NDArray[np.float64] = np.log(cells[0]) - np.log(cells[1]) - np.log(cells[2]) + np.log(cells[3])
    return log_or


def _h(pb: NDArray[np.float64], pa: NDArray[np.float64]) -> NDArray[np.float64]:
    return 2.0 * np.arcsin(np.sqrt(pb)) - 2.0 * np.arcsin(np.sqrt(pa))


def proportion_shift(
    k_a: ArrayLike,
    n_a: ArrayLike,
    k_b: ArrayLike,
    n_b: ArrayLike,
    *,
    test: Literal["within_group", "whole_group"] = "within_group",
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    n_perm: int = 9999,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> ProportionShiftResult:
    """Shift of a proportion from model A to model B over prompts, tested with the prompt as unit.

    Inputs are counts per prompt: prompt ``g`` has ``n_a[g]`` texts of model A, ``k_a[g]`` of them
    with the property (e.g. "mentions owls"), and likewise for B. Texts of one prompt are never
    treated as independent trials:

    * the intervals are cluster bootstraps that resample prompts;
    * ``test="within_group"`` (default) permutes the model labels of the texts *within* each prompt.
      For binary outcomes that draws ``k_a'[g] ~ Hypergeometric(n_a[g] + n_b[g], k_a[g] + k_b[g],
      n_a[g])``: a stratified exact test (the permutation analogue of Cochran-Mantel-Haenszel),
      valid when a prompt's texts are independent samples given the prompt;
    * ``test="whole_group"`` swaps A and B for whole prompts (a paired sign-flip test); it also
      holds when one model's texts for a prompt are correlated, and needs ``n_a[g] == n_b[g]``.

    Args:
        k_a: per prompt, texts of model A with the property.
        n_a: per prompt, texts of model A.
        k_b: per prompt, texts of model B with the property.
        n_b: per prompt, texts of model B.
        test: ``"within_group"`` or ``"whole_group"``.
        alternative: ``"two-sided"``, ``"greater"`` (B higher) or ``"less"``.
        n_perm: permutations for the p-value.
        n_boot: bootstrap replicates for the intervals.
        ci: confidence level.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        A :class:`ProportionShiftResult`.

    Raises:
        ValueError: on invalid counts, fewer than 2 prompts, a model without texts, no prompt with
            texts of both models, or ``whole_group`` with unequal text counts.
    """
    check_alternative(alternative)
    check_positive_int(n_perm, "n_perm")
    check_positive_int(n_boot, "n_boot")
    check_probability(ci, "ci")
    if test not in ("within_group", "whole_group"):
        raise ValueError(f"test must be 'within_group' or 'whole_group', got {test!r}")
    ka, na, kb, nb = (_as_counts(v, nm) for v, nm in ((k_a, "k_a"), (n_a, "n_a"), (k_b, "k_b"), (n_b, "n_b")))
    if not (ka.shape == na.shape == kb.shape == nb.shape):
        raise ValueError("k_a, n_a, k_b and n_b must have one entry per prompt")
    if (ka > na).any() or (kb > nb).any():
        raise ValueError("a prompt has more texts with the property than texts")
    used = (na + nb) > 0
    ka, na, kb, nb = ka[used], na[used], kb[used], nb[used]
    n_groups = int(ka.size)
    if n_groups < 2:
        raise ValueError(f"a prompt-level test needs at least 2 prompts, got {n_groups}")
    tot_na, tot_nb = int(na.sum()), int(nb.sum())
    if tot_na == 0 or tot_nb == 0:
        raise ValueError(f"both models need texts; got n_a={tot_na}, n_b={tot_nb}")
    informative = (na > 0) & (nb > 0)
    if not informative.any():
        raise ValueError("no prompt has texts of both models; a prompt-level paired test is impossible")
    if test == "whole_group" and (na != nb).any():
        raise ValueError("test='whole_group' needs n_a == n_b for every prompt (use 'within_group')")

    p_a = ka.sum() / tot_na
    p_b = kb.sum() / tot_nb
    rd = float(p_b - p_a)
    rng = make_rng(seed)

    # Permutation null of p_b - p_a.
    k_tot = ka + kb
    null = np.empty(n_perm)
    done = 0
    for b in batches(n_perm, max(1, 2_000_000 // n_groups)):
        if test == "within_group":
            ka_perm = rng.hypergeometric(k_tot, (na + nb) - k_tot, na, size=(b, n_groups))
        else:
            flip = rng.random((b, n_groups)) < 0.5
            ka_perm = np.where(flip, kb, ka)
        sum_ka = ka_perm.sum(axis=1)
        null[done : done + b] = (k_tot.sum() - sum_ka) / tot_nb - sum_ka / tot_na
        done += b
    pvalue = monte_carlo_pvalue(null, rd, alternative)

    # Cluster bootstrap over prompts.
    rd_reps, h_reps, lor_reps = (np.empty(n_boot) for _ in range(3))
    done = 0
    for b in batches(n_boot, max(1, 2_000_000 // n_groups)):
        idx = rng.integers(0, n_groups, size=(b, n_groups))
        ska, sna, skb, snb = (v[idx].sum(axis=1) for v in (ka, na, kb, nb))
        with np.errstate(divide="ignore", invalid="ignore"):
            pa_r, pb_r = ska / sna, skb / snb
        rd_reps[done : done + b] = pb_r - pa_r
        h_reps[done : done + b] = _h(pb_r, pa_r)
        lor_reps[done : done + b] = _pooled_lor(ska, sna, skb, snb)
        done += b
    rd_lo, rd_hi = percentile_interval(rd_reps, ci)
    h_lo, h_hi = percentile_interval(h_reps, ci)
    lor_lo, lor_hi = percentile_interval(lor_reps, ci)
    group_diff = kb[informative] / nb[informative] - ka[informative] / na[informative]

    return ProportionShiftResult(
        p_a=float(p_a),
        p_b=float(p_b),
        risk_difference=rd,
        risk_difference_low=rd_lo,
        risk_difference_high=rd_hi,
        cohens_h=cohens_h(float(p_b), float(p_a)),
        cohens_h_low=h_lo,
        cohens_h_high=h_hi,
        log_odds_ratio=float(_pooled_lor(ka.sum(), tot_na, kb.sum(), tot_nb)),
        log_odds_ratio_low=lor_lo,
        log_odds_ratio_high=lor_hi,
        mean_group_difference=float(group_diff.mean()) if group_diff.size else math.nan,
        pvalue=pvalue,
        test=test,
        alternative=alternative,
        n_a=tot_na,
        n_b=tot_nb,
        k_a=int(ka.sum()),
        k_b=int(kb.sum()),
        n_groups=n_groups,
        n_informative_groups=int(informative.sum()),
        n_perm=n_perm,
        n_boot=n_boot,
        ci=float(ci),
        seed=seed_record(seed),
    )
