from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from lmdiff.stats import (
    accuracy_with_ties,
    auc,
    auc_permutation_test,
)


def paired_design(rng, n_prompts=50, per_model=3, dim=5, shift=0.0, prompt_sd=2.0):
    """Each prompt answered ``per_model`` times by each model; features share a strong prompt effect."""
    groups = np.repeat(np.arange(n_prompts), 2 * per_model)
    labels = np.tile(np.repeat([0, 1], per_model), n_prompts).astype(bool)
    x = rng.normal(0, prompt_sd, (n_prompts, dim))[groups] + rng.normal(0, 1, (groups.size, dim))
    x[labels, 0] += shift
    return x, labels, groups


# --------------------------------------------------------------------------------------------- AUC


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = rng.integers(0, 5, 200) + labels  # many ties
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_hand_computed_ties_count_half():
    # Pairs (pos, neg): (1 vs 1) tie = 0.5, (1 vs 0) = 1, (2 vs 1) = 1, (2 vs 0) = 1 -> 3.5 / 4.
    assert auc([1, 0, 1, 2], [0, 0, 1, 1]) == pytest.approx(0.875)


def test_auc_refuses_nan_and_single_class():
    with pytest.raises(ValueError, match="NaN"):
        auc([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="both classes"):
        auc([0.1, 0.2], [1, 1])


def test_auc_permutation_test_reports_real_n_and_excludes_nan():
    rng = np.random.default_rng(3)
    x, labels, groups = paired_design(rng, shift=1.5, dim=1)
    scores = x[:, 0].copy()
    scores[[0, 7, 8]] = np.nan
    result = auc_permutation_test(scores, labels, groups, n_perm=999, seed=0)
    keep = ~np.isnan(scores)
    assert result.n == 297 and result.n_excluded == 3
    assert result.n_pos + result.n_neg == 297
    assert result.n_groups == 50 and result.n_informative_groups == 50
    assert result.auc == pytest.approx(roc_auc_score(labels[keep], scores[keep]))
    assert result.pvalue == pytest.approx(2 / 1000)  # two-sided
    json.dumps(result.to_dict(), allow_nan=False)


def test_auc_permutation_test_is_calibrated_under_a_grouped_null():
    rng = np.random.default_rng(4)
    pvalues = []
    for _ in range(200):
        x, labels, groups = paired_design(rng, n_prompts=20, dim=1)
        pvalues.append(auc_permutation_test(x[:, 0], labels, groups, n_perm=199, seed=rng).pvalue)
    assert np.mean(np.array(pvalues) <= 0.05) <= 0.08


def test_auc_permutation_alternatives():
    rng = np.random.default_rng(5)
    x, labels, groups = paired_design(rng, shift=-1.0, dim=1)
    less = auc_permutation_test(x[:, 0], labels, groups, n_perm=499, alternative="less")
    greater = auc_permutation_test(x[:, 0], labels, groups, n_perm=499, alternative="greater")
    assert less.auc < 0.5
    assert less.pvalue < 0.01 < 0.9 < greater.pvalue


# ---------------------------------------------------------------------------------------- accuracy


def test_accuracy_counts_ties_as_half_and_keeps_them_in_n():
    outcomes = [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0, np.nan, np.nan]
    result = accuracy_with_ties(outcomes)
    assert result.n == 8
    assert (result.n_correct, result.n_ties, result.n_wrong, result.n_invalid) == (3, 4, 1, 2)
    assert result.accuracy == pytest.approx(5 / 8)
    assert result.method == "wilson"
    assert result.n_groups == 8
    as_ties = accuracy_with_ties(outcomes, invalid="tie")
    assert as_ties.n == 10 and as_ties.n_ties == 6 and as_ties.n_invalid == 2
    assert as_ties.accuracy == pytest.approx(6 / 10)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (45, 60), (100, 100)])
def test_wilson_interval_matches_statsmodels(k, n):
    result = accuracy_with_ties([1] * k + [0] * (n - k), ci=0.9)
    low, high = proportion_confint(k, n, alpha=0.1, method="wilson")
    assert result.low == pytest.approx(low, abs=1e-12)
    assert result.high == pytest.approx(high, abs=1e-12)


def test_grouped_accuracy_uses_a_cluster_bootstrap_and_is_wider():
    rng = np.random.default_rng(6)
    n_prompts, per_prompt = 40, 10
    groups = np.repeat(np.arange(n_prompts), per_prompt)
    # Prompt difficulty varies a lot: outcomes of one prompt are strongly correlated.
    p_prompt = rng.beta(1, 1, n_prompts)[groups]
    outcomes = (rng.uniform(size=groups.size) < p_prompt).astype(float)
    grouped = accuracy_with_ties(outcomes, groups, n_boot=1000)
    naive = accuracy_with_ties(outcomes)
    assert grouped.method == "cluster_bootstrap"
    assert grouped.n == 400 and grouped.n_groups == 40
    assert grouped.accuracy == naive.accuracy
    assert (grouped.high - grouped.low) > 2 * (naive.high - naive.low)
    with pytest.raises(ValueError, match="independent"):
        accuracy_with_ties(outcomes, groups, method="wilson")


def test_accuracy_invalid_outcomes():
    with pytest.raises(ValueError, match=r"0, 0\.5, 1"):
        accuracy_with_ties([1, 0, 0.7])
    with pytest.raises(ValueError, match="no valid"):
        accuracy_with_ties([np.nan, np.nan])
