from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import stats

from lmdiff.stats import cluster_bootstrap_ci, grouped_permutation_pvalue, hierarchical_bootstrap_ci

# ----------------------------------------------------------------------------------- simulations


def clustered_values(rng, n_clusters=30, per_cluster=10, between_sd=2.0, within_sd=1.0, mean=0.0):
    clusters = np.repeat(np.arange(n_clusters), per_cluster)
    values = mean + rng.normal(0, between_sd, n_clusters)[clusters] + rng.normal(0, within_sd, clusters.size)
    return values, clusters


def unbalanced_null(rng, n_prompts=40, shift=0.0):
    """Two identical models answer 40 prompts with unequal allocation and strong prompt effects.

    Model A gave 16 answers to the first half of the prompts and 4 to the second; model B the
    reverse. The prompt effect (sd 3) then leaks into an ungrouped comparison.
    """
    groups, labels = [], []
    for g in range(n_prompts):
        n_a, n_b = (16, 4) if g < n_prompts // 2 else (4, 16)
        groups += [g] * (n_a + n_b)
        labels += [0] * n_a + [1] * n_b
    groups, labels = np.array(groups), np.array(labels)
    values = rng.normal(0, 3.0, n_prompts)[groups] + rng.normal(0, 1.0, groups.size) + shift * labels
    return values, labels, groups


def cell_correlated_null(rng, n_prompts=30, per_cell=5):
    """Balanced prompts, but each model's answers to a prompt share a random (prompt, model) effect."""
    groups = np.repeat(np.arange(n_prompts), 2 * per_cell)
    labels = np.tile(np.repeat([0, 1], per_cell), n_prompts)
    cell = groups * 2 + labels
    values = (
        rng.normal(0, 0.5, n_prompts)[groups]
        + rng.normal(0, 1.0, 2 * n_prompts)[cell]
        + rng.normal(0, 0.5, groups.size)
    )
    return values, labels, groups


# -------------------------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_basic_fields_and_determinism():
    rng = np.random.default_rng(0)
    values, clusters = clustered_values(rng)
    a = cluster_bootstrap_ci(values, clusters, n_boot=500, seed=3)
    b = cluster_bootstrap_ci(values, clusters, n_boot=500, seed=3)
    c = cluster_bootstrap_ci(values, clusters, n_boot=500, seed=4)
    assert a == b
    assert a != c
    assert a.estimate == pytest.approx(values.mean())
    assert a.low < a.estimate < a.high
    assert (a.n_obs, a.n_clusters, a.n_excluded, a.n_boot) == (300, 30, 0, 500)
    assert a.method == "cluster_bootstrap_percentile"
    assert a.seed == 3
    json.dumps(a.to_dict(), allow_nan=False)


def test_cluster_bootstrap_fast_mean_path_equals_generic_path():
    rng = np.random.default_rng(1)
    values, clusters = clustered_values(rng, n_clusters=12, per_cluster=5)
    fast = cluster_bootstrap_ci(values, clusters, "mean", n_boot=300, seed=9)
    numpy_mean = cluster_bootstrap_ci(values, clusters, np.mean, n_boot=300, seed=9)
    generic = cluster_bootstrap_ci(values, clusters, lambda x: float(np.sum(x) / x.size), n_boot=300, seed=9)
    assert fast == numpy_mean
    assert generic.low == pytest.approx(fast.low, rel=1e-12)
    assert generic.high == pytest.approx(fast.high, rel=1e-12)
    assert generic.standard_error == pytest.approx(fast.standard_error, rel=1e-10)


def test_cluster_bootstrap_standard_error_matches_closed_form():
    # Mean of cluster means with equal cluster sizes: bootstrap SE ~ sd(cluster means) * sqrt((G-1)/G^2).
    rng = np.random.default_rng(2)
    values, clusters = clustered_values(rng, n_clusters=40, per_cluster=5)
    result = cluster_bootstrap_ci(values, clusters, n_boot=4000, seed=0)
    cluster_means = np.bincount(clusters, values) / 5
    expected = cluster_means.std(ddof=0) / np.sqrt(40)
    assert result.standard_error == pytest.approx(expected, rel=0.05)


def test_cluster_interval_is_wider_than_naive_when_clusters_are_correlated():
    rng = np.random.default_rng(3)
    values, clusters = clustered_values(rng, n_clusters=30, per_cluster=20, between_sd=1.0, within_sd=1.0)
    clustered = cluster_bootstrap_ci(values, clusters, n_boot=1000, seed=0)
    naive = cluster_bootstrap_ci(values, None, n_boot=1000, seed=0)
    assert naive.method == "iid_bootstrap_percentile"
    assert naive.n_clusters == values.size
    # Design effect 1 + (m - 1) * ICC = 1 + 19 * 0.5 = 10.5: widths differ by about sqrt(10.5) = 3.2.
    ratio = (clustered.high - clustered.low) / (naive.high - naive.low)
    assert 2.3 < ratio < 4.5


def test_cluster_bootstrap_covers_while_naive_does_not():
    rng = np.random.default_rng(4)
    hits_cluster = hits_naive = 0
    n_sim = 200
    for _ in range(n_sim):
        values, clusters = clustered_values(rng, n_clusters=30, per_cluster=10, between_sd=1.0)
        c = cluster_bootstrap_ci(values, clusters, n_boot=300, seed=rng)
        n = cluster_bootstrap_ci(values, None, n_boot=300, seed=rng)
        hits_cluster += c.low <= 0.0 <= c.high
        hits_naive += n.low <= 0.0 <= n.high
    assert hits_cluster / n_sim >= 0.88
    assert hits_naive / n_sim <= 0.65


def test_cluster_bootstrap_excludes_nan_and_counts_it():
    values = np.array([1.0, np.nan, 2.0, 3.0, np.nan, 4.0])
    clusters = np.array(["a", "a", "b", "b", "c", "c"])
    result = cluster_bootstrap_ci(values, clusters, n_boot=200)
    assert result.n_excluded == 2
    assert result.n_obs == 4
    assert result.n_clusters == 3
    assert result.estimate == pytest.approx(2.5)


def test_cluster_bootstrap_custom_statistic():
    rng = np.random.default_rng(5)
    values, clusters = clustered_values(rng)
    result = cluster_bootstrap_ci(values, clusters, np.median, n_boot=300)
    assert result.estimate == pytest.approx(np.median(values))
    assert result.low < result.estimate < result.high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1.0, 2.0], "clusters": ["a", "a"]}, "at least 2 clusters"),
        ({"values": [1.0, 2.0], "clusters": ["a"]}, "entries"),
        ({"values": [1.0, 2.0], "n_boot": 0}, "n_boot"),
        ({"values": [1.0, 2.0], "ci": 1.5}, "ci"),
        ({"values": [1.0, 2.0], "stat": "median"}, "stat"),
    ],
)
def test_cluster_bootstrap_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cluster_bootstrap_ci(**kwargs)


# ---------------------------------------------------------------------------- hierarchical bootstrap


def seeds_and_questions(rng, n_seeds=8, n_questions=15, per_question=4, seed_sd=1.0):
    seeds = np.repeat(np.arange(n_seeds), n_questions * per_question)
    # Question labels restart in every seed: "q0" under seed 0 and under seed 1 are different clusters.
    questions = np.tile(np.repeat([f"q{i}" for i in range(n_questions)], per_question), n_seeds)
    q_code = seeds * n_questions + np.tile(np.repeat(np.arange(n_questions), per_question), n_seeds)
    values = (
        rng.normal(0, seed_sd, n_seeds)[seeds]
        + rng.normal(0, 0.5, n_seeds * n_questions)[q_code]
        + rng.normal(0, 1, seeds.size)
    )
    return values, seeds, questions


def test_hierarchical_bootstrap_counts_nested_clusters():
    rng = np.random.default_rng(6)
    values, seeds, questions = seeds_and_questions(rng)
    result = hierarchical_bootstrap_ci(values, seeds, questions, n_boot=300, seed=1)
    assert result.n_clusters == 8
    assert result.n_inner_clusters == 8 * 15
    assert result.n_obs == values.size
    assert result.method == "hierarchical_bootstrap_percentile"
    assert result.estimate == pytest.approx(values.mean())
    assert result.low < result.estimate < result.high
    assert result == hierarchical_bootstrap_ci(values, seeds, questions, n_boot=300, seed=1)


def test_hierarchical_interval_reflects_the_outer_level():
    rng = np.random.default_rng(7)
    values, seeds, questions = seeds_and_questions(rng, seed_sd=1.0)
    inner_key = [f"{s}/{q}" for s, q in zip(seeds, questions, strict=True)]
    hier = hierarchical_bootstrap_ci(values, seeds, questions, n_boot=1000)
    one_level = cluster_bootstrap_ci(values, inner_key, n_boot=1000)
    outer_only = hierarchical_bootstrap_ci(values, seeds, questions, n_boot=1000, resample_inner=False)
    # Seeds vary a lot: ignoring that level (questions as the only clusters) is far too narrow.
    assert (hier.high - hier.low) > 2 * (one_level.high - one_level.low)
    # Resampling both levels is at least as wide as resampling seeds only.
    assert hier.standard_error >= 0.95 * outer_only.standard_error
    # Resampling seeds only: SE close to sd(seed means) / sqrt(n_seeds).
    seed_means = np.bincount(seeds, values) / np.bincount(seeds)
    assert outer_only.standard_error == pytest.approx(seed_means.std() / np.sqrt(8), rel=0.1)


def test_hierarchical_generic_statistic_matches_mean_path():
    rng = np.random.default_rng(8)
    values, seeds, questions = seeds_and_questions(rng, n_seeds=4, n_questions=5)
    fast = hierarchical_bootstrap_ci(values, seeds, questions, n_boot=200, seed=2)
    generic = hierarchical_bootstrap_ci(values, seeds, questions, lambda x: x.sum() / x.size, n_boot=200, seed=2)
    assert generic.low == pytest.approx(fast.low, rel=1e-12)
    assert generic.high == pytest.approx(fast.high, rel=1e-12)


def test_hierarchical_needs_two_outer_clusters():
    with pytest.raises(ValueError, match="2 outer"):
        hierarchical_bootstrap_ci([1.0, 2.0, 3.0], ["s", "s", "s"], ["a", "b", "c"])


# ---------------------------------------------------------------------------- permutation tests


def test_within_group_test_is_calibrated_while_naive_test_over_rejects():
    rng = np.random.default_rng(10)
    n_sim, alpha = 200, 0.05
    grouped, naive = [], []
    for _ in range(n_sim):
        values, labels, groups = unbalanced_null(rng)
        grouped.append(grouped_permutation_pvalue(values, labels, groups, n_perm=199, seed=rng).pvalue)
        naive.append(grouped_permutation_pvalue(values, labels, None, n_perm=199, seed=rng).pvalue)
    grouped, naive = np.array(grouped), np.array(naive)
    assert np.mean(grouped <= alpha) <= 0.08
    assert np.mean(naive <= alpha) >= 0.3
    # Roughly uniform: deciles of the grouped p-values are not far from flat.
    assert stats.kstest(grouped, "uniform").pvalue > 0.01


def test_whole_group_flips_stay_valid_when_answers_of_one_model_are_correlated():
    rng = np.random.default_rng(11)
    n_sim, alpha = 200, 0.05
    whole, within, naive = [], [], []
    for _ in range(n_sim):
        values, labels, groups = cell_correlated_null(rng)
        whole.append(grouped_permutation_pvalue(values, labels, groups, scheme="whole_group", n_perm=199, seed=rng))
        within.append(grouped_permutation_pvalue(values, labels, groups, n_perm=199, seed=rng))
        naive.append(grouped_permutation_pvalue(values, labels, None, n_perm=199, seed=rng))
    rate = {
        name: np.mean([r.pvalue <= alpha for r in rs])
        for name, rs in [("whole", whole), ("within", within), ("naive", naive)]
    }
    assert rate["whole"] <= 0.08
    assert rate["within"] >= 0.2  # answers are not exchangeable one by one: documented limitation
    assert rate["naive"] >= 0.2


def test_power_under_a_clear_alternative():
    rng = np.random.default_rng(12)
    values, labels, groups = unbalanced_null(rng, shift=1.0)
    result = grouped_permutation_pvalue(values, labels, groups, n_perm=999, alternative="greater")
    assert result.pvalue == pytest.approx(1 / 1000)
    # With unequal allocation the pooled difference mixes in prompt effects (its permutation null is
    # not centred at 0); the mean of within-prompt differences estimates the shift itself.
    per_group = grouped_permutation_pvalue(
        values, labels, groups, statistic="group_mean_difference", n_perm=999, alternative="greater"
    )
    assert per_group.pvalue == pytest.approx(1 / 1000)
    assert per_group.statistic == pytest.approx(1.0, abs=0.25)
    less = grouped_permutation_pvalue(values, labels, groups, n_perm=999, alternative="less")
    assert less.pvalue > 0.9


def test_pvalue_is_never_zero_and_counts_are_reported():
    rng = np.random.default_rng(13)
    groups = np.repeat(np.arange(20), 4)
    labels = np.tile([0, 0, 1, 1], 20)
    values = labels * 10.0 + rng.normal(0, 0.1, 80)
    values[[0, 5]] = np.nan
    result = grouped_permutation_pvalue(values, labels, groups, n_perm=499, seed=1)
    assert result.pvalue == pytest.approx(2 / 500)  # two-sided: twice the smallest one-sided p
    greater = grouped_permutation_pvalue(values, labels, groups, n_perm=499, seed=1, alternative="greater")
    assert greater.pvalue == pytest.approx(1 / 500)
    assert result.n_excluded == 2
    assert result.n_obs == 78
    assert (result.n_a, result.n_b) == (38, 40)
    assert result.n_groups == 20
    assert result.n_informative_groups == 20
    assert result.null_sd > 0
    json.dumps(result.to_dict(), allow_nan=False)


def test_whole_group_p_value_matches_exact_enumeration():
    rng = np.random.default_rng(14)
    n_groups = 7
    groups = np.repeat(np.arange(n_groups), 4)
    labels = np.tile([0, 1, 0, 1], n_groups)
    values = rng.normal(0, 1, groups.size) + 0.4 * labels
    # Each group's contribution to the pooled mean difference is (sum_B - sum_A) / 14; a swap flips its sign.
    contrib = (
        np.array(
            [
                values[(groups == g) & (labels == 1)].sum() - values[(groups == g) & (labels == 0)].sum()
                for g in range(n_groups)
            ]
        )
        / 14
    )
    observed = contrib.sum()
    null = np.array([np.dot(signs, contrib) for signs in itertools.product([1, -1], repeat=n_groups)])
    exact = min(1.0, 2 * min(np.mean(null >= observed - 1e-12), np.mean(null <= observed + 1e-12)))
    assert exact == pytest.approx(np.mean(np.abs(null) >= abs(observed) - 1e-12))  # symmetric null
    result = grouped_permutation_pvalue(values, labels, groups, scheme="whole_group", n_perm=20000, seed=0)
    assert result.statistic == pytest.approx(observed)
    assert result.pvalue == pytest.approx(exact, abs=0.01)


def test_ungrouped_test_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(15)
    a, b = rng.normal(0, 1, 30), rng.normal(0.5, 1, 25)
    values = np.concatenate([a, b])
    labels = np.r_[np.zeros(30), np.ones(25)]
    ours = grouped_permutation_pvalue(values, labels, None, n_perm=9999, seed=0)
    ref = stats.permutation_test((b, a), lambda x, y: np.mean(x) - np.mean(y), n_resamples=9999, random_state=1)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=0.01)


def test_callable_statistic_matches_builtin_with_same_seed():
    rng = np.random.default_rng(16)
    values, labels, groups = unbalanced_null(rng, n_prompts=10)

    def mean_difference(v, lab):
        return v[lab].mean() - v[~lab].mean()

    builtin = grouped_permutation_pvalue(values, labels, groups, n_perm=200, seed=5)
    custom = grouped_permutation_pvalue(values, labels, groups, statistic=mean_difference, n_perm=200, seed=5)
    assert custom.statistic_name == "mean_difference"
    assert custom.statistic == pytest.approx(builtin.statistic)
    assert custom.pvalue == builtin.pvalue


def test_group_mean_difference_weights_groups_equally_and_drops_one_sided_groups():
    # Group 0: B - A = 1 (10 items); group 1: B - A = 3 (2 items); group 2 only has model A.
    values = np.array([0.0] * 5 + [1.0] * 5 + [0.0, 3.0] + [7.0, 7.0])
    labels = np.array([0] * 5 + [1] * 5 + [0, 1] + [0, 0])
    groups = np.array([0] * 10 + [1] * 2 + [2] * 2)
    result = grouped_permutation_pvalue(values, labels, groups, statistic="group_mean_difference", n_perm=50)
    assert result.statistic == pytest.approx(2.0)
    assert result.n_groups == 3
    assert result.n_informative_groups == 2
    assert result.n_obs == 12
    pooled = grouped_permutation_pvalue(values, labels, groups, n_perm=50)
    assert pooled.statistic == pytest.approx(8 / 6 - 14 / 8)
    assert pooled.n_obs == 14


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(17)
    values, labels, groups = unbalanced_null(rng, shift=0.3)
    a = grouped_permutation_pvalue(values, labels, groups, n_perm=300, seed=42)
    b = grouped_permutation_pvalue(values, labels, groups, n_perm=300, seed=42)
    c = grouped_permutation_pvalue(values, labels, groups, n_perm=300, seed=43)
    assert a == b
    assert a.null_mean != c.null_mean


@pytest.mark.parametrize(
    ("values", "labels", "groups", "kwargs", "message"),
    [
        ([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1], [0, 0, 1, 1], {}, "no group holds"),
        ([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], [0, 0, 1, 1], {}, "both models"),
        ([1.0, 2.0, 3.0], [0, 1, 1], [0, 0, 0], {"scheme": "whole_group"}, "unbalanced"),
        ([1.0, 2.0], [0, 2], [0, 0], {}, "only 0 and 1"),
        ([1.0, 2.0], [0, 1], [0, 0], {"scheme": "shuffle"}, "scheme"),
        ([1.0, 2.0], [0, 1], [0, 0], {"alternative": "bigger"}, "alternative"),
        ([1.0, 2.0], [0, 1], [0, 0], {"statistic": "median"}, "statistic"),
        ([1.0, 2.0], [0, 1, 1], [0, 0], {}, "entries"),
    ],
)
def test_permutation_invalid(values, labels, groups, kwargs, message):
    with pytest.raises(ValueError, match=message):
        grouped_permutation_pvalue(values, labels, groups, n_perm=10, **kwargs)


@pytest.mark.parametrize("sizes", [[4, 4, 4], [2, 5, 9]])  # equal sizes (shuffle path) and unequal (sort path)
def test_within_group_relabelling_keeps_group_counts_and_is_uniform(sizes):
    from lmdiff.stats._permutation import GroupLayout, permuted_labels

    codes = np.repeat(np.arange(len(sizes)), sizes)
    labels = np.concatenate([np.arange(s) < 1 + s // 3 for s in sizes])  # a few True per group
    layout = GroupLayout.from_codes(codes)
    rows = np.concatenate(
        list(permuted_labels(labels[layout.order], layout, "within_group", 20_000, np.random.default_rng(0)))
    )
    sorted_codes = codes[layout.order]
    for g in range(len(sizes)):
        block = rows[:, sorted_codes == g]
        assert (block.sum(axis=1) == labels[codes == g].sum()).all()
        # Every position of the group is equally likely to carry a True label.
        np.testing.assert_allclose(block.mean(axis=0), labels[codes == g].mean(), atol=0.02)
