from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from lmdiff.stats import cohens_d, cohens_h, log_odds_ratio, proportion_shift, risk_difference

# --------------------------------------------------------------------------------- plain effect sizes


def test_cohens_h_closed_forms():
    assert cohens_h(0.5, 0.5) == 0.0
    assert cohens_h(1.0, 0.0) == pytest.approx(math.pi)
    assert cohens_h(0.3, 0.6) == pytest.approx(-cohens_h(0.6, 0.3))
    assert cohens_h(0.6, 0.3) == pytest.approx(2 * math.asin(math.sqrt(0.6)) - 2 * math.asin(math.sqrt(0.3)))
    with pytest.raises(ValueError):
        cohens_h(1.2, 0.1)


def test_cohens_d_closed_form():
    # Both samples have SD 1, means 2 and 5 -> d = -3.
    assert cohens_d([1, 2, 3], [4, 5, 6]) == pytest.approx(-3.0)
    x, y = np.array([1.0, 3, 5, 9]), np.array([2.0, 2, 4])
    pooled = math.sqrt((3 * x.var(ddof=1) + 2 * y.var(ddof=1)) / 5)
    assert cohens_d(x, y) == pytest.approx((x.mean() - y.mean()) / pooled)
    assert math.isnan(cohens_d([1, 1], [1, 1]))
    with pytest.raises(ValueError, match="NaN"):
        cohens_d([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        cohens_d([1], [1, 2])


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(30, 100, 15, 90), (5, 20, 12, 25), (70, 70, 0, 10)])
def test_log_odds_ratio_matches_statsmodels(k1, n1, k2, n2):
    result = log_odds_ratio(k1, n1, k2, n2, ci=0.9)
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=float)
    has_zero = (table == 0).any()
    ref = Table2x2(table + 0.5 if has_zero else table)
    assert result.estimate == pytest.approx(ref.log_oddsratio)
    assert result.se == pytest.approx(ref.log_oddsratio_se)
    low, high = ref.log_oddsratio_confint(alpha=0.1)
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
    assert ("haldane" in result.method) == has_zero
    assert (result.n1, result.n2) == (n1, n2)


def test_log_odds_ratio_without_correction_is_infinite_on_a_zero_cell():
    assert math.isinf(log_odds_ratio(5, 5, 2, 10, correction=0.0).estimate)


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"), [(30, 100, 15, 90), (0, 20, 3, 25), (56, 70, 48, 80), (10, 10, 0, 10)]
)
def test_risk_difference_matches_statsmodels_newcombe(k1, n1, k2, n2):
    result = risk_difference(k1, n1, k2, n2)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    assert result.estimate == pytest.approx(k1 / n1 - k2 / n2)
    assert result.low == pytest.approx(low, abs=1e-10)
    assert result.high == pytest.approx(high, abs=1e-10)
    assert -1.0 <= result.low <= result.estimate <= result.high <= 1.0


def test_invalid_counts():
    with pytest.raises(ValueError, match="successes"):
        risk_difference(11, 10, 1, 10)
    with pytest.raises(ValueError, match="successes"):
        log_odds_ratio(1, 0, 1, 10)


# ---------------------------------------------------------------------------------- proportion shift


def heterogeneous_prompts(rng, n_prompts=40, per_model=6, shift=0.0, cell_sd=0.0, spread=0.5):
    """Per-prompt counts; prompt rates vary (Beta(spread, spread); 0.5 = widely). ``cell_sd`` adds a
    random (prompt, model) effect on the logit scale, which correlates one model's answers to a prompt."""
    base = rng.beta(spread, spread, n_prompts)
    logit = np.log(np.clip(base, 1e-3, 1 - 1e-3) / (1 - np.clip(base, 1e-3, 1 - 1e-3)))
    pa = 1 / (1 + np.exp(-(logit + rng.normal(0, cell_sd, n_prompts))))
    pb = 1 / (1 + np.exp(-(logit + shift + rng.normal(0, cell_sd, n_prompts))))
    n = np.full(n_prompts, per_model)
    return rng.binomial(n, pa), n, rng.binomial(n, pb), n.copy()


def test_proportion_shift_estimates_and_counts():
    k_a, n_a = np.array([1, 2, 0, 3]), np.array([4, 4, 4, 4])
    k_b, n_b = np.array([3, 4, 1, 3]), np.array([4, 4, 2, 4])
    result = proportion_shift(k_a, n_a, k_b, n_b, n_perm=999, n_boot=500, seed=1)
    assert result.p_a == pytest.approx(6 / 16)
    assert result.p_b == pytest.approx(11 / 14)
    assert result.risk_difference == pytest.approx(11 / 14 - 6 / 16)
    assert result.cohens_h == pytest.approx(cohens_h(11 / 14, 6 / 16))
    assert result.log_odds_ratio == pytest.approx(math.log((11 / 3) / (6 / 10)))
    assert result.mean_group_difference == pytest.approx(np.mean([0.5, 0.5, 0.5, 0.0]))
    assert (result.n_a, result.n_b, result.k_a, result.k_b) == (16, 14, 6, 11)
    assert result.n_groups == 4 and result.n_informative_groups == 4
    assert result.risk_difference_low <= result.risk_difference <= result.risk_difference_high
    assert result.log_odds_ratio_low <= result.log_odds_ratio <= result.log_odds_ratio_high
    assert result == proportion_shift(k_a, n_a, k_b, n_b, n_perm=999, n_boot=500, seed=1)
    json.dumps(result.to_dict(), allow_nan=False)


def test_within_group_test_matches_exact_stratified_distribution():
    # Two prompts: the exact null of sum(k_a') is the convolution of two hypergeometric laws.
    k_a, n_a, k_b, n_b = np.array([1, 4]), np.array([5, 6]), np.array([4, 6]), np.array([5, 7])
    tot_a, tot_b, k_tot = n_a.sum(), n_b.sum(), (k_a + k_b).sum()
    laws = [stats.hypergeom(n_a[g] + n_b[g], k_a[g] + k_b[g], n_a[g]) for g in range(2)]
    supports = [np.arange(law.support()[0], law.support()[1] + 1) for law in laws]
    observed = (k_tot - k_a.sum()) / tot_b - k_a.sum() / tot_a
    upper = lower = 0.0
    for x0 in supports[0]:
        for x1 in supports[1]:
            s = x0 + x1
            diff = (k_tot - s) / tot_b - s / tot_a
            mass = laws[0].pmf(x0) * laws[1].pmf(x1)
            upper += mass * (diff >= observed - 1e-12)
            lower += mass * (diff <= observed + 1e-12)
    exact = min(1.0, 2 * min(upper, lower))  # two-sided: twice the smaller tail
    result = proportion_shift(k_a, n_a, k_b, n_b, n_perm=40_000, n_boot=10, seed=3)
    assert result.pvalue == pytest.approx(exact, abs=0.006)


def test_prompt_level_tests_are_calibrated_under_the_null():
    rng = np.random.default_rng(20)
    within = []
    for _ in range(200):
        k_a, n_a, k_b, n_b = heterogeneous_prompts(rng, n_prompts=20, per_model=5)
        within.append(proportion_shift(k_a, n_a, k_b, n_b, n_perm=199, n_boot=10, seed=rng).pvalue)
    within = np.array(within)
    # Counts are discrete, so the p-values are not exactly uniform, but the level holds.
    assert np.mean(within <= 0.05) <= 0.08
    assert np.mean(within <= 0.10) <= 0.14


def test_whole_group_flips_are_valid_where_texts_of_one_model_are_correlated():
    """With a random (prompt, model) effect, a z-test over texts (nobs = texts, the predecessor's
    mistake) and the text-level within-prompt permutation over-reject; whole-prompt swaps do not."""
    rng = np.random.default_rng(21)
    rates = {"whole": [], "within": [], "z": []}
    for _ in range(200):
        k_a, n_a, k_b, n_b = heterogeneous_prompts(rng, n_prompts=20, per_model=10, cell_sd=2.0, spread=5.0)
        whole = proportion_shift(k_a, n_a, k_b, n_b, test="whole_group", n_perm=199, n_boot=10, seed=rng)
        within = proportion_shift(k_a, n_a, k_b, n_b, n_perm=199, n_boot=10, seed=rng)
        _, z_p = proportions_ztest([k_b.sum(), k_a.sum()], [n_b.sum(), n_a.sum()])
        rates["whole"].append(whole.pvalue <= 0.05)
        rates["within"].append(within.pvalue <= 0.05)
        rates["z"].append(z_p <= 0.05)
    assert np.mean(rates["whole"]) <= 0.08
    assert np.mean(rates["within"]) >= 0.25
    assert np.mean(rates["z"]) >= 0.25


def test_proportion_shift_has_power_under_an_alternative():
    rng = np.random.default_rng(22)
    k_a, n_a, k_b, n_b = heterogeneous_prompts(rng, n_prompts=40, per_model=6, shift=1.5)
    for test in ("within_group", "whole_group"):
        result = proportion_shift(k_a, n_a, k_b, n_b, test=test, n_perm=999, n_boot=500, alternative="greater")
        assert result.pvalue == pytest.approx(1 / 1000)
        assert result.risk_difference_low > 0
        assert result.cohens_h_low > 0
        assert result.log_odds_ratio_low > 0


def test_proportion_shift_invalid():
    with pytest.raises(ValueError, match="more texts with the property"):
        proportion_shift([3, 1], [2, 2], [1, 1], [2, 2])
    with pytest.raises(ValueError, match="integer counts"):
        proportion_shift([0.5, 1], [2, 2], [1, 1], [2, 2])
    with pytest.raises(ValueError, match="n_a == n_b"):
        proportion_shift([1, 1], [2, 3], [1, 1], [2, 2], test="whole_group")
    with pytest.raises(ValueError, match="at least 2 prompts"):
        proportion_shift([1, 0], [2, 0], [1, 0], [2, 0])
    with pytest.raises(ValueError, match="both models"):
        proportion_shift([1, 0], [2, 0], [0, 1], [0, 2])
