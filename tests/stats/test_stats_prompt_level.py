"""Prompt-level tests: exact sign flips, and calibration under a prompt-by-model interaction."""

from __future__ import annotations

import numpy as np
import pytest

from lmdiff.stats import auc_permutation_test
from lmdiff.stats.prompt_level import (
    per_prompt_differences,
    prompt_auc_test,
    prompt_difference_test,
    sign_flip_pvalues,
    sign_flip_test,
)


def _interaction_null(rng: np.random.Generator, n_prompts: int = 24, per_side: int = 3, shift: float = 0.0):
    """Texts of two models per prompt: no overall shift, but each prompt moves by its own amount."""
    prompt = rng.normal(0, 1, n_prompts)
    interaction = rng.normal(0, 1, n_prompts)  # sd equal to the within-prompt noise
    scores, labels, groups = [], [], []
    for g in range(n_prompts):
        for side in (0, 1):
            mu = prompt[g] + side * (interaction[g] + shift)
            scores.extend(rng.normal(mu, 1, per_side))
            labels.extend([side] * per_side)
            groups.extend([g] * per_side)
    return np.array(scores), np.array(labels, dtype=bool), np.array(groups)


def test_sign_flip_exact_smallest_pvalue():
    res = sign_flip_test(np.arange(1, 9, dtype=float))
    assert res.exact and res.n == 8
    assert res.pvalue == pytest.approx(1 / 256)
    assert sign_flip_test(np.arange(1, 9, dtype=float), alternative="less").pvalue == 1.0
    assert sign_flip_test(np.arange(1, 9, dtype=float), alternative="two-sided").pvalue == pytest.approx(2 / 256)


def test_sign_flip_drops_nan_and_counts_it():
    res = sign_flip_test([1.0, np.nan, 2.0, -0.5])
    assert res.n == 3 and res.n_excluded == 1
    assert res.mean == pytest.approx(2.5 / 3)


def test_sign_flip_monte_carlo_beyond_16_units():
    rng = np.random.default_rng(0)
    res = sign_flip_test(rng.normal(0.8, 1, 40), n_perm=1999, seed=1)
    assert not res.exact and res.n_perm == 1999
    assert res.pvalue < 0.01


def test_prompt_auc_holds_its_level_under_interaction_where_within_prompt_permutation_does_not():
    """The defect of the first wave: within-prompt permutation rejects ~11% at a nominal 5%."""
    rng = np.random.default_rng(12345)
    runs = 200
    new = old = 0
    for r in range(runs):
        s, lab, g = _interaction_null(rng)
        new += prompt_auc_test(s, lab, g, n_perm=999, seed=r).pvalue <= 0.05
        old += auc_permutation_test(s, lab, list(g), n_perm=499, alternative="greater", seed=r).pvalue <= 0.05
    assert new / runs <= 0.085
    assert old / runs >= 0.085  # the within-prompt null is anti-conservative here


def test_prompt_auc_detects_a_real_shift():
    rng = np.random.default_rng(3)
    s, lab, g = _interaction_null(rng, shift=1.5)
    res = prompt_auc_test(s, lab, g, n_perm=999, seed=0)
    assert res.auc > 0.7 and res.pvalue < 0.01
    assert res.low < res.auc < res.high
    assert res.n_groups == 24 and res.n_pairs == 24 * 9 and res.n_texts == 24 * 6


def test_prompt_auc_direction_and_exclusions():
    s = np.array([1.0, 2.0, 0.0, 0.5, np.nan, 3.0, 1.0, 1.0, 1.0])
    lab = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0], dtype=bool)
    g = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])  # prompt 1 loses a text; prompt 2 has only base texts
    res = prompt_auc_test(s, lab, g, alternative="less")
    assert res.n_groups == 2  # prompt 2 has no finetuned text
    assert res.n_excluded == 3  # the NaN and prompt 2's two texts
    assert res.auc == pytest.approx(1.0)
    assert res.pvalue == 1.0  # the data go the other way


def test_prompt_difference_effect_size_uses_prompts_not_texts():
    rng = np.random.default_rng(7)
    s, lab, g = _interaction_null(rng, n_prompts=30, per_side=20, shift=0.3)
    res = prompt_difference_test(s, lab, g)
    diffs = per_prompt_differences(s, lab, g)
    assert res.n_groups == 30
    assert res.effect_size_d == pytest.approx(diffs.mean() / diffs.std(ddof=1))
    # many replies per prompt must not inflate d: a text-level d would treat 600 texts as independent
    text_d = (s[lab].mean() - s[~lab].mean()) / np.sqrt((s[lab].var(ddof=1) + s[~lab].var(ddof=1)) / 2)
    assert abs(res.effect_size_d - text_d) > 0.01


def test_prompt_difference_interval_covers_under_interaction():
    rng = np.random.default_rng(11)
    runs, cover = 150, 0
    for r in range(runs):
        s, lab, g = _interaction_null(rng, shift=0.5)
        res = prompt_difference_test(s, lab, g, n_perm=99, seed=r)
        cover += res.low <= 0.5 <= res.high
    assert cover / runs >= 0.88


def test_unit_mean_interval_is_clipped_to_the_range_the_mean_cannot_leave() -> None:
    from lmdiff.stats import unit_mean_interval

    rates = np.array([1.0] * 14 + [0.5, 0.75])  # a rate near 1: the t interval's upper end passes 1
    free = unit_mean_interval(rates)
    assert free.high > 1.0
    clipped = unit_mean_interval(rates, bounds=(0.0, 1.0))
    assert clipped.high == 1.0 and clipped.low == pytest.approx(free.low) and clipped.estimate == free.estimate
    gaps = unit_mean_interval(np.array([-1.0] * 15 + [-0.5]), bounds=(-1.0, 1.0))
    assert gaps.low == -1.0 and gaps.high < -0.9


@pytest.mark.parametrize("n", [10, 40])
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_sign_flip_pvalues_equal_the_one_column_test_per_column(n, alternative):
    rng = np.random.default_rng(5)
    values = rng.standard_normal((n, 7)) + np.linspace(-0.8, 0.8, 7)
    many = sign_flip_pvalues(values, alternative=alternative, n_perm=999, seed=3, chunk=3)
    one = [sign_flip_test(values[:, j], alternative=alternative, n_perm=999, seed=3).pvalue for j in range(7)]
    np.testing.assert_allclose(many, one)
    if alternative == "greater":
        assert many[-1] < 0.05 < 0.5 < many[0]  # the shifted columns, in their direction


def test_sign_flip_pvalues_reject_nan_and_hold_their_level_under_the_null():
    with pytest.raises(ValueError, match="NaN"):
        sign_flip_pvalues(np.array([[1.0], [np.nan]]))
    rng = np.random.default_rng(0)
    p = sign_flip_pvalues(rng.standard_normal((30, 2000)) * rng.exponential(1, (30, 1)), n_perm=499, seed=1)
    assert 0.035 < float((p <= 0.05).mean()) < 0.065
