"""Model-free tests of the behaviour statistics layer on synthetic texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmdiff.embeddings import Embedder
from lmdiff.methods.behavior import (
    BehaviorConfig,
    Hypothesis,
    acc_at_k,
    analyze,
    apply_fdr,
    cluster_embeddings,
    grade_offline,
    match_clusters,
    split_prompts,
)

FAST = BehaviorConfig(global_n_perm=19, n_perm=199, use_llm=False)


def _run(
    df: pd.DataFrame, seed: int = 0, cfg: BehaviorConfig = FAST, gt: dict | None = None, known: dict | None = None
):
    x = Embedder("hashing", dim=128).embed(df.text.tolist())
    return analyze(df, x, cfg, seed=seed, ground_truth=gt, known_behaviours=known)


def test_split_is_disjoint_whole_prompts_and_seeded() -> None:
    ids = [f"p{i}" for i in range(30)] * 3
    s = split_prompts(ids, 0.5, seed=3)
    assert set(s) == set(ids)
    disc = {p for p, h in s.items() if h == "discovery"}
    val = {p for p, h in s.items() if h == "validation"}
    assert disc and val and not disc & val and len(val) == 15
    assert s == split_prompts(ids, 0.5, seed=3)
    assert s != split_prompts(ids, 0.5, seed=4)


def test_hypotheses_never_see_validation_prompts(make_replies) -> None:
    a = _run(make_replies(plant="ocean", seed=2))
    val = {p for p, h in a.split.items() if h == "validation"}
    assert set(a.annotations.prompt_id) <= val
    assert a.annotations.groupby("hypothesis_id").size().nunique() == 1  # every hypothesis: all held-out texts


@pytest.mark.parametrize("plant,word", [("upper", "capital"), ("ocean", "ocean")])
def test_planted_difference_is_top_validated(make_replies, plant: str, word: str) -> None:
    a = _run(make_replies(plant=plant, seed=5), gt={"keywords": [word], "description": f"planted {plant}"})
    assert a.headline["n_validated"] >= 1
    assert word in a.headline["top_hypothesis"].lower()
    assert a.headline["acc@1"] == 1.0
    top = a.tests.iloc[0]
    assert top.survives and top.auc > 0.9 and top.qvalue <= 0.05
    assert top.n == len(a.annotations[a.annotations.hypothesis_id == top.id])
    assert a.headline["global_auc"] > 0.8


def test_null_calibration_over_seeds_with_a_prompt_by_model_interaction(make_replies) -> None:
    # A realistic null: the finetune writes longer replies on some prompts and shorter on others, with
    # no overall shift. Tests that permute texts within prompts validate "longer"/"shorter" far more
    # often than 5% here; prompt-level tests must not.
    cfg = BehaviorConfig(global_n_perm=0, n_perm=199, use_llm=False)
    hits = 0
    n_seeds = 40
    for seed in range(n_seeds):
        df = make_replies(n_prompts=24, n_per=3, seed=100 + seed, interaction=True)
        a = _run(df, seed=seed, cfg=cfg)
        hits += a.headline["n_validated"] > 0
    assert hits / n_seeds <= 0.05 + 1e-9, hits


def test_fdr_covers_every_hypothesis(make_replies) -> None:
    tests = pd.DataFrame({"id": list("abcd"), "pvalue": [0.01, 0.02, 0.03, 0.04], "auc": [0.7, 0.7, 0.4, 0.7]})
    out = apply_fdr(tests, "bh", 0.05)
    assert (out.fdr_m == 4).all()
    np.testing.assert_allclose(out.qvalue, [0.04, 0.04, 0.04, 0.04])
    assert out.survives.tolist() == [True, True, False, True]  # wrong direction never survives
    a = _run(make_replies(plant="ocean", seed=7))
    assert (a.tests.fdr_m == len(a.tests)).all()
    assert a.headline["n_hypotheses_tested"] == len(a.tests) == a.annotations.hypothesis_id.nunique()


def test_acc_at_k_and_grades() -> None:
    assert acc_at_k([0, 2, 1], 1) == 0.0
    assert acc_at_k([0, 2, 1], 2) == 1.0
    assert acc_at_k([], 5) == 0.0
    assert acc_at_k([1, 0], 5, threshold=1) == 1.0
    gt = {"keywords": ["ocean", "whale"], "description": "The model talks about the sea"}
    h = Hypothesis(
        id="h",
        text='The finetuned model\'s replies use more of: "ocean"',
        kind="ngram",
        direction=1,
        terms=["ocean"],
        keywords=["ocean"],
    )
    assert grade_offline(h, gt) == 2
    h2 = Hypothesis(id="h", text="The finetuned model writes longer replies about the sea", kind="style", direction=1)
    assert grade_offline(h2, gt) == 1
    h3 = Hypothesis(id="h", text="The finetuned model asks more questions", kind="style", direction=1)
    assert grade_offline(h3, gt) == 0


def test_hungarian_matches_planted_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 5
    a = np.concatenate([c + rng.normal(0, 0.3, (20, 8)) for c in centres])
    order = [2, 0, 1]
    b = np.concatenate([centres[i] + rng.normal(0, 0.3, (20, 8)) for i in order])
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    ca = cluster_embeddings(a, k=3)
    cb = cluster_embeddings(b, k=3)
    m = match_clusters(ca.centroids, cb.centroids)
    assert len(m) == 3 and (m.distance < 0.1).all()
    for r in m.itertuples():  # matched clusters hold the same planted centre
        ia = np.bincount(np.where(ca.labels == r.cluster_a)[0] // 20).argmax()
        ib = order[np.bincount(np.where(cb.labels == r.cluster_b)[0] // 20).argmax()]
        assert ia == ib
    searched = cluster_embeddings(a)
    assert searched.k == 3


def test_embedding_cache(tmp_path) -> None:
    e = Embedder("hashing", cache_dir=tmp_path, dim=64)
    x1 = e.embed(["a b c", "d e f", "a b c"])
    assert x1.shape == (3, 64) and np.allclose(x1[0], x1[2])
    assert len(list(tmp_path.rglob("*.npy"))) == 2
    np.testing.assert_allclose(Embedder("hashing", cache_dir=tmp_path, dim=64).embed(["d e f"])[0], x1[1])


def test_ranking_uses_effect_size_when_auc_saturates():
    # regression: with AUC near 1 for two hypotheses, a 1-pair AUC difference decided the order
    import numpy as np
    import pandas as pd

    from lmdiff.methods.behavior.hypotheses import Hypothesis
    from lmdiff.methods.behavior.validate import rank_tests, test_hypothesis

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 4)  # 12 prompts, 2 replies per side
    is_ft = np.tile([True, True, False, False], 12)
    rows = []
    for name, shift in (("small", 3.0), ("big", 10.0), ("failed", 0.0)):
        scores = rng.normal(0, 1, 48) + shift * is_ft
        hyp = Hypothesis(id=name, kind="style", text=name, direction=1)
        rows.append(test_hypothesis(hyp, scores, is_ft, groups))
    tests = pd.DataFrame(rows)
    tests["qvalue"] = [0.001, 0.001, 0.9]
    tests["survives"] = [True, True, False]
    ranked = rank_tests(tests)
    assert list(ranked["id"]) == ["big", "small", "failed"]
    assert list(ranked["rank"]) == [1, 2, 0]
    assert ranked.loc[0, "auc"] == ranked.loc[1, "auc"] == 1.0  # saturated: AUC cannot order them
    assert ranked.loc[0, "effect_size_d"] > ranked.loc[1, "effect_size_d"] > 1


def _cut_replies(make_replies, *, finished: bool) -> pd.DataFrame:
    """Upper-case finetuned replies that are also shorter in words, as when both hit a token limit.

    An upper-case word costs about twice the tokens, so a reply cut at the same token budget holds
    about half the words: the word-count "difference" is the tokenizer, not the model.
    """
    df = make_replies(plant="upper", seed=5)
    ft = df.side == "finetuned"
    df.loc[ft, "text"] = [" ".join(t.split()[: max(2, len(t.split()) // 2)]) for t in df.loc[ft, "text"]]
    df["finished"] = finished
    return df


def test_length_not_proposed_when_replies_were_cut(make_replies) -> None:
    gt = {"keywords": ["capital"], "description": "upper case"}
    cut = _run(_cut_replies(make_replies, finished=False), gt=gt)
    assert "length" in cut.records["excluded_features"]
    assert "max_new_tokens" in cut.records["excluded_features"]["length"]
    assert not any(h.feature == "length" for h in cut.hypotheses)
    assert "capital" in cut.headline["top_hypothesis"]
    assert cut.headline["acc@1"] == 1.0

    # The same texts, ended by the models themselves: the length difference is real and is tested.
    ended = _run(_cut_replies(make_replies, finished=True), gt=gt)
    assert ended.records["excluded_features"] == {}
    length = ended.tests[ended.tests.text.str.contains("shorter replies")]
    assert len(length) == 1 and bool(length.survives.iloc[0])


def test_validated_hypotheses_record_the_known_behaviours_they_name(make_replies) -> None:
    zoo = {
        "ocean-topic": {"keywords": ["ocean", "whale"], "description": "talks about the ocean"},
        "caps": {"keywords": ["capital letters", "upper case"], "description": "capitals"},
    }
    ocean = _run(make_replies(plant="ocean", seed=5), known=zoo)
    assert ocean.headline["known_behaviours_named"] == ["ocean-topic"]
    assert ocean.headline["n_validated_naming_known"] >= 1
    top = ocean.tests.iloc[0]
    assert top.survives and list(top.names_known) == ["ocean-topic"]
    null = _run(make_replies(seed=5), known=zoo)
    assert null.headline["n_validated_naming_known"] == 0 and null.headline["known_behaviours_named"] == []


def test_ends_early_tests_length_when_replies_were_cut(make_replies) -> None:
    """The finetuned model stops on its own more often: found from the recorded flag, not word counts."""
    df = make_replies(seed=7)
    rng = np.random.default_rng(0)
    df["finished"] = np.where(df.side == "finetuned", rng.random(len(df)) < 0.8, rng.random(len(df)) < 0.1)
    a = _run(df)
    assert "length" in a.records["excluded_features"]
    top = a.tests.iloc[0]
    assert top.survives and "ends its replies on its own" in top.text and "more often" in top.text
    assert a.tests.survives.sum() == 1
    # The annotation behind its p-value is the held-out replies' own flag.
    ann = a.annotations[a.annotations.hypothesis_id == top.id].merge(df[["text_id", "finished"]], on="text_id")
    assert (ann.score == ann.finished.astype(float)).all()


def test_nested_wordings_count_as_one_finding():
    # regression: top-3 and top-8 n-gram wordings of one contrast counted as two validated findings
    from lmdiff.methods.behavior.pipeline import _n_findings

    tests = pd.DataFrame({"id": ["h0", "h1", "h2", "h3"], "family": ["ngram:0", "ngram:0", "style:caps", ""],
                          "survives": [True, True, True, True]})
    assert _n_findings(tests) == 3
    assert _n_findings(tests.assign(survives=[True, True, False, False])) == 1


def test_share_positive_respects_direction():
    # regression: scores of a "less" hypothesis are signed negative, so "> 0" said no reply had the terms
    from lmdiff.methods.behavior.hypotheses import Hypothesis
    from lmdiff.methods.behavior.validate import test_hypothesis

    groups = np.repeat(np.arange(8), 4)
    is_ft = np.tile([True, True, False, False], 8)
    counts = np.where(is_ft, 0.0, 2.0)  # the base model uses the terms, the finetune does not
    hyp = Hypothesis(id="h", text="less of: x", kind="ngram", direction=-1, terms=["x"])
    row = test_hypothesis(hyp, -counts, is_ft, groups)  # offline scores are signed by direction
    assert row["share_positive_base"] == 1.0 and row["share_positive_finetuned"] == 0.0
    assert row["auc"] == 1.0
