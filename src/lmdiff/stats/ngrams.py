"""Contrastive n-gram statistics: which words and phrases one model uses more than the other.

The statistic is the weighted log-odds ratio with an informative Dirichlet prior of Monroe,
Colaresi & Quinn (2008, "Fightin' words", section 3.5): for an n-gram w with counts ``y_a`` and
``y_b`` among ``N_a`` and ``N_b`` n-grams of the same order,

``delta_w = log((y_b + a_w) / (N_b + a0 - y_b - a_w)) - log((y_a + a_w) / (N_a + a0 - y_a - a_w))``

``z_w = delta_w / sqrt(1 / (y_a + a_w) + 1 / (y_b + a_w))``

with prior pseudo-counts ``a_w = a0 * (y_a + y_b) / (N_a + N_b)`` (the pooled corpus as the prior,
as in the ``tidylo`` R package when ``a0 = N_a + N_b``, the default). The prior shrinks rare
n-grams toward "no difference", so a word seen three times in one corpus and never in the other
does not top the list. Positive ``delta``/``z`` = more frequent in corpus B.

The z-scores treat n-gram occurrences as independent multinomial draws; they rank features, they
are not p-values for texts grouped by prompt. For an inferential claim about one feature use
:func:`lmdiff.stats.proportion_shift` with the prompt as unit. ``one_per_document=True`` counts an
n-gram at most once per text, so one long or repetitive response cannot dominate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = ["contrastive_ngrams", "log_odds_dirichlet", "tokenize"]

_TOKEN = re.compile(r"\w+(?:['’]\w+)*")


def _word_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into word tokens (letters, digits and inner apostrophes), lowercased by default.

    Punctuation and whitespace are dropped: ``"Don't PANIC!"`` -> ``["don't", "panic"]``.

    Args:
        text: the text.
        lowercase: whether to lowercase the tokens.

    Returns:
        The list of tokens in order.
    """
    return _word_tokens(text.lower() if lowercase else text)


def log_odds_dirichlet(
    counts_a: ArrayLike,
    counts_b: ArrayLike,
    prior: ArrayLike,
    total_a: float | None = None,
    total_b: float | None = None,
    prior_total: float | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return Monroe et al.'s log-odds difference (B minus A) and its z-score from raw counts.

    Args:
        counts_a: count of each feature in corpus A.
        counts_b: count of each feature in corpus B.
        prior: Dirichlet pseudo-count ``a_w`` of each feature (all > 0).
        total_a: total count in A (default: ``sum(counts_a)``); give it when the arrays hold only a
            subset of the vocabulary.
        total_b: total count in B (default: ``sum(counts_b)``).
        prior_total: ``a0``, the sum of the prior over the whole vocabulary (default: ``sum(prior)``).

    Returns:
        ``(delta, z)`` arrays.

    Raises:
        ValueError: on mismatched shapes or non-positive prior values.
    """
    ya = np.asarray(counts_a, dtype=np.float64)
    yb = np.asarray(counts_b, dtype=np.float64)
    a = np.asarray(prior, dtype=np.float64)
    if not (ya.shape == yb.shape == a.shape):
        raise ValueError(f"shapes differ: {ya.shape}, {yb.shape}, {a.shape}")
    if (a <= 0).any():
        raise ValueError("prior pseudo-counts must be positive")
    na = float(ya.sum()) if total_a is None else float(total_a)
    nb = float(yb.sum()) if total_b is None else float(total_b)
    a0 = float(a.sum()) if prior_total is None else float(prior_total)
    delta = np.log((yb + a) / (nb + a0 - yb - a)) - np.log((ya + a) / (na + a0 - ya - a))
    z = delta / np.sqrt(1.0 / (ya + a) + 1.0 / (yb + a))
    return delta, z


def contrastive_ngrams(
    texts_a: Sequence[str],
    texts_b: Sequence[str],
    *,
    ngram_range: tuple[int, int] = (1, 1),
    min_df: int = 2,
    one_per_document: bool = False,
    prior_strength: float | None = None,
    lowercase: bool = True,
    top_k: int | None = None,
) -> pd.DataFrame:
    """Rank the n-grams that distinguish corpus B from corpus A by weighted log-odds z-score.

    Args:
        texts_a: the texts of model A (e.g. the base). ``None`` entries are skipped and counted in
            ``df.attrs["n_excluded_a"]``.
        texts_b: the texts of model B (e.g. the finetune).
        ngram_range: the n-gram orders, e.g. ``(1, 2)`` for unigrams and bigrams. Each order has its
            own totals and prior, so bigram rates are not diluted by unigram counts.
        min_df: keep n-grams that occur in at least this many texts (A and B together).
        one_per_document: count each n-gram at most once per text (document frequency), so one
            long or repetitive text cannot dominate.
        prior_strength: ``a0``, the total prior pseudo-count per order; default ``N_a + N_b`` (the
            pooled counts themselves are the prior). Smaller values shrink less.
        lowercase: whether to lowercase before tokenising.
        top_k: keep only the ``top_k`` rows with the largest ``|z|`` (still sorted by ``z``).

    Returns:
        A DataFrame sorted by ``z`` descending (most B-typical first), with columns ``ngram``,
        ``order``, ``count_a``, ``count_b``, ``docs_a``, ``docs_b`` (texts containing it),
        ``rate_a``, ``rate_b`` (per 1,000 n-grams of the same order), ``log_odds_delta`` and
        ``z``. ``df.attrs`` records ``n_docs_a``, ``n_docs_b``, ``n_excluded_a``, ``n_excluded_b``,
        ``min_df``, ``one_per_document`` and ``prior_strength``.

    Raises:
        ValueError: if a corpus has no text or no tokens, or on bad parameters.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    lo, hi = ngram_range
    if not (1 <= lo <= hi):
        raise ValueError(f"ngram_range must satisfy 1 <= low <= high, got {ngram_range}")
    if min_df < 1:
        raise ValueError(f"min_df must be >= 1, got {min_df}")
    if prior_strength is not None and not prior_strength > 0:
        raise ValueError(f"prior_strength must be positive, got {prior_strength}")
    docs_a = [t for t in texts_a if t is not None]
    docs_b = [t for t in texts_b if t is not None]
    if not docs_a or not docs_b:
        raise ValueError(f"both corpora need texts; got {len(docs_a)} and {len(docs_b)}")
    vec = CountVectorizer(
        tokenizer=_word_tokens,
        token_pattern=None,
        lowercase=lowercase,
        ngram_range=ngram_range,
        binary=one_per_document,
    )
    try:
        counts = vec.fit_transform(docs_a + docs_b).tocsc()
    except ValueError as err:  # empty vocabulary
        raise ValueError("the texts contain no tokens") from err
    vocab = vec.get_feature_names_out()
    na_docs = len(docs_a)
    part_a, part_b = counts[:na_docs], counts[na_docs:]
    ya = np.asarray(part_a.sum(axis=0)).ravel().astype(np.float64)
    yb = np.asarray(part_b.sum(axis=0)).ravel().astype(np.float64)
    da = np.diff((part_a > 0).tocsc().indptr)
    db = np.diff((part_b > 0).tocsc().indptr)
    order = np.char.count(vocab.astype(str), " ") + 1

    delta = np.full(vocab.size, np.nan)
    z = np.full(vocab.size, np.nan)
    rate_a = np.full(vocab.size, np.nan)
    rate_b = np.full(vocab.size, np.nan)
    for k in range(lo, hi + 1):
        sel = order == k
        if not sel.any():
            continue
        tot_a, tot_b = ya[sel].sum(), yb[sel].sum()
        if tot_a == 0 or tot_b == 0:
            raise ValueError(f"one corpus has no {k}-grams; cannot compare their rates")
        a0 = (tot_a + tot_b) if prior_strength is None else float(prior_strength)
        prior = a0 * (ya[sel] + yb[sel]) / (tot_a + tot_b)
        delta[sel], z[sel] = log_odds_dirichlet(ya[sel], yb[sel], prior, tot_a, tot_b, a0)
        rate_a[sel] = 1000.0 * ya[sel] / tot_a
        rate_b[sel] = 1000.0 * yb[sel] / tot_b

    keep = (da + db) >= min_df
    df = pd.DataFrame(
        {
            "ngram": vocab[keep].astype(str),
            "order": order[keep].astype(np.int64),
            "count_a": ya[keep].astype(np.int64),
            "count_b": yb[keep].astype(np.int64),
            "docs_a": da[keep].astype(np.int64),
            "docs_b": db[keep].astype(np.int64),
            "rate_a": rate_a[keep],
            "rate_b": rate_b[keep],
            "log_odds_delta": delta[keep],
            "z": z[keep],
        }
    )
    if top_k is not None:
        df = df.loc[df["z"].abs().nlargest(top_k).index]
    df = df.sort_values(["z", "ngram"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    df.attrs.update(
        {
            "n_docs_a": na_docs,
            "n_docs_b": len(docs_b),
            "n_excluded_a": len(texts_a) - na_docs,
            "n_excluded_b": len(texts_b) - len(docs_b),
            "min_df": min_df,
            "one_per_document": one_per_document,
            "prior_strength": prior_strength,
        }
    )
    return df
