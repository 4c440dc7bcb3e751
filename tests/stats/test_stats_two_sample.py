from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB

from lmdiff.stats import bag_of_words_baseline, classifier_two_sample_test, mmd_permutation_test
from lmdiff.stats._logistic import fit_logistic_many, logistic_scores
from lmdiff.stats.two_sample import _ridge_operator


def paired_design(rng, n_prompts=50, per_model=3, dim=5, shift=0.0, prompt_sd=2.0):
    """Each prompt answered ``per_model`` times by each model; features share a strong prompt effect."""
    groups = np.repeat(np.arange(n_prompts), 2 * per_model)
    labels = np.tile(np.repeat([0, 1], per_model), n_prompts).astype(bool)
    x = rng.normal(0, prompt_sd, (n_prompts, dim))[groups] + rng.normal(0, 1, (groups.size, dim))
    x[labels, 0] += shift
    return x, labels, groups


# ------------------------------------------------------------------------------ batched logistic


def test_batched_logistic_matches_sklearn():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(150, 6))
    y = (x[:, 0] + rng.normal(size=150) > 0).astype(float)
    ys = np.column_stack([y, rng.permutation(y), rng.permutation(y)])
    w = fit_logistic_many(x, ys, C=0.5, tol=1e-10)
    for j in range(3):
        ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(x, ys[:, j])
        np.testing.assert_allclose(w[:-1, j], ref.coef_[0], atol=1e-5)
        assert w[-1, j] == pytest.approx(ref.intercept_[0], abs=1e-5)
        np.testing.assert_allclose(logistic_scores(x, w)[:, j], ref.decision_function(x), atol=1e-4)


def test_ridge_operator_matches_sklearn_ridge():
    rng = np.random.default_rng(8)
    for n, d in [(40, 5), (20, 50)]:  # primal and kernel forms
        xtr, xte = rng.normal(size=(n, d)), rng.normal(size=(7, d))
        y = rng.integers(0, 2, n).astype(float)
        pred = _ridge_operator(xtr, xte, alpha=2.0) @ y
        np.testing.assert_allclose(pred, Ridge(alpha=2.0).fit(xtr, y).predict(xte), atol=1e-10)


# ---------------------------------------------------------------------------- classifier 2-sample


def test_classifier_test_detects_a_difference():
    rng = np.random.default_rng(9)
    x, labels, groups = paired_design(rng, shift=1.0, prompt_sd=0.5)
    result = classifier_two_sample_test(x, labels, groups, n_perm=50, seed=0)
    assert result.auc > 0.65
    assert result.accuracy > 0.6
    assert result.pvalue == pytest.approx(1 / 51)
    assert (result.n, result.n_pos, result.n_neg, result.n_groups) == (300, 150, 150, 50)
    assert result.n_splits == 5 and result.estimator == "logistic(C=1.0)"
    json.dumps(result.to_dict(), allow_nan=False)


def test_classifier_test_without_difference_is_not_significant():
    rng = np.random.default_rng(10)
    x, labels, groups = paired_design(rng, shift=0.0)
    result = classifier_two_sample_test(x, labels, groups, n_perm=50, seed=0)
    assert 0.35 < result.auc < 0.65
    assert result.pvalue > 0.05


def test_ridge_classifier_test_is_calibrated_under_a_grouped_null():
    rng = np.random.default_rng(11)
    pvalues = []
    for _ in range(100):
        x, labels, groups = paired_design(rng, n_prompts=20, per_model=2)
        r = classifier_two_sample_test(x, labels, groups, estimator="ridge", n_perm=99, seed=rng)
        pvalues.append(r.pvalue)
    assert np.mean(np.array(pvalues) <= 0.05) <= 0.1


def test_classifier_test_estimators_agree_on_a_strong_signal():
    rng = np.random.default_rng(12)
    x, labels, groups = paired_design(rng, shift=2.0, n_prompts=30, prompt_sd=0.5)
    ridge = classifier_two_sample_test(x, labels, groups, estimator="ridge", n_perm=30)
    # A scikit-learn estimator without decision_function: scores come from predict_proba.
    custom = classifier_two_sample_test(x, labels, groups, estimator=GaussianNB(), n_perm=5)
    logistic = classifier_two_sample_test(x, labels, groups, n_perm=30)
    assert custom.estimator == "GaussianNB"
    for r in (ridge, custom, logistic):
        assert r.auc > 0.8
    assert ridge.pvalue == pytest.approx(1 / 31)


def test_classifier_test_excludes_nan_rows_and_is_deterministic():
    rng = np.random.default_rng(13)
    x, labels, groups = paired_design(rng, shift=0.5, n_prompts=20)
    x[3, 1] = np.nan
    a = classifier_two_sample_test(x, labels, groups, n_perm=20, seed=4)
    b = classifier_two_sample_test(x, labels, groups, n_perm=20, seed=4)
    assert a == b
    assert a.n == 119 and a.n_excluded == 1


def test_classifier_test_invalid():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="at least 2 groups"):
        classifier_two_sample_test(x, [0, 1, 0, 1], [0, 0, 0, 0], n_perm=5)
    with pytest.raises(ValueError, match="needs groups"):
        classifier_two_sample_test(x, [0, 1, 0, 1], None, n_perm=5, scheme="whole_group")
    with pytest.raises(ValueError, match="estimator"):
        classifier_two_sample_test(x, [0, 1, 0, 1], [0, 0, 1, 1], estimator="svm")


# -------------------------------------------------------------------------------------------- MMD


def direct_unbiased_mmd2(a, b, sigma):
    def k(u, v):
        return np.exp(-((u[:, None, :] - v[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))

    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    m, n = len(a), len(b)
    return (kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean()


def test_mmd_matches_direct_formula_and_both_call_forms():
    rng = np.random.default_rng(14)
    a, b = rng.normal(size=(30, 3)), rng.normal(0.5, 1, size=(25, 3))
    two = mmd_permutation_test(a, b, bandwidth=1.3, n_perm=200, seed=1)
    assert two.mmd2 == pytest.approx(direct_unbiased_mmd2(a, b, 1.3), rel=1e-10)
    stacked = mmd_permutation_test(
        np.vstack([a, b]), labels=np.r_[np.zeros(30), np.ones(25)], bandwidth=1.3, n_perm=200, seed=1
    )
    assert stacked == two
    assert (two.n_a, two.n_b, two.n, two.n_groups) == (30, 25, 55, 55)
    linear = mmd_permutation_test(a, b, kernel="linear", n_perm=10)
    mean_gap = a.mean(0) - b.mean(0)
    # Linear-kernel unbiased MMD^2 = |mean_a - mean_b|^2 minus the diagonal (self-pair) terms.
    expected = (
        mean_gap @ mean_gap
        - (np.einsum("ij,ij->", a, a) / 30 - a.mean(0) @ a.mean(0)) / 29
        - (np.einsum("ij,ij->", b, b) / 25 - b.mean(0) @ b.mean(0)) / 24
    )
    assert linear.mmd2 == pytest.approx(expected, rel=1e-8)


def test_mmd_median_bandwidth_power_and_null():
    rng = np.random.default_rng(15)
    x, labels, groups = paired_design(rng, shift=1.0, dim=3, prompt_sd=0.5)
    alt = mmd_permutation_test(x, labels=labels, groups=groups, n_perm=199)
    assert alt.pvalue == pytest.approx(1 / 200)
    assert alt.bandwidth > 0 and alt.kernel == "rbf"
    assert alt.n_groups == 50
    pvalues = []
    for _ in range(100):
        x, labels, groups = paired_design(rng, n_prompts=15, per_model=2, dim=2)
        pvalues.append(mmd_permutation_test(x, labels=labels, groups=groups, n_perm=99, seed=rng).pvalue)
    assert np.mean(np.array(pvalues) <= 0.05) <= 0.1


def test_mmd_invalid():
    with pytest.raises(ValueError, match="either Y or labels"):
        mmd_permutation_test(np.zeros((3, 2)), np.zeros((3, 2)), labels=[0, 1, 1])
    with pytest.raises(ValueError, match="at least 2"):
        mmd_permutation_test(np.zeros((1, 2)), np.ones((3, 2)))


# ----------------------------------------------------------------------------------- bag of words


def make_texts(rng, n_prompts=40, per_model=2, planted=None):
    words = [
        "the",
        "a",
        "model",
        "answer",
        "question",
        "is",
        "of",
        "to",
        "and",
        "in",
        "it",
        "that",
        "this",
        "for",
        "with",
        "on",
    ]
    texts, labels, groups = [], [], []
    for g in range(n_prompts):
        topic = f"topic{g}"
        for lab in (0, 1):
            for _ in range(per_model):
                tokens = [*rng.choice(words, 12), topic]
                if planted and lab == 1:
                    tokens.insert(int(rng.integers(0, len(tokens))), planted)
                texts.append(" ".join(tokens))
                labels.append(lab)
                groups.append(g)
    return texts, np.array(labels), np.array(groups)


def test_bag_of_words_finds_a_planted_word():
    rng = np.random.default_rng(16)
    texts, labels, groups = make_texts(rng, planted="Indeed")
    texts[5] = None  # a failed generation: excluded and counted
    result = bag_of_words_baseline(texts, labels, groups, n_perm=3, seed=0)
    assert result.auc > 0.9
    assert result.accuracy > 0.75
    assert result.n == 159 and result.n_excluded == 1 and result.n_groups == 40
    assert result.pvalue == pytest.approx(1 / 4)
    counts = bag_of_words_baseline(texts, labels, groups, vectorizer="count")
    assert counts.auc > 0.97
    assert result.vectorizer == "tfidf" and result.ngram_range == (1, 2)
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["ngram_range"] == [1, 2]


def test_bag_of_words_without_difference_is_near_chance():
    rng = np.random.default_rng(17)
    texts, labels, groups = make_texts(rng)
    result = bag_of_words_baseline(texts, labels, groups, vectorizer="count", ngram_range=(1, 1))
    assert abs(result.auc - 0.5) < 0.15
    assert np.isnan(result.pvalue) and result.to_dict()["pvalue"] is None
