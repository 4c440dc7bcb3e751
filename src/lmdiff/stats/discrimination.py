"""Can a score tell the two models' outputs apart? AUC and accuracy that respect prompts.

* :func:`auc` and :func:`auc_permutation_test`: the Mann-Whitney AUC (ties count 1/2) with a
  permutation p-value that permutes model labels within prompts;
* :func:`accuracy_with_ties`: accuracy where ties count 1/2 and stay in the denominator, with a
  Wilson interval (independent items) or a cluster-bootstrap interval (grouped items).

The global two-sample tests (a cross-validated classifier, kernel MMD) and the bag-of-words
baseline live in :mod:`lmdiff.stats.two_sample`.

Label convention: True/1 = model B (e.g. the finetune), False/0 = model A (e.g. the base).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from lmdiff.stats._common import (
    SeedLike,
    StatsResult,
    as_binary_labels,
    as_float_vector,
    check_probability,
    seed_record,
    wilson_interval,
)
from lmdiff.stats._permutation import Scheme
from lmdiff.stats.resampling import cluster_bootstrap_ci, grouped_permutation_pvalue

__all__ = [
    "AccuracyResult",
    "AucResult",
    "accuracy_with_ties",
    "auc",
    "auc_permutation_test",
]


# --------------------------------------------------------------------------------------------- AUC


@dataclasses.dataclass(frozen=True)
class AucResult(StatsResult):
    """An AUC with a grouped permutation p-value.

    Attributes:
        auc: P(score of a B item > score of an A item), ties counted 1/2.
        pvalue: permutation p-value ``(b + 1) / (n_perm + 1)`` (two-sided: twice the smaller
            one-sided p-value, capped at 1).
        alternative: ``"two-sided"`` (AUC != 0.5), ``"greater"`` (AUC > 0.5) or ``"less"``.
        n: the number of scored items used (NaN scores excluded).
        n_pos: the number of B items used.
        n_neg: the number of A items used.
        n_excluded: items excluded because their score was NaN.
        n_groups: the number of groups among the used items.
        n_informative_groups: groups holding items of both models.
        n_perm: the number of permutations.
        scheme: ``"within_group"`` or ``"whole_group"``.
        seed: the int seed, or None.
    """

    auc: float
    pvalue: float
    alternative: str
    n: int
    n_pos: int
    n_neg: int
    n_excluded: int
    n_groups: int
    n_informative_groups: int
    n_perm: int
    scheme: str
    seed: int | None


def _auc_from_ranks(ranks: NDArray[np.float64], labels: NDArray[np.bool_]) -> float:
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Return the area under the ROC curve, counting ties as 1/2.

    This is the Mann-Whitney probability that a random B item (label True) scores higher than a
    random A item, plus half the probability of a tie; it equals
    ``sklearn.metrics.roc_auc_score``.

    Args:
        scores: one score per item (higher = more B-like). NaN is refused: drop such items
            explicitly, or use :func:`auc_permutation_test`, which excludes and counts them.
        labels: booleans or 0/1; True/1 = model B.

    Returns:
        The AUC in [0, 1].

    Raises:
        ValueError: on NaN scores, mismatched lengths, or when one class is empty.
    """
    s = as_float_vector(scores, "scores")
    lab = as_binary_labels(labels)
    if s.shape != lab.shape:
        raise ValueError(f"scores has {s.size} entries but labels has {lab.size}")
    if np.isnan(s).any():
        raise ValueError(f"{int(np.isnan(s).sum())} scores are NaN; exclude them explicitly")
    if lab.all() or not lab.any():
        raise ValueError("AUC needs items of both classes")
    return _auc_from_ranks(rankdata(s), lab)


def auc_permutation_test(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike | None,
    *,
    n_perm: int = 9999,
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    scheme: Scheme = "within_group",
    seed: SeedLike = 0,
) -> AucResult:
    """AUC of ``scores`` for telling B from A, with a p-value from labels permuted within groups.

    Items with NaN scores (e.g. a judge that did not answer) are excluded and counted in
    ``n_excluded``, never silently dropped. The permuted AUC is computed from the fixed ranks, so
    the test is exact (conditional on the within-group label counts) and fast.

    Args:
        scores: one score per item; higher = more B-like.
        labels: booleans or 0/1; True/1 = model B.
        groups: one group label per item (e.g. prompt ids), or None for independent items.
        n_perm: the number of permutations.
        alternative: ``"two-sided"`` (default), ``"greater"`` (AUC > 0.5) or ``"less"``.
        scheme: ``"within_group"`` or ``"whole_group"`` (see
            :func:`lmdiff.stats.grouped_permutation_pvalue`).
        seed: an int seed, a numpy Generator, or None.

    Returns:
        An :class:`AucResult`.
    """
    s = as_float_vector(scores, "scores")
    lab = as_binary_labels(labels)
    if s.shape != lab.shape:
        raise ValueError(f"scores has {s.size} entries but labels has {lab.size}")
    keep = ~np.isnan(s)
    grp = None if groups is None else np.asarray(groups)[keep]
    s, lab = s[keep], lab[keep]
    if lab.all() or not lab.any():
        raise ValueError("AUC needs scored items of both classes")
    ranks = rankdata(s)
    # mean rank difference (B - A) = n * (AUC - 1/2): the same test, computed by the shared engine.
    perm = grouped_permutation_pvalue(ranks, lab, grp, n_perm=n_perm, alternative=alternative, scheme=scheme, seed=seed)
    return AucResult(
        auc=_auc_from_ranks(ranks, lab),
        pvalue=perm.pvalue,
        alternative=alternative,
        n=int(s.size),
        n_pos=int(lab.sum()),
        n_neg=int((~lab).sum()),
        n_excluded=int((~keep).sum()),
        n_groups=perm.n_groups,
        n_informative_groups=perm.n_informative_groups,
        n_perm=n_perm,
        scheme=scheme,
        seed=seed_record(seed),
    )


# ---------------------------------------------------------------------------------------- accuracy


@dataclasses.dataclass(frozen=True)
class AccuracyResult(StatsResult):
    """Accuracy with ties counted as half, and its confidence interval.

    Attributes:
        accuracy: ``(n_correct + 0.5 * n_ties) / n``.
        low: lower end of the interval.
        high: upper end of the interval.
        ci: the confidence level.
        method: ``"wilson"`` or ``"cluster_bootstrap"``.
        n: the number of valid outcomes (correct + wrong + ties): the real denominator.
        n_correct: outcomes equal to 1.
        n_wrong: outcomes equal to 0.
        n_ties: outcomes equal to 0.5 (kept in the denominator).
        n_invalid: NaN outcomes (no usable answer); excluded, or counted as ties when
            ``invalid="tie"`` (then also included in ``n_ties`` and ``n``).
        n_groups: the number of groups (equals ``n`` without a grouping).
        seed: the int seed of the bootstrap, or None.
    """

    accuracy: float
    low: float
    high: float
    ci: float
    method: str
    n: int
    n_correct: int
    n_wrong: int
    n_ties: int
    n_invalid: int
    n_groups: int
    seed: int | None


def accuracy_with_ties(
    outcomes: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    ci: float = 0.95,
    method: Literal["auto", "wilson", "cluster_bootstrap"] = "auto",
    invalid: Literal["exclude", "tie"] = "exclude",
    n_boot: int = 2000,
    seed: SeedLike = 0,
) -> AccuracyResult:
    """Accuracy where a tie counts as half a success and is never dropped from the denominator.

    Dropping ties inflates accuracy (a judge that says "can't tell" half the time and is right
    on the rest would score 100%); here it scores 75%.

    The Wilson interval treats the items as independent Bernoulli trials; with ties the true
    variance is smaller, so the interval is conservative. When ``groups`` is given the items are
    not independent and the interval is a cluster bootstrap over groups (``method="auto"``);
    asking for ``"wilson"`` with groups is refused.

    Args:
        outcomes: one outcome per comparison: 1 (correct), 0 (wrong), 0.5 (tie), NaN (invalid,
            e.g. an unparseable judge answer). Booleans are accepted.
        groups: one group label per outcome (e.g. prompt ids), or None.
        ci: the confidence level.
        method: ``"auto"`` (Wilson without groups, cluster bootstrap with groups), ``"wilson"`` or
            ``"cluster_bootstrap"``.
        invalid: ``"exclude"`` (default; counted in ``n_invalid``) or ``"tie"`` (count as 0.5, the
            conservative choice when failures may depend on the answer).
        n_boot: bootstrap replicates for the cluster bootstrap.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        An :class:`AccuracyResult` with the real n.

    Raises:
        ValueError: on outcomes other than 0, 0.5, 1 or NaN, on no valid outcome, or on
            ``method="wilson"`` with groups.
    """
    check_probability(ci, "ci")
    o = as_float_vector(outcomes, "outcomes")
    nan = np.isnan(o)
    bad = ~nan & ~np.isin(o, (0.0, 0.5, 1.0))
    if bad.any():
        raise ValueError(f"outcomes must be 0, 0.5, 1 or NaN; found {np.unique(o[bad])[:5].tolist()}")
    if invalid not in ("exclude", "tie"):
        raise ValueError(f"invalid must be 'exclude' or 'tie', got {invalid!r}")
    if method not in ("auto", "wilson", "cluster_bootstrap"):
        raise ValueError(f"unknown method {method!r}")
    if groups is not None and method == "wilson":
        raise ValueError("a Wilson interval treats grouped items as independent; use 'cluster_bootstrap'")
    n_invalid = int(nan.sum())
    grp = None if groups is None else np.asarray(groups)
    if grp is not None and grp.shape[0] != o.size:
        raise ValueError(f"groups has {grp.shape[0]} entries but outcomes has {o.size}")
    if invalid == "tie":
        o = np.where(nan, 0.5, o)
    else:
        o = o[~nan]
        grp = None if grp is None else grp[~nan]
    n = int(o.size)
    if n == 0:
        raise ValueError("no valid outcome to compute an accuracy from")
    acc = float(o.mean())
    chosen = ("wilson" if grp is None else "cluster_bootstrap") if method == "auto" else method
    if chosen == "wilson":
        low, high = wilson_interval(acc, n, ci)
        n_groups = n
    else:
        boot = cluster_bootstrap_ci(o, grp, n_boot=n_boot, ci=ci, seed=seed)
        low, high, n_groups = boot.low, boot.high, boot.n_clusters
    return AccuracyResult(
        accuracy=acc,
        low=low,
        high=high,
        ci=float(ci),
        method=chosen,
        n=n,
        n_correct=int((o == 1.0).sum()),
        n_wrong=int((o == 0.0).sum()),
        n_ties=int((o == 0.5).sum()),
        n_invalid=n_invalid,
        n_groups=n_groups,
        seed=seed_record(seed) if chosen == "cluster_bootstrap" else None,
    )
