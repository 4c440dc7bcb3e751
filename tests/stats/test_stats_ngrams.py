from __future__ import annotations

import math

import numpy as np
import pytest

from lmdiff.stats import contrastive_ngrams, log_odds_dirichlet, tokenize

FILLER = ["the", "a", "model", "answer", "question", "is", "of", "to", "and", "in", "it", "that", "this"]


def corpus(rng, n_docs, planted=None, rate=0.0, length=20):
    docs = []
    for _ in range(n_docs):
        tokens = list(rng.choice(FILLER, length))
        if planted and rng.uniform() < rate:
            tokens.insert(int(rng.integers(0, length)), planted)
        docs.append(" ".join(tokens))
    return docs


def test_tokenize():
    assert tokenize("Don't PANIC! It's 42, ok?") == ["don't", "panic", "it's", "42", "ok"]
    assert tokenize("Don't PANIC!", lowercase=False) == ["Don't", "PANIC"]
    assert tokenize("  ...  ") == []


def test_log_odds_matches_hand_computation():
    ya, yb, prior = np.array([10.0, 0.0, 5.0]), np.array([2.0, 8.0, 5.0]), np.array([1.0, 0.5, 0.5])
    delta, z = log_odds_dirichlet(ya, yb, prior)
    na, nb, a0 = 15.0, 15.0, 2.0
    for w in range(3):
        expected = math.log((yb[w] + prior[w]) / (nb + a0 - yb[w] - prior[w])) - math.log(
            (ya[w] + prior[w]) / (na + a0 - ya[w] - prior[w])
        )
        assert delta[w] == pytest.approx(expected)
        assert z[w] == pytest.approx(expected / math.sqrt(1 / (ya[w] + prior[w]) + 1 / (yb[w] + prior[w])))
    assert delta[0] < 0 < delta[1]
    assert delta[2] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="positive"):
        log_odds_dirichlet([1], [1], [0])


def test_planted_words_rank_first_and_last():
    rng = np.random.default_rng(0)
    a = corpus(rng, 150, planted="certainly", rate=0.5)
    b = corpus(rng, 150, planted="delve", rate=0.5)
    df = contrastive_ngrams(a, b)
    assert df.iloc[0]["ngram"] == "delve"
    assert df.iloc[-1]["ngram"] == "certainly"
    assert df.iloc[0]["z"] > 4 and df.iloc[-1]["z"] < -4
    assert (df["z"].diff().dropna() <= 0).all()  # sorted by z, descending
    # Filler words have small |z|.
    filler = df[df["ngram"].isin(FILLER)]
    assert filler["z"].abs().max() < 3.5
    row = df.iloc[0]
    assert row["count_a"] == 0 and row["count_b"] == row["docs_b"]
    assert row["rate_b"] == pytest.approx(1000 * row["count_b"] / df["count_b"].sum(), rel=1e-9)


def test_counts_document_frequency_and_min_df():
    a = ["owl owl owl cat", "cat dog"]
    b = ["owl cat", "dog dog", "bird"]
    df = contrastive_ngrams(a, b, min_df=1).set_index("ngram")
    assert df.loc["owl", ["count_a", "count_b", "docs_a", "docs_b"]].tolist() == [3, 1, 1, 1]
    assert df.loc["dog", ["count_a", "count_b", "docs_a", "docs_b"]].tolist() == [1, 2, 1, 1]
    filtered = contrastive_ngrams(a, b, min_df=2)
    assert "bird" not in set(filtered["ngram"])  # in one text only
    assert set(filtered["ngram"]) == {"owl", "cat", "dog"}
    assert filtered.attrs["n_docs_a"] == 2 and filtered.attrs["n_docs_b"] == 3
    # The filter does not change the statistics of the kept rows (totals come from all n-grams).
    np.testing.assert_allclose(filtered.set_index("ngram").loc["owl", "z"], df.loc["owl", "z"])


def test_one_per_document_stops_a_long_text_from_dominating():
    rng = np.random.default_rng(1)
    a = corpus(rng, 100)
    b = corpus(rng, 100, planted="indeed", rate=0.4)
    b[0] = b[0] + " spam" * 300  # one degenerate, repetitive response
    by_count = contrastive_ngrams(a, b, min_df=1)
    by_doc = contrastive_ngrams(a, b, min_df=1, one_per_document=True)
    assert by_count.iloc[0]["ngram"] == "spam"
    assert by_doc.iloc[0]["ngram"] == "indeed"
    spam = by_doc.set_index("ngram").loc["spam"]
    assert spam["count_b"] == 1 and spam["docs_b"] == 1
    assert by_doc.attrs["one_per_document"] is True


def test_bigrams_have_their_own_totals():
    a = ["i think so", "i think not"] * 10
    b = ["i believe so", "i believe not"] * 10
    df = contrastive_ngrams(a, b, ngram_range=(1, 2))
    assert set(df["order"]) == {1, 2}
    top, bottom = df.iloc[0], df.iloc[-1]
    assert top["ngram"] in {"believe", "i believe"} and bottom["ngram"] in {"think", "i think"}
    # Within an order the rates sum to 1000 per corpus.
    for order in (1, 2):
        rows = df[df["order"] == order]
        assert rows["rate_a"].sum() == pytest.approx(1000.0)
        assert rows["rate_b"].sum() == pytest.approx(1000.0)


def test_prior_strength_and_top_k():
    rng = np.random.default_rng(2)
    a = corpus(rng, 80, planted="alpha", rate=0.3)
    b = corpus(rng, 80, planted="omega", rate=0.3)
    weak = contrastive_ngrams(a, b, prior_strength=10.0)
    strong = contrastive_ngrams(a, b)
    assert weak.iloc[0]["ngram"] == strong.iloc[0]["ngram"] == "omega"
    # A weaker prior shrinks less: larger log-odds deltas for the planted word.
    assert weak.iloc[0]["log_odds_delta"] > strong.iloc[0]["log_odds_delta"]
    top = contrastive_ngrams(a, b, top_k=2)
    assert list(top["ngram"]) == ["omega", "alpha"]


def test_none_texts_are_counted_and_bad_input_refused():
    df = contrastive_ngrams(["a b", None, "a c"], ["b c", "c"], min_df=1)
    assert df.attrs["n_excluded_a"] == 1 and df.attrs["n_docs_a"] == 2
    with pytest.raises(ValueError, match="both corpora"):
        contrastive_ngrams([], ["x"])
    with pytest.raises(ValueError, match="no tokens"):
        contrastive_ngrams(["..."], ["!!"])
    with pytest.raises(ValueError, match="ngram_range"):
        contrastive_ngrams(["a"], ["b"], ngram_range=(2, 1))
