"""Tests and intervals whose unit is the prompt, valid when the two models differ per prompt.

A finetune rarely shifts every prompt by the same amount: some prompts move towards the finetuned
style a lot, others not at all, and some the other way (a prompt-by-model interaction). A
permutation of model labels *within* prompts treats the texts of one prompt as exchangeable,
which holds only when the two models are identical; under an interaction with no mean shift it
rejects far more often than its level says (about 11% at a one-sided 5% level with 24 prompts and
3 replies per side, see ``benchmarks/bench_calibration.py``).

The functions here reduce each prompt to one number (a within-prompt AUC, a difference of means,
a difference of shares) and test whether those per-prompt numbers are centred on zero by
flipping their signs, one flip per prompt: the null is "swapping which model is which for a
whole prompt changes nothing", which holds under any symmetric prompt-by-model interaction.
Intervals are t intervals over the per-prompt numbers (a percentile bootstrap of 24 prompts
covers about 92% where it claims 95%).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from lmdiff.stats._common import (
    SeedLike,
    StatsResult,
    as_binary_labels,
    as_float_vector,
    check_alternative,
    check_positive_int,
    check_probability,
    encode_groups,
    make_rng,
    seed_record,
)

__all__ = [
    "MeanInterval",
    "PromptAucResult",
    "PromptDifferenceResult",
    "SignFlipResult",
    "per_prompt_differences",
    "prompt_auc_test",
    "prompt_difference_test",
    "sign_flip_pvalues",
    "sign_flip_test",
    "unit_mean_interval",
]

Alternative = Literal["two-sided", "greater", "less"]
_EXACT_MAX = 16  # 2**16 sign patterns is still cheap; beyond that, Monte Carlo


@dataclasses.dataclass(frozen=True)
class SignFlipResult(StatsResult):
    """A sign-flip test of ``mean(values) = 0`` with one value per unit (prompt).

    Attributes:
        mean: the observed mean of the values.
        pvalue: the p-value in the stated direction; exact enumeration up to 16 units, else
            ``(b + 1) / (n_perm + 1)``.
        alternative: ``"greater"`` (mean > 0), ``"less"`` or ``"two-sided"``.
        n: the number of units (prompts) after dropping NaN.
        n_excluded: units dropped because their value was NaN.
        exact: whether every sign pattern was enumerated.
        n_perm: random sign patterns used (0 when exact).
        seed: the seed when it was an int.
    """

    mean: float
    pvalue: float
    alternative: str
    n: int
    n_excluded: int
    exact: bool
    n_perm: int
    seed: int | None


def sign_flip_test(
    values: ArrayLike,
    *,
    alternative: Alternative = "greater",
    n_perm: int = 9999,
    seed: SeedLike = 0,
) -> SignFlipResult:
    """Test whether per-unit values are centred on zero by flipping their signs.

    Valid when, under the null, each unit's value is symmetric around zero (for a paired design:
    swapping the two models within a unit leaves its distribution unchanged); units may differ
    in scale. The smallest attainable p-value is ``2**-n`` (one-sided): with 8 prompts, 1/256.

    Args:
        values: one value per unit (e.g. per prompt: finetuned minus base); NaN values are dropped.
        alternative: ``"greater"`` tests mean > 0, ``"less"`` mean < 0, ``"two-sided"`` either.
        n_perm: random sign patterns when there are more than 16 units.
        seed: an int seed, a Generator or None.

    Returns:
        A :class:`SignFlipResult`.
    """
    check_alternative(alternative)
    check_positive_int(n_perm, "n_perm")
    raw = as_float_vector(values, "values")
    keep = ~np.isnan(raw)
    d = raw[keep]
    n_excluded = int((~keep).sum())
    if d.size == 0:
        return SignFlipResult(float("nan"), 1.0, alternative, 0, n_excluded, True, 0, seed_record(seed))
    signs, exact = _sign_patterns(d.size, n_perm, seed)
    p = float(_flip_pvalues(d[:, None], signs, exact, alternative)[0])
    return SignFlipResult(float(d.mean()), p, alternative, int(d.size), n_excluded, exact, 0 if exact else n_perm,
                          seed_record(seed))


def sign_flip_pvalues(
    values: ArrayLike,
    *,
    alternative: Alternative = "greater",
    n_perm: int = 9999,
    seed: SeedLike = 0,
    chunk: int = 256,
) -> NDArray[np.float64]:
    """Sign-flip p-values of many statistics measured on the same units, one column each.

    Column ``j`` gets exactly the p-value :func:`sign_flip_test` gives ``values[:, j]`` with the
    same seed (the same sign patterns are applied to every column), at the cost of one matrix
    product: for example, whether each of 1024 dictionary latents fires more on the finetune's
    replies than on the base's, over 500 prompts.

    Args:
        values: [n units, m statistics], no NaN.
        alternative: ``"greater"`` tests mean > 0, ``"less"`` mean < 0, ``"two-sided"`` either.
        n_perm: random sign patterns when there are more than 16 units.
        seed: an int seed, a Generator or None.
        chunk: columns per matrix product (bounds memory at ``n_perm * chunk`` floats).

    Returns:
        [m] p-values.
    """
    check_alternative(alternative)
    check_positive_int(n_perm, "n_perm")
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be a 2-d array [units, statistics], got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values contain NaN: drop the units without a value first")
    if v.shape[0] == 0:
        return np.ones(v.shape[1])
    signs, exact = _sign_patterns(v.shape[0], n_perm, seed)
    out = [_flip_pvalues(v[:, a : a + chunk], signs, exact, alternative) for a in range(0, v.shape[1], chunk)]
    return np.concatenate(out) if out else np.ones(0)


def _sign_patterns(n: int, n_perm: int, seed: SeedLike) -> tuple[NDArray[np.float64], bool]:
    """Sign patterns [patterns, n]: all 2**n when n is small (exact), else ``n_perm`` random ones."""
    if n <= _EXACT_MAX:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        exact: NDArray[np.float64] = (1 - 2 * bits).astype(np.float64)
        return exact, True
    rng = make_rng(seed)
    return rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n)), False


def _flip_pvalues(d: NDArray[np.float64], signs: NDArray[np.float64], exact: bool,
                  alternative: str) -> NDArray[np.float64]:
    """P-values [m] of the column means of ``d`` [n, m] against their sign-flipped means."""
    observed = d.mean(0)
    null = signs @ d / d.shape[0]  # [patterns, m]
    if not exact:  # the observed pattern counts once (a Monte Carlo p-value is never 0)
        null = np.concatenate([observed[None, :], null])
    tol = 1e-12 * np.maximum(1.0, np.abs(d).max(0))
    if alternative == "greater":
        p = (null >= observed - tol).mean(0)
    elif alternative == "less":
        p = (null <= observed + tol).mean(0)
    else:
        p = (np.abs(null) >= np.abs(observed) - tol).mean(0)
    out: NDArray[np.float64] = np.minimum(1.0, p)
    return out


@dataclasses.dataclass(frozen=True)
class PromptAucResult(StatsResult):
    """The mean within-prompt AUC of a score between the finetuned (B) and base (A) texts.

    Attributes:
        auc: mean over prompts of P(score_B > score_A) for a B and an A text of the same prompt
            (ties count half): 0.5 when the score does not tell the models apart.
        low: lower end of the t interval (over prompts) of ``auc``.
        high: upper end.
        ci: the confidence level.
        pvalue: sign-flip p-value over prompts of ``auc_g - 0.5`` in the stated direction.
        alternative: ``"greater"`` (B scores higher), ``"less"`` or ``"two-sided"``.
        n_groups: prompts with at least one scored text of each model (the real n).
        n_pairs: within-prompt (B, A) pairs compared.
        n_texts: scored texts in those prompts.
        n_excluded: texts without a score (NaN) or in prompts lacking one side.
        exact: whether the p-value enumerated every sign pattern.
        seed: the seed when it was an int.
    """

    auc: float
    low: float
    high: float
    ci: float
    pvalue: float
    alternative: str
    n_groups: int
    n_pairs: int
    n_texts: int
    n_excluded: int
    exact: bool
    seed: int | None


def _per_prompt(
    scores: ArrayLike, labels: ArrayLike, groups: ArrayLike
) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]], int]:
    """Per prompt with both sides scored: (B scores, A scores); plus the number of texts left out."""
    s = as_float_vector(scores, "scores")
    lab = as_binary_labels(labels, "labels")
    if lab.size != s.size:
        raise ValueError(f"scores and labels differ in length ({s.size} vs {lab.size})")
    codes, n_groups = encode_groups(groups, s.size, "groups")
    ok = ~np.isnan(s)
    b_list: list[NDArray[np.float64]] = []
    a_list: list[NDArray[np.float64]] = []
    used = 0
    for g in range(n_groups):
        m = (codes == g) & ok
        b, a = s[m & lab], s[m & ~lab]
        if b.size and a.size:
            b_list.append(b)
            a_list.append(a)
            used += b.size + a.size
    return b_list, a_list, int(s.size - used)


def prompt_auc_test(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    alternative: Alternative = "greater",
    n_perm: int = 9999,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> PromptAucResult:
    """Does a score tell model B's texts from model A's, with the prompt as the unit of evidence?

    Each prompt contributes its own AUC (every B text against every A text of that prompt, ties
    half); the statistic is their mean, tested against 0.5 by sign flips over prompts and given a
    prompt-bootstrap interval. Unlike a permutation of labels within prompts, this stays at its
    level when the models differ per prompt with no overall shift.

    Args:
        scores: one score per text (NaN: not scored, excluded and counted).
        labels: True/1 for model B (the finetune), False/0 for model A.
        groups: prompt id per text.
        alternative: ``"greater"`` (B higher), ``"less"`` or ``"two-sided"``.
        n_perm: random sign patterns beyond 16 prompts.
        ci: confidence level.
        seed: an int seed, a Generator or None.

    Returns:
        A :class:`PromptAucResult` (NaN AUC and p-value 1 when no prompt has both sides scored).
    """
    check_alternative(alternative)
    check_probability(ci, "ci")
    b_list, a_list, n_excluded = _per_prompt(scores, labels, groups)
    if not b_list:
        return PromptAucResult(float("nan"), float("nan"), float("nan"), ci, 1.0, alternative, 0, 0, 0,
                               n_excluded, True, seed_record(seed))
    aucs = np.empty(len(b_list))
    n_pairs = 0
    for i, (b, a) in enumerate(zip(b_list, a_list, strict=True)):
        d = b[:, None] - a[None, :]
        aucs[i] = float(np.mean(np.where(d > 0, 1.0, np.where(d < 0, 0.0, 0.5))))
        n_pairs += d.size
    rng = make_rng(seed)
    test = sign_flip_test(aucs - 0.5, alternative=alternative, n_perm=n_perm, seed=rng)
    interval = unit_mean_interval(aucs, ci, bounds=(0.0, 1.0))
    low, high = interval.low, interval.high
    n_texts = sum(b.size + a.size for b, a in zip(b_list, a_list, strict=True))
    return PromptAucResult(
        auc=float(aucs.mean()),
        low=low,
        high=high,
        ci=ci,
        pvalue=test.pvalue,
        alternative=alternative,
        n_groups=len(b_list),
        n_pairs=n_pairs,
        n_texts=int(n_texts),
        n_excluded=n_excluded,
        exact=test.exact,
        seed=seed_record(seed),
    )


def per_prompt_differences(scores: ArrayLike, labels: ArrayLike, groups: ArrayLike) -> NDArray[np.float64]:
    """Per prompt with both sides scored: mean score of B's texts minus mean score of A's texts.

    Args:
        scores: one value per text (NaN excluded).
        labels: True/1 for model B, False/0 for model A.
        groups: prompt id per text.

    Returns:
        One difference per prompt that has scored texts of both models, in prompt-code order.
    """
    b_list, a_list, _ = _per_prompt(scores, labels, groups)
    return np.array([b.mean() - a.mean() for b, a in zip(b_list, a_list, strict=True)], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class PromptDifferenceResult(StatsResult):
    """The mean over prompts of (mean of B's texts - mean of A's texts), with its effect size.

    Attributes:
        difference: mean per-prompt difference, B minus A.
        low: lower end of its t interval over prompts.
        high: upper end.
        ci: the confidence level.
        effect_size_d: the standardised mean of the per-prompt differences (mean / sd, "d_z"):
            prompts, not texts, are the observations, so replies of one prompt do not inflate it.
        pvalue: sign-flip p-value over prompts in the stated direction.
        alternative: the direction tested.
        n_groups: prompts with both sides scored (the real n).
        n_texts: texts in them.
        n_excluded: texts left out (NaN score, or a prompt lacking one side).
        exact: whether the p-value enumerated every sign pattern.
        seed: the seed when it was an int.
    """

    difference: float
    low: float
    high: float
    ci: float
    effect_size_d: float
    pvalue: float
    alternative: str
    n_groups: int
    n_texts: int
    n_excluded: int
    exact: bool
    seed: int | None


def prompt_difference_test(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    alternative: Alternative = "greater",
    n_perm: int = 9999,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> PromptDifferenceResult:
    """Sign-flip test and t interval (over prompts) of the mean per-prompt difference B - A.

    Works for any per-text quantity (an annotation score, a share of texts with a property: pass
    0/1 scores, a per-token log-probability difference); prompts may have unequal numbers of texts
    per side.

    Args:
        scores: one value per text (NaN excluded and counted).
        labels: True/1 for model B, False/0 for model A.
        groups: prompt id per text.
        alternative: ``"greater"`` (B higher), ``"less"`` or ``"two-sided"``.
        n_perm: random sign patterns beyond 16 prompts.
        ci: confidence level.
        seed: an int seed, a Generator or None.

    Returns:
        A :class:`PromptDifferenceResult`.
    """
    check_alternative(alternative)
    check_probability(ci, "ci")
    b_list, a_list, n_excluded = _per_prompt(scores, labels, groups)
    diffs = np.array([b.mean() - a.mean() for b, a in zip(b_list, a_list, strict=True)], dtype=np.float64)
    rng = make_rng(seed)
    test = sign_flip_test(diffs, alternative=alternative, n_perm=n_perm, seed=rng)
    interval = unit_mean_interval(diffs, ci)
    low, high = interval.low, interval.high
    sd = float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan")
    mean = float(diffs.mean()) if diffs.size else float("nan")
    d = mean / sd if sd > 0 else (0.0 if mean == 0 else float("nan"))
    return PromptDifferenceResult(
        difference=mean,
        low=low,
        high=high,
        ci=ci,
        effect_size_d=d,
        pvalue=test.pvalue,
        alternative=alternative,
        n_groups=int(diffs.size),
        n_texts=int(sum(b.size + a.size for b, a in zip(b_list, a_list, strict=True))),
        n_excluded=n_excluded,
        exact=test.exact,
        seed=seed_record(seed),
    )



@dataclasses.dataclass(frozen=True)
class MeanInterval(StatsResult):
    """The mean of one value per independent unit (a question, a prompt) with a t interval.

    Attributes:
        estimate: the mean over units.
        low: lower end of the interval.
        high: upper end.
        ci: the confidence level.
        n_units: units with a value (the real n).
        n_excluded: units dropped because their value was NaN.
    """

    estimate: float
    low: float
    high: float
    ci: float
    n_units: int
    n_excluded: int


def unit_mean_interval(values: ArrayLike, ci: float = 0.95,
                       bounds: tuple[float, float] | None = None) -> MeanInterval:
    """Mean and Student-t interval of per-unit values (each unit's replicates already averaged).

    With the 10-30 units an evaluation has (questions, prompts), a percentile bootstrap of the mean
    covers less than it claims (its spread is biased low by (n-1)/n and it uses normal quantiles);
    the t interval on the unit means is exact for normal unit means and close for bounded rates.

    Args:
        values: one value per unit (NaN dropped and counted).
        ci: confidence level.
        bounds: the range the mean cannot leave (``(0, 1)`` for a rate, ``(-1, 1)`` for a difference of
            rates): the interval's ends are clipped to it, which only drops impossible values.

    Returns:
        A :class:`MeanInterval` (NaN ends with fewer than 2 units).
    """
    check_probability(ci, "ci")
    raw = as_float_vector(values, "values")
    v = raw[~np.isnan(raw)]
    n = int(v.size)
    if n == 0:
        return MeanInterval(float("nan"), float("nan"), float("nan"), ci, 0, int(raw.size))
    mean = float(v.mean())
    if n < 2:
        return MeanInterval(mean, float("nan"), float("nan"), ci, n, int(raw.size - n))
    half = float(stats.t.ppf(0.5 + ci / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return MeanInterval(mean, low, high, ci, n, int(raw.size - n))
