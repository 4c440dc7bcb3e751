"""Global two-sample tests and the bag-of-words baseline: is there any difference at all?

* :func:`classifier_two_sample_test`: a classifier cross-validated with folds of whole prompts
  (GroupKFold), its out-of-fold AUC, and a p-value from re-running the cross-validation with the
  labels permuted within prompts;
* :func:`mmd_permutation_test`: the unbiased kernel MMD^2 with a grouped permutation p-value;
* :func:`bag_of_words_baseline`: the n-gram logistic-regression baseline that sits beside every
  claim, so a reader sees what a hypothesis adds over surface words.

Label convention: True/1 = model B (e.g. the finetune), False/0 = model A (e.g. the base).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.stats import rankdata

from lmdiff.stats._common import (
    SeedLike,
    StatsResult,
    as_binary_labels,
    check_positive_int,
    encode_groups,
    make_rng,
    monte_carlo_pvalue,
    seed_record,
)
from lmdiff.stats._logistic import fit_logistic_many, logistic_scores
from lmdiff.stats._permutation import GroupLayout, Scheme, check_balanced, check_scheme, permuted_labels
from lmdiff.stats.ngrams import tokenize

__all__ = [
    "BagOfWordsResult",
    "ClassifierTestResult",
    "MmdResult",
    "bag_of_words_baseline",
    "classifier_two_sample_test",
    "mmd_permutation_test",
]


# ------------------------------------------------------------------------- cross-validated classifiers


@dataclasses.dataclass(frozen=True)
class ClassifierTestResult(StatsResult):
    """A classifier two-sample test: out-of-fold AUC and accuracy with a grouped permutation p-value.

    Attributes:
        auc: out-of-fold AUC (scores of all folds pooled).
        accuracy: out-of-fold accuracy at the classifier's decision threshold, ties counted 1/2.
        pvalue: ``(b + 1) / (n_perm + 1)`` where b counts permutations whose out-of-fold AUC is at
            least the observed one (one-sided: better than chance).
        n: the number of items used (rows with NaN features excluded).
        n_pos: B items used.
        n_neg: A items used.
        n_excluded: items excluded for NaN features.
        n_groups: the number of groups (prompts).
        n_splits: the number of GroupKFold folds actually used.
        n_perm: the number of permutations.
        scheme: the permutation scheme.
        estimator: a short description of the classifier.
        n_features: the number of features (mean over folds for text vectorizers).
        seed: the int seed, or None.
    """

    auc: float
    accuracy: float
    pvalue: float
    n: int
    n_pos: int
    n_neg: int
    n_excluded: int
    n_groups: int
    n_splits: int
    n_perm: int
    scheme: str
    estimator: str
    n_features: float
    seed: int | None


@dataclasses.dataclass(frozen=True)
class BagOfWordsResult(ClassifierTestResult):
    """The bag-of-words baseline: a :class:`ClassifierTestResult` plus its text settings.

    ``pvalue`` is NaN (``None`` in :meth:`to_dict`) when ``n_perm=0``.

    Attributes:
        vectorizer: ``"tfidf"`` or ``"count"``.
        ngram_range: the n-gram orders used.
        min_df: the minimum document frequency within each training fold.
    """

    vectorizer: str = "tfidf"
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2


FitScore = Callable[[int, NDArray[np.float64]], NDArray[np.float64]]  # (fold, y_train) -> test scores


def _group_folds(codes: NDArray[np.int64], n_splits: int) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    from sklearn.model_selection import GroupKFold

    n_groups = int(np.unique(codes).size)
    if n_groups < 2:
        raise ValueError(f"cross-validation by group needs at least 2 groups, got {n_groups}")
    k = min(n_splits, n_groups)
    dummy = np.zeros((codes.size, 1))
    return [(tr, te) for tr, te in GroupKFold(n_splits=k).split(dummy, groups=codes)]


def _oof_scores(
    folds: Sequence[tuple[NDArray[np.int64], NDArray[np.int64]]], y: NDArray[np.float64], fit_score: FitScore
) -> NDArray[np.float64]:
    out = np.empty(y.size)
    for f, (tr, te) in enumerate(folds):
        out[te] = fit_score(f, y[tr])
    return out


def _auc_matrix(scores: NDArray[np.float64], labels: NDArray[np.bool_]) -> NDArray[np.float64]:
    """AUC of each column of ``scores`` (items x columns) against the matching label column."""
    ranks = rankdata(scores, axis=0)
    n_pos = labels.sum(axis=0)
    n_neg = labels.shape[0] - n_pos
    auc: NDArray[np.float64] = ((ranks * labels).sum(axis=0) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return auc


def _accuracy(scores: NDArray[np.float64], labels: NDArray[np.bool_], threshold: float) -> float:
    correct = np.where(scores > threshold, labels, ~labels).astype(np.float64)
    correct[scores == threshold] = 0.5
    return float(correct.mean())


def _decision_scores(model: Any, X: Any) -> NDArray[np.float64]:
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(X), dtype=np.float64).reshape(-1)
    return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]


def _estimator_threshold(model: Any) -> float:
    return 0.0 if hasattr(model, "decision_function") else 0.5


def _prepare_design(
    labels: ArrayLike, groups: ArrayLike | None, n: int, keep: NDArray[np.bool_], scheme: Scheme
) -> tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.int64]]:
    """Return ``(labels, fold_codes, permutation_codes)`` of the kept items.

    Without groups every item is its own fold unit, and all items form one exchangeable block
    for the permutations.
    """
    lab = as_binary_labels(labels)
    if lab.size != n:
        raise ValueError(f"labels has {lab.size} entries but there are {n} items")
    if groups is None and scheme == "whole_group":
        raise ValueError("scheme='whole_group' needs groups")
    codes, _ = encode_groups(groups, n)
    lab, codes = lab[keep], codes[keep]
    if lab.all() or not lab.any():
        raise ValueError("a two-sample test needs items of both models")
    perm_codes = np.zeros_like(codes) if groups is None else codes
    return lab, codes, perm_codes


def _permutation_aucs(
    lab: NDArray[np.bool_],
    codes: NDArray[np.int64],
    scheme: Scheme,
    n_perm: int,
    rng: np.random.Generator,
    oof_batch: Callable[[NDArray[np.bool_]], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """Out-of-fold AUCs for ``n_perm`` relabellings; ``oof_batch`` maps labels (items x k) to scores."""
    layout = GroupLayout.from_codes(codes)
    lab_sorted = lab[layout.order]
    if scheme == "whole_group":
        check_balanced(lab_sorted, layout)
    out: list[NDArray[np.float64]] = []
    for batch in permuted_labels(lab_sorted, layout, scheme, n_perm, rng):
        perm = np.empty_like(batch)
        perm[:, layout.order] = batch
        perm_t = perm.T
        out.append(_auc_matrix(oof_batch(perm_t), perm_t))
    return np.concatenate(out)


def _ridge_operator(xtr: NDArray[np.float64], xte: NDArray[np.float64], alpha: float) -> NDArray[np.float64]:
    """The matrix M such that ridge predictions on ``xte`` are ``M @ y_train`` (intercept included).

    Ridge regression of the 0/1 label is linear in the labels, so every permutation of one fold
    costs a single matrix product.
    """
    mu = xtr.mean(axis=0)
    xtr_c = xtr - mu
    xte_c = xte - mu
    n_tr, d = xtr_c.shape
    if d <= n_tr:
        m = xte_c @ np.linalg.solve(xtr_c.T @ xtr_c + alpha * np.eye(d), xtr_c.T)
    else:  # kernel form: X_te X_tr' (X_tr X_tr' + alpha I)^-1
        m = np.linalg.solve(xtr_c @ xtr_c.T + alpha * np.eye(n_tr), xtr_c @ xte_c.T).T
    # Predictions are mean(y_tr) + m @ y_tr (m annihilates constants because X_tr is centred).
    weights: NDArray[np.float64] = m + 1.0 / n_tr
    return weights


def classifier_two_sample_test(
    X: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike | None,
    *,
    estimator: Literal["logistic", "ridge"] | Any = "logistic",
    n_splits: int = 5,
    n_perm: int = 200,
    scheme: Scheme = "within_group",
    C: float = 1.0,
    ridge_alpha: float = 1.0,
    seed: SeedLike = 0,
) -> ClassifierTestResult:
    """Global two-sample test: can a classifier tell the models' outputs apart on held-out prompts?

    The classifier is cross-validated with GroupKFold over prompts, so no prompt has outputs on
    both sides of a split. The statistic is the out-of-fold AUC (scores of all folds pooled). The
    p-value re-runs the same cross-validation (same folds) with the labels permuted within prompts
    and counts permutations whose AUC reaches the observed one (one-sided: ``(b + 1)/(n_perm + 1)``).
    Any classifier gives a valid test; a better one gives more power.

    Estimators:

    * ``"logistic"`` (default): features standardised within each training fold, then an L2
      logistic regression with scikit-learn's ``LogisticRegression(C=C)`` objective, fitted for all
      permutations of a fold at once (:mod:`lmdiff.stats._logistic`), so ``n_perm=200`` costs
      seconds, not minutes.
    * ``"ridge"``: a ridge regression of the 0/1 label on standardised features (a linear
      probability model). Its out-of-fold predictions are linear in the labels, so all permutations
      cost one matrix product: use it for large ``n_perm`` or many features.
    * any scikit-learn classifier (cloned for every fit, ``n_splits * (n_perm + 1)`` fits; scores
      from ``decision_function`` or ``predict_proba``).

    Args:
        X: features, one row per output (e.g. sentence embeddings); rows with NaN are excluded.
        labels: booleans or 0/1; True/1 = model B.
        groups: one prompt id per row, or None (rows independent; folds are then plain K-fold).
        estimator: ``"logistic"``, ``"ridge"`` or a scikit-learn estimator.
        n_splits: the number of folds (capped at the number of groups).
        n_perm: the number of permutations; the runtime grows linearly with it.
        scheme: ``"within_group"`` or ``"whole_group"`` label permutation.
        C: inverse regularisation of the default logistic regression.
        ridge_alpha: the ridge penalty of ``estimator="ridge"``.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        A :class:`ClassifierTestResult`.

    Raises:
        ValueError: on fewer than two groups, a missing class, or bad parameters.
    """
    check_scheme(scheme)
    check_positive_int(n_splits, "n_splits", minimum=2)
    check_positive_int(n_perm, "n_perm", minimum=0)
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"X must be two-dimensional, got shape {x.shape}")
    keep = np.asarray(~np.isnan(x).any(axis=1), dtype=bool)
    lab, codes, perm_codes = _prepare_design(labels, groups, x.shape[0], keep, scheme)
    x = x[keep]
    folds = _group_folds(codes, n_splits)
    rng = make_rng(seed)

    oof_batch, threshold, name = _make_oof_batch(x, folds, estimator, C, ridge_alpha)
    scores = oof_batch(lab[:, None])[:, 0]
    observed = float(_auc_matrix(scores[:, None], lab[:, None])[0])
    pvalue = math.nan
    if n_perm > 0:
        null = _permutation_aucs(lab, perm_codes, scheme, n_perm, rng, oof_batch)
        pvalue = monte_carlo_pvalue(null, observed, "greater")
    return ClassifierTestResult(
        auc=observed,
        accuracy=_accuracy(scores, lab, threshold),
        pvalue=pvalue,
        n=int(lab.size),
        n_pos=int(lab.sum()),
        n_neg=int((~lab).sum()),
        n_excluded=int((~keep).sum()),
        n_groups=int(np.unique(codes).size),
        n_splits=len(folds),
        n_perm=n_perm,
        scheme=scheme,
        estimator=name,
        n_features=float(x.shape[1]),
        seed=seed_record(seed),
    )


def _standardised_folds(
    x: NDArray[np.float64], folds: Sequence[tuple[NDArray[np.int64], NDArray[np.int64]]]
) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Standardise each fold with its training mean and SD (label-free, so done once, not per fit)."""
    out = []
    for tr, te in folds:
        mu = x[tr].mean(axis=0)
        sd = x[tr].std(axis=0)
        sd[sd == 0] = 1.0
        out.append(((x[tr] - mu) / sd, (x[te] - mu) / sd))
    return out


def _make_oof_batch(
    x: NDArray[np.float64],
    folds: Sequence[tuple[NDArray[np.int64], NDArray[np.int64]]],
    estimator: Any,
    C: float,
    ridge_alpha: float,
) -> tuple[Callable[[NDArray[np.bool_]], NDArray[np.float64]], float, str]:
    """Return ``(oof_batch, threshold, name)``; ``oof_batch``: labels (items x k) -> out-of-fold scores."""
    if isinstance(estimator, str):
        if estimator not in ("logistic", "ridge"):
            raise ValueError(f"estimator must be 'logistic', 'ridge' or a scikit-learn estimator, got {estimator!r}")
        prepared = _standardised_folds(x, folds)
        if estimator == "ridge":
            ops = [_ridge_operator(xtr, xte, ridge_alpha) for xtr, xte in prepared]

            def oof_ridge(y: NDArray[np.bool_]) -> NDArray[np.float64]:
                out = np.empty(y.shape, dtype=np.float64)
                yf = y.astype(np.float64)
                for (tr, te), m in zip(folds, ops, strict=True):
                    out[te] = m @ yf[tr]
                return out

            return oof_ridge, 0.5, f"ridge(alpha={ridge_alpha})"

        def oof_logistic(y: NDArray[np.bool_]) -> NDArray[np.float64]:
            out = np.empty(y.shape, dtype=np.float64)
            yf = y.astype(np.float64)
            for (tr, te), (xtr, xte) in zip(folds, prepared, strict=True):
                out[te] = logistic_scores(xte, fit_logistic_many(xtr, yf[tr], C))
            return out

        return oof_logistic, 0.0, f"logistic(C={C})"

    from sklearn.base import clone

    def oof_generic(y: NDArray[np.bool_]) -> NDArray[np.float64]:
        out = np.empty(y.shape, dtype=np.float64)
        for j in range(y.shape[1]):
            for tr, te in folds:
                model = clone(estimator)
                model.fit(x[tr], y[tr, j].astype(int))
                out[te, j] = _decision_scores(model, x[te])
        return out

    return oof_generic, _estimator_threshold(estimator), type(estimator).__name__


# ------------------------------------------------------------------------------------ bag of words


def bag_of_words_baseline(
    texts: Sequence[str | None],
    labels: ArrayLike,
    groups: ArrayLike | None,
    *,
    vectorizer: Literal["tfidf", "count"] = "tfidf",
    ngram_range: tuple[int, int] = (1, 2),
    min_df: int = 2,
    lowercase: bool = True,
    n_splits: int = 5,
    C: float = 1.0,
    n_perm: int = 0,
    scheme: Scheme = "within_group",
    seed: SeedLike = 0,
) -> BagOfWordsResult:
    """The bag-of-words baseline: n-gram logistic regression, cross-validated by prompt.

    Within each GroupKFold training fold a vectorizer (unigrams and bigrams by default, TF-IDF or
    raw counts) is fitted on the training texts only, then a logistic regression (liblinear: fast
    and single-threaded on sparse n-gram features; it also penalises the intercept); the out-of-fold
    AUC and accuracy (ties counted 1/2) are reported with the real n. Reports show this number
    beside every hypothesis: a hypothesis that tells the models apart no better than surface
    n-grams adds little.

    Args:
        texts: one text per output; ``None`` items are excluded and counted in ``n_excluded``.
        labels: booleans or 0/1; True/1 = model B.
        groups: one prompt id per text, or None.
        vectorizer: ``"tfidf"`` (default) or ``"count"``.
        ngram_range: the n-gram orders, e.g. ``(1, 2)`` for unigrams and bigrams.
        min_df: minimum number of training documents an n-gram must occur in.
        lowercase: whether to lowercase before tokenising (uses :func:`lmdiff.stats.tokenize`).
        n_splits: the number of folds (capped at the number of groups).
        C: inverse regularisation of the logistic regression.
        n_perm: permutations for a p-value (0 = no p-value; each costs ``n_splits`` fits).
        scheme: the permutation scheme.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        A :class:`BagOfWordsResult`.
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    check_scheme(scheme)
    check_positive_int(n_splits, "n_splits", minimum=2)
    check_positive_int(n_perm, "n_perm", minimum=0)
    check_positive_int(min_df, "min_df")
    if vectorizer not in ("tfidf", "count"):
        raise ValueError(f"vectorizer must be 'tfidf' or 'count', got {vectorizer!r}")
    docs = list(texts)
    keep = np.array([isinstance(t, str) for t in docs], dtype=bool)
    lab, codes, perm_codes = _prepare_design(labels, groups, len(docs), keep, scheme)
    kept_docs = np.array([t for t, k in zip(docs, keep, strict=True) if k], dtype=object)
    folds = _group_folds(codes, n_splits)

    vec_cls = TfidfVectorizer if vectorizer == "tfidf" else CountVectorizer
    prepared: list[tuple[sparse.csr_matrix, sparse.csr_matrix]] = []
    for tr, te in folds:
        vec = vec_cls(
            tokenizer=partial(tokenize, lowercase=False),
            token_pattern=None,
            lowercase=lowercase,
            ngram_range=ngram_range,
            min_df=min(min_df, len(tr)),
        )
        prepared.append((vec.fit_transform(kept_docs[tr]), vec.transform(kept_docs[te])))

    def fit_score(f: int, y_tr: NDArray[np.float64]) -> NDArray[np.float64]:
        xtr, xte = prepared[f]
        if y_tr.min() == y_tr.max():
            return np.zeros(xte.shape[0])
        model = LogisticRegression(C=C, solver="liblinear", max_iter=1000)
        model.fit(xtr, y_tr.astype(int))
        decision: NDArray[np.float64] = model.decision_function(xte)
        return decision

    scores = _oof_scores(folds, lab.astype(np.float64), fit_score)
    observed = float(_auc_matrix(scores[:, None], lab[:, None])[0])
    pvalue = math.nan
    if n_perm > 0:

        def oof_batch(y: NDArray[np.bool_]) -> NDArray[np.float64]:
            return np.column_stack(
                [_oof_scores(folds, y[:, j].astype(np.float64), fit_score) for j in range(y.shape[1])]
            )

        null = _permutation_aucs(lab, perm_codes, scheme, n_perm, make_rng(seed), oof_batch)
        pvalue = monte_carlo_pvalue(null, observed, "greater")
    return BagOfWordsResult(
        auc=observed,
        accuracy=_accuracy(scores, lab, 0.0),
        pvalue=pvalue,
        n=int(lab.size),
        n_pos=int(lab.sum()),
        n_neg=int((~lab).sum()),
        n_excluded=int((~keep).sum()),
        n_groups=int(np.unique(codes).size),
        n_splits=len(folds),
        n_perm=n_perm,
        scheme=scheme,
        estimator=f"{vectorizer}{ngram_range}+logistic(C={C})",
        n_features=float(np.mean([xtr.shape[1] for xtr, _ in prepared])),
        seed=seed_record(seed),
        vectorizer=vectorizer,
        ngram_range=ngram_range,
        min_df=min_df,
    )


# ------------------------------------------------------------------------------------------- MMD


@dataclasses.dataclass(frozen=True)
class MmdResult(StatsResult):
    """A kernel two-sample test.

    Attributes:
        mmd2: the unbiased estimate of MMD^2 (can be slightly negative under the null).
        pvalue: ``(b + 1) / (n_perm + 1)``, b counting permuted MMD^2 >= observed.
        kernel: ``"rbf"`` or ``"linear"``.
        bandwidth: the RBF bandwidth sigma (``k = exp(-|x-y|^2 / (2 sigma^2))``); NaN for linear.
        n: the number of items used (rows with NaN excluded).
        n_a: A items used.
        n_b: B items used.
        n_excluded: rows excluded for NaN.
        n_groups: the number of groups.
        n_perm: the number of permutations.
        scheme: the permutation scheme.
        seed: the int seed, or None.
    """

    mmd2: float
    pvalue: float
    kernel: str
    bandwidth: float
    n: int
    n_a: int
    n_b: int
    n_excluded: int
    n_groups: int
    n_perm: int
    scheme: str
    seed: int | None


def _squared_distances(x: NDArray[np.float64]) -> NDArray[np.float64]:
    sq = np.einsum("ij,ij->i", x, x)
    d2: NDArray[np.float64] = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def _median_bandwidth(d2: NDArray[np.float64]) -> float:
    iu = np.triu_indices(d2.shape[0], k=1)
    dist = np.sqrt(d2[iu])
    positive = dist[dist > 0]
    if positive.size == 0:
        return 1.0
    return float(np.median(positive))


def mmd_permutation_test(
    X: ArrayLike,
    Y: ArrayLike | None = None,
    *,
    labels: ArrayLike | None = None,
    groups: ArrayLike | None = None,
    kernel: Literal["rbf", "linear"] = "rbf",
    bandwidth: float | Literal["median"] = "median",
    n_perm: int = 1000,
    scheme: Scheme = "within_group",
    seed: SeedLike = 0,
) -> MmdResult:
    """Unbiased MMD^2 between the two models' outputs with a grouped permutation p-value.

    Call either ``mmd_permutation_test(X_a, X_b, groups=...)`` (``groups`` then lists the groups of
    the rows of ``X_a`` followed by those of ``X_b``) or ``mmd_permutation_test(X, labels=...,
    groups=...)``. The statistic is Gretton et al.'s (2012) unbiased estimator

    ``MMD^2 = mean_{i != j} k(a_i, a_j) + mean_{i != j} k(b_i, b_j) - 2 mean_{i, j} k(a_i, b_j)``

    with the kernel matrix computed once; each permutation costs one matrix product, so memory and
    time grow with ``n^2`` (a few thousand rows are fine). The RBF bandwidth defaults to the median
    pairwise distance of the pooled sample.

    Args:
        X: features of model A (with ``Y``) or of all items (with ``labels``).
        Y: features of model B, or None.
        labels: with ``Y=None``, booleans or 0/1 per row of ``X`` (True/1 = model B).
        groups: one group label per row (e.g. prompt ids), or None for independent rows.
        kernel: ``"rbf"`` (default) or ``"linear"``.
        bandwidth: the RBF sigma, or ``"median"``.
        n_perm: the number of permutations.
        scheme: ``"within_group"`` or ``"whole_group"``.
        seed: an int seed, a numpy Generator, or None.

    Returns:
        An :class:`MmdResult`.

    Raises:
        ValueError: on inconsistent inputs, fewer than 2 items per model, or bad parameters.
    """
    check_scheme(scheme)
    check_positive_int(n_perm, "n_perm")
    if kernel not in ("rbf", "linear"):
        raise ValueError(f"kernel must be 'rbf' or 'linear', got {kernel!r}")
    xa = np.asarray(X, dtype=np.float64)
    if xa.ndim == 1:
        xa = xa[:, None]
    if Y is not None:
        if labels is not None:
            raise ValueError("give either Y or labels, not both")
        yb = np.asarray(Y, dtype=np.float64)
        if yb.ndim == 1:
            yb = yb[:, None]
        if yb.shape[1] != xa.shape[1]:
            raise ValueError(f"X has {xa.shape[1]} features but Y has {yb.shape[1]}")
        data = np.vstack([xa, yb])
        lab_all = np.concatenate([np.zeros(xa.shape[0], bool), np.ones(yb.shape[0], bool)])
    else:
        if labels is None:
            raise ValueError("give Y or labels")
        data = xa
        lab_all = as_binary_labels(labels)
    if data.ndim != 2:
        raise ValueError(f"features must be two-dimensional, got shape {data.shape}")
    keep = np.asarray(~np.isnan(data).any(axis=1), dtype=bool)
    lab, codes, perm_codes = _prepare_design(lab_all, groups, data.shape[0], keep, scheme)
    data = data[keep]
    n_b = int(lab.sum())
    n_a = int(lab.size - n_b)
    if n_a < 2 or n_b < 2:
        raise ValueError(f"MMD needs at least 2 items per model; got n_a={n_a}, n_b={n_b}")

    if kernel == "rbf":
        d2 = _squared_distances(data)
        sigma = _median_bandwidth(d2) if bandwidth == "median" else float(bandwidth)
        if not sigma > 0:
            raise ValueError(f"bandwidth must be positive, got {sigma}")
        k0 = np.exp(-d2 / (2.0 * sigma * sigma))
    else:
        sigma = math.nan
        k0 = data @ data.T
    np.fill_diagonal(k0, 0.0)
    row = k0.sum(axis=1)
    total = float(row.sum())

    def mmd2(labels_rows: NDArray[np.float64]) -> NDArray[np.float64]:
        quad = np.einsum("ij,ij->i", labels_rows @ k0, labels_rows)  # sum over B pairs
        lin = labels_rows @ row
        nb = labels_rows.sum(axis=1)
        na = labels_rows.shape[1] - nb
        s_bb = quad
        s_aa = total - 2.0 * lin + quad
        s_ab = lin - quad
        value: NDArray[np.float64] = s_aa / (na * (na - 1)) + s_bb / (nb * (nb - 1)) - 2.0 * s_ab / (na * nb)
        return value

    observed = float(mmd2(lab[None, :].astype(np.float64))[0])
    layout = GroupLayout.from_codes(perm_codes)
    lab_sorted = lab[layout.order]
    if scheme == "whole_group":
        check_balanced(lab_sorted, layout)
    rng = make_rng(seed)
    parts = []
    for batch in permuted_labels(lab_sorted, layout, scheme, n_perm, rng):
        perm = np.empty(batch.shape, dtype=np.float64)
        perm[:, layout.order] = batch
        parts.append(mmd2(perm))
    null = np.concatenate(parts)
    return MmdResult(
        mmd2=observed,
        pvalue=monte_carlo_pvalue(null, observed, "greater"),
        kernel=kernel,
        bandwidth=sigma,
        n=int(lab.size),
        n_a=n_a,
        n_b=n_b,
        n_excluded=int((~keep).sum()),
        n_groups=int(np.unique(codes).size),
        n_perm=n_perm,
        scheme=scheme,
        seed=seed_record(seed),
    )
