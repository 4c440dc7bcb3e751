"""Resampling that respects clusters: cluster and hierarchical bootstrap CIs, grouped permutation tests.

Texts generated from one prompt are not independent, so lmdiff never resamples or permutes
single texts when a grouping is known:

* :func:`cluster_bootstrap_ci` resamples whole clusters (prompts, questions) with replacement;
* :func:`hierarchical_bootstrap_ci` resamples outer clusters (e.g. seeds or organisms), then inner
  clusters (e.g. questions) inside each chosen outer cluster;
* :func:`grouped_permutation_pvalue` permutes the two models' labels *within* groups, or swaps them
  for whole groups at once (see :mod:`lmdiff.stats._permutation` for when each scheme is exact).

All bootstrap intervals are equal-tailed percentile intervals. Every result reports the real
number of observations, the number of clusters and how many NaN values were excluded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmdiff.stats._common import (
    SeedLike,
    StatsResult,
    as_binary_labels,
    as_float_vector,
    batches,
    check_alternative,
    check_positive_int,
    check_probability,
    encode_groups,
    make_rng,
    monte_carlo_pvalue,
    percentile_interval,
    seed_record,
)
from lmdiff.stats._permutation import GroupLayout, Scheme, check_balanced, check_scheme, permuted_labels

__all__ = [
    "BootstrapResult",
    "PermutationResult",
    "cluster_bootstrap_ci",
    "grouped_permutation_pvalue",
    "hierarchical_bootstrap_ci",
]

Statistic = Callable[[NDArray[np.float64]], float] | Literal["mean"]
PermutationStatistic = (
    Literal["mean_difference", "group_mean_difference"] | Callable[[NDArray[np.float64], NDArray[np.bool_]], float]
)

_BATCH_ELEMENTS = 2_000_000


@dataclasses.dataclass(frozen=True)
class BootstrapResult(StatsResult):
    """A bootstrap confidence interval.

    Attributes:
        estimate: the statistic on the observed data.
        low: lower end of the percentile interval.
        high: upper end of the percentile interval.
        ci: the confidence level (e.g. 0.95).
        standard_error: the standard deviation of the bootstrap replicates.
        n_obs: the number of observations used (after excluding NaN).
        n_clusters: the number of (outer) clusters resampled.
        n_inner_clusters: for the hierarchical bootstrap, the number of inner clusters; else None.
        n_excluded: the number of NaN values excluded before resampling.
        n_boot: the number of bootstrap replicates.
        method: how the data were resampled (``"cluster_bootstrap_percentile"``,
            ``"iid_bootstrap_percentile"`` or ``"hierarchical_bootstrap_percentile"``).
        seed: the int seed, or None when a Generator or no seed was given.
    """

    estimate: float
    low: float
    high: float
    ci: float
    standard_error: float
    n_obs: int
    n_clusters: int
    n_inner_clusters: int | None
    n_excluded: int
    n_boot: int
    method: str
    seed: int | None


@dataclasses.dataclass(frozen=True)
class PermutationResult(StatsResult):
    """A grouped permutation test of a difference between two models.

    Attributes:
        statistic: the observed statistic (model B minus model A, i.e. label True minus label False).
        pvalue: the Monte Carlo p-value ``(b + 1) / (n_perm + 1)``, never 0 (two-sided: twice the
            smaller one-sided p-value, capped at 1, valid even when the null is not centred at 0).
        statistic_name: the statistic's name (``"mean_difference"``, ``"group_mean_difference"`` or
            the callable's ``__name__``).
        scheme: ``"within_group"`` or ``"whole_group"``.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        n_perm: the number of random permutations.
        n_obs: the number of observations that entered the statistic (after excluding NaN values
            and, for ``"group_mean_difference"``, groups that lack one of the models).
        n_a: the number of observations of model A (label False).
        n_b: the number of observations of model B (label True).
        n_groups: the number of groups among the non-NaN observations; without groups every
            observation is its own unit and this equals ``n_obs``.
        n_informative_groups: groups holding observations of both models; only these carry
            information in a within-group test (``n_obs`` without groups).
        n_excluded: the number of observations excluded because their value was NaN.
        null_mean: mean of the permutation distribution.
        null_sd: standard deviation of the permutation distribution.
        seed: the int seed, or None when a Generator or no seed was given.
    """

    statistic: float
    pvalue: float
    statistic_name: str
    scheme: str
    alternative: str
    n_perm: int
    n_obs: int
    n_a: int
    n_b: int
    n_groups: int
    n_informative_groups: int
    n_excluded: int
    null_mean: float
    null_sd: float
    seed: int | None


def _is_mean(stat: Statistic) -> bool:
    return isinstance(stat, str) or stat is np.mean or stat is np.nanmean


def _check_stat(stat: Statistic) -> None:
    if isinstance(stat, str) and stat != "mean":
        raise ValueError(f"stat must be 'mean' or a callable, got {stat!r}")


def _drop_nan(
    values: NDArray[np.float64], *keys: ArrayLike | None
) -> tuple[NDArray[np.float64], list[NDArray[Any] | None], int]:
    """Drop observations whose value is NaN; return the kept values, the kept keys and the count dropped."""
    for key in keys:
        if key is not None and np.shape(key)[:1] != values.shape:
            raise ValueError(f"got {np.shape(key)[0]} labels/groups entries for {values.size} values")
    keep = ~np.isnan(values)
    kept_keys = [None if k is None else np.asarray(k)[keep] for k in keys]
    return values[keep], kept_keys, int((~keep).sum())


def _gather(starts: NDArray[np.int64], sizes: NDArray[np.int64], chosen: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the positions of all items of the ``chosen`` blocks (blocks may repeat)."""
    st = starts[chosen]
    sz = sizes[chosen]
    if sz.size == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(st - (np.cumsum(sz) - sz), sz)
    return shift + np.arange(int(sz.sum()), dtype=np.int64)


def cluster_bootstrap_ci(
    values: ArrayLike,
    clusters: ArrayLike | None = None,
    stat: Statistic = "mean",
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> BootstrapResult:
    """Percentile bootstrap CI that resamples whole clusters with replacement.

    Each replicate draws as many clusters as there are, with replacement, pools all observations
    of the drawn clusters and applies ``stat`` to them. With ``clusters=None`` every observation is
    its own cluster (the ordinary i.i.d. bootstrap, reported as ``"iid_bootstrap_percentile"``).

    Args:
        values: one number per observation; NaN values are excluded and counted in ``n_excluded``.
        clusters: one cluster label per observation (e.g. prompt ids), or None.
        stat: ``"mean"`` (vectorised fast path; ``np.mean`` is recognised too) or a callable taking
            the pooled 1-D array of a replicate and returning a float.
        n_boot: the number of bootstrap replicates.
        ci: the confidence level, strictly between 0 and 1.
        seed: an int seed (reproducible), a numpy Generator, or None.

    Returns:
        A :class:`BootstrapResult`.

    Raises:
        ValueError: on fewer than two clusters, mismatched lengths or bad parameters.
    """
    _check_stat(stat)
    check_positive_int(n_boot, "n_boot")
    check_probability(ci, "ci")
    raw = as_float_vector(values, "values")
    v, (cl,), n_excluded = _drop_nan(raw, clusters)
    codes, _ = encode_groups(cl, v.size, "clusters")
    layout = GroupLayout.from_codes(codes)
    n_clusters = layout.n_groups
    if n_clusters < 2:
        raise ValueError(f"a cluster bootstrap needs at least 2 clusters, got {n_clusters}")
    rng = make_rng(seed)
    v_sorted = v[layout.order]
    if _is_mean(stat):
        estimate = float(v.mean())
        sums = np.add.reduceat(v_sorted, layout.starts)
        counts = layout.sizes.astype(np.float64)
    else:
        estimate = float(stat(v))  # type: ignore[operator]
    reps = np.empty(n_boot)
    done = 0
    for b in batches(n_boot, max(1, _BATCH_ELEMENTS // n_clusters)):
        idx = rng.integers(0, n_clusters, size=(b, n_clusters))
        if _is_mean(stat):
            reps[done : done + b] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
        else:
            for r in range(b):
                reps[done + r] = stat(v_sorted[_gather(layout.starts, layout.sizes, idx[r])])  # type: ignore[operator]
        done += b
    low, high = percentile_interval(reps, ci)
    return BootstrapResult(
        estimate=estimate,
        low=low,
        high=high,
        ci=float(ci),
        standard_error=float(np.nanstd(reps, ddof=1)),
        n_obs=int(v.size),
        n_clusters=n_clusters,
        n_inner_clusters=None,
        n_excluded=n_excluded,
        n_boot=n_boot,
        method="iid_bootstrap_percentile" if clusters is None else "cluster_bootstrap_percentile",
        seed=seed_record(seed),
    )


def hierarchical_bootstrap_ci(
    values: ArrayLike,
    outer: ArrayLike,
    inner: ArrayLike,
    stat: Statistic = "mean",
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    resample_inner: bool = True,
    seed: SeedLike = 0,
) -> BootstrapResult:
    """Two-level percentile bootstrap: resample outer clusters, then inner clusters within each.

    Each replicate draws the outer clusters (e.g. training seeds) with replacement; for every drawn
    outer cluster it draws, with replacement, as many of *its own* inner clusters (e.g. questions)
    as it has, and pools all observations of the drawn inner clusters. Inner labels are nested:
    inner label ``"q1"`` under outer ``"s1"`` and under ``"s2"`` are different clusters.

    Resampling at both levels slightly overstates the variance (the inner-level variance is counted
    twice), so the interval errs on the wide side; pass ``resample_inner=False`` to resample outer
    clusters only (each drawn outer cluster then contributes all its observations).

    Args:
        values: one number per observation; NaN values are excluded and counted in ``n_excluded``.
        outer: one outer-cluster label per observation.
        inner: one inner-cluster label per observation, nested in ``outer``.
        stat: ``"mean"`` (vectorised) or a callable on the pooled 1-D array of a replicate.
        n_boot: the number of bootstrap replicates.
        ci: the confidence level.
        resample_inner: whether to resample inner clusters within each drawn outer cluster.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        A :class:`BootstrapResult` with ``n_clusters`` = outer clusters and ``n_inner_clusters``.

    Raises:
        ValueError: on fewer than two outer clusters, mismatched lengths or bad parameters.
    """
    _check_stat(stat)
    check_positive_int(n_boot, "n_boot")
    check_probability(ci, "ci")
    raw = as_float_vector(values, "values")
    if outer is None or inner is None:
        raise ValueError("outer and inner cluster labels are both required")
    v, (out_labels, in_labels), n_excluded = _drop_nan(raw, outer, inner)
    outer_codes, _ = encode_groups(out_labels, v.size, "outer")
    inner_codes, n_inner_raw = encode_groups(in_labels, v.size, "inner")
    # Nested inner clusters: one code per (outer, inner) pair, ordered by outer first.
    pair_codes = outer_codes * max(n_inner_raw, 1) + inner_codes
    layout = GroupLayout.from_codes(pair_codes)  # inner clusters, sorted by outer then inner
    _, outer_of_inner = np.unique(outer_codes[layout.order][layout.starts], return_inverse=True)
    outer_of_inner = outer_of_inner.reshape(-1)
    n_outer = int(outer_of_inner.max()) + 1 if outer_of_inner.size else 0
    if n_outer < 2:
        raise ValueError(f"a hierarchical bootstrap needs at least 2 outer clusters, got {n_outer}")
    k_inner = np.bincount(outer_of_inner, minlength=n_outer).astype(np.int64)
    first_inner = np.concatenate(([0], np.cumsum(k_inner)[:-1])).astype(np.int64)

    rng = make_rng(seed)
    v_sorted = v[layout.order]
    mean_path = _is_mean(stat)
    if mean_path:
        estimate = float(v.mean())
        inner_sums = np.add.reduceat(v_sorted, layout.starts)
        inner_counts = layout.sizes.astype(np.float64)
    else:
        estimate = float(stat(v))  # type: ignore[operator]
    reps = np.empty(n_boot)
    for r in range(n_boot):
        chosen_outer = rng.integers(0, n_outer, size=n_outer)
        k = k_inner[chosen_outer]
        if resample_inner:
            within = np.floor(rng.random(int(k.sum())) * np.repeat(k, k)).astype(np.int64)
            chosen_inner = np.repeat(first_inner[chosen_outer], k) + within
        else:
            chosen_inner = _gather(first_inner, k_inner, chosen_outer)
        if mean_path:
            reps[r] = inner_sums[chosen_inner].sum() / inner_counts[chosen_inner].sum()
        else:
            reps[r] = stat(v_sorted[_gather(layout.starts, layout.sizes, chosen_inner)])  # type: ignore[operator]
    low, high = percentile_interval(reps, ci)
    return BootstrapResult(
        estimate=estimate,
        low=low,
        high=high,
        ci=float(ci),
        standard_error=float(np.nanstd(reps, ddof=1)),
        n_obs=int(v.size),
        n_clusters=n_outer,
        n_inner_clusters=layout.n_groups,
        n_excluded=n_excluded,
        n_boot=n_boot,
        method="hierarchical_bootstrap_percentile",
        seed=seed_record(seed),
    )


def _mean_difference(v: NDArray[np.float64]) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    total = float(v.sum())
    n = v.size

    def fn(labels: NDArray[np.float64]) -> NDArray[np.float64]:
        s1 = labels @ v
        n1 = labels.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            diffs: NDArray[np.float64] = s1 / n1 - (total - s1) / (n - n1)
        return diffs

    return fn


def _group_mean_difference(
    v: NDArray[np.float64], layout: GroupLayout
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    group_total = np.add.reduceat(v, layout.starts)
    sizes = layout.sizes.astype(np.float64)

    def fn(labels: NDArray[np.float64]) -> NDArray[np.float64]:
        s1 = np.add.reduceat(labels * v[None, :], layout.starts, axis=1)
        n1 = np.add.reduceat(labels, layout.starts, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = s1 / n1 - (group_total - s1) / (sizes - n1)
        means: NDArray[np.float64] = diff.mean(axis=1)
        return means

    return fn


def grouped_permutation_pvalue(
    values: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike | None,
    *,
    statistic: PermutationStatistic = "mean_difference",
    scheme: Scheme = "within_group",
    n_perm: int = 9999,
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    seed: SeedLike = 0,
) -> PermutationResult:
    """Permutation test of a difference between two models that permutes labels within groups.

    Two relabelling schemes (a group is typically a prompt answered by both models):

    * ``"within_group"`` (default): shuffle the model labels among the items of each group; each
      group keeps its count of items per model. Exact when, under the null, the items of a group
      are exchangeable one by one (independent samples given the prompt).
    * ``"whole_group"``: for each group, swap the labels of all its items together with
      probability 1/2 (a paired sign-flip test with the prompt as unit). Valid even when the
      responses of one model to one prompt are correlated with each other; needs the same number of
      items of both models in every group.

    Statistics (B = label True, A = label False):

    * ``"mean_difference"``: mean over B items minus mean over A items (items weighted equally);
    * ``"group_mean_difference"``: the average over informative groups of each group's B mean
      minus A mean (groups weighted equally). Prefer it when the models have unequal numbers of
      items per group: the pooled difference then mixes in group effects (the test stays valid,
      but the statistic is no longer an estimate of the within-prompt shift);
    * a callable ``f(values, labels) -> float`` (labels boolean; evaluated once per permutation,
      so slower).

    With ``groups=None`` all items form one group and the test is the ordinary (ungrouped)
    permutation test: only correct when the items really are independent.

    Args:
        values: one number per item; items with NaN values are excluded and counted.
        labels: which model produced each item (booleans or 0/1; True/1 = model B).
        groups: one group label per item (e.g. prompt ids), or None.
        statistic: see above.
        scheme: ``"within_group"`` or ``"whole_group"``.
        n_perm: the number of random permutations (the p-value's resolution is ``1/(n_perm+1)``).
        alternative: ``"two-sided"`` (default), ``"greater"`` (B > A) or ``"less"``.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        A :class:`PermutationResult` with the p-value ``(b + 1) / (n_perm + 1)`` (two-sided: twice
        the smaller one-sided p-value).

    Raises:
        ValueError: if no group holds both models, a model has no items, ``whole_group`` meets an
            unbalanced group, or parameters are invalid.
    """
    check_scheme(scheme)
    check_alternative(alternative)
    check_positive_int(n_perm, "n_perm")
    if isinstance(statistic, str) and statistic not in ("mean_difference", "group_mean_difference"):
        raise ValueError(f"unknown statistic {statistic!r}")
    raw = as_float_vector(values, "values")
    lab = as_binary_labels(labels)
    if lab.shape != raw.shape:
        raise ValueError(f"labels has {lab.size} entries but values has {raw.size}")
    if groups is None and scheme == "whole_group":
        raise ValueError("scheme='whole_group' needs groups")
    v, (kept_lab, grp), n_excluded = _drop_nan(raw, lab, groups)
    assert kept_lab is not None  # labels were given, so they come back
    lab = kept_lab
    # Without groups all items are exchangeable: one group, an ordinary permutation test.
    codes = np.zeros(v.size, dtype=np.int64) if grp is None else encode_groups(grp, v.size)[0]
    layout = GroupLayout.from_codes(codes)
    n1_group = np.add.reduceat(lab[layout.order].astype(np.int64), layout.starts) if v.size else np.zeros(0)
    informative = (n1_group > 0) & (n1_group < layout.sizes)
    n_informative = int(informative.sum())
    if not lab.any() or lab.all():
        raise ValueError(f"both models need observations; got {int((~lab).sum())} of A and {int(lab.sum())} of B")
    if n_informative == 0:
        raise ValueError("no group holds observations of both models; a grouped test has nothing to permute")
    n_groups_used = layout.n_groups if grp is not None else int(v.size)
    if grp is None:
        n_informative = int(v.size)

    if statistic == "group_mean_difference":
        # Only groups with both models define a within-group difference; the others are left out.
        keep = np.empty(v.size, dtype=bool)
        keep[layout.order] = informative[layout.codes]
        v, lab, codes = v[keep], lab[keep], codes[keep]
        layout = GroupLayout.from_codes(codes)
    n_b = int(lab.sum())
    n_a = int(v.size - n_b)
    v_sorted = v[layout.order]
    lab_sorted = lab[layout.order]
    if scheme == "whole_group":
        check_balanced(lab_sorted, layout)

    if statistic == "mean_difference":
        stat_fn = _mean_difference(v_sorted)
        name = "mean_difference"
    elif statistic == "group_mean_difference":
        stat_fn = _group_mean_difference(v_sorted, layout)
        name = "group_mean_difference"
    else:
        user_stat = statistic

        def stat_fn(labels_batch: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.array([user_stat(v_sorted, row.astype(bool)) for row in labels_batch])

        name = getattr(statistic, "__name__", "custom")

    observed = float(stat_fn(lab_sorted[None, :].astype(np.float64))[0])
    rng = make_rng(seed)
    null = np.concatenate(
        [stat_fn(batch.astype(np.float64)) for batch in permuted_labels(lab_sorted, layout, scheme, n_perm, rng)]
    )
    return PermutationResult(
        statistic=observed,
        pvalue=monte_carlo_pvalue(null, observed, alternative),
        statistic_name=name,
        scheme=scheme,
        alternative=alternative,
        n_perm=n_perm,
        n_obs=int(v.size),
        n_a=n_a,
        n_b=n_b,
        n_groups=n_groups_used,
        n_informative_groups=n_informative,
        n_excluded=n_excluded,
        null_mean=float(np.mean(null)) if null.size else math.nan,
        null_sd=float(np.std(null, ddof=1)) if null.size > 1 else math.nan,
        seed=seed_record(seed),
    )
