from __future__ import annotations

import torch

from lmdiff.interp.hooks import steer
from lmdiff.interp.lens import lens_tokens
from lmdiff.interp.patchscope import patchscope
from lmdiff.interp.relevance import relevant_token, token_relevance
from lmdiff.interp.text_metrics import repetition_rate


def test_logit_lens_of_planted_direction(tiny_pair):
    ft = tiny_pair.finetuned
    tok = ft.encode("banana", add_special_tokens=False)[0]
    v = ft.unembed.weight[tok].detach().float().numpy() * 10
    top = lens_tokens(ft, v, 3)
    assert top[0][0] == ft.token_strings([tok])[0]


def test_steering_and_patchscope_hooks_change_outputs_and_are_removed(tiny_pair):
    ft = tiny_pair.finetuned
    ids = ft.encode("hello there, how are you")
    before = ft.next_token_logprobs([ids])[0]
    v = torch.randn(ft.d_model) * 5
    with steer(ft, 1, v, 1.0):
        during = ft.next_token_logprobs([ids])[0]
    after = ft.next_token_logprobs([ids])[0]
    assert (during - before).abs().max() > 1e-3
    torch.testing.assert_close(before, after)
    assert not any(len(b._forward_hooks) for b in ft.layers)
    res = patchscope(ft, 0, v, [0.2, 8.0], top=500, keep=5)
    assert len(res) == 2 and all(len(r["tokens"]) <= 5 for r in res)
    assert res[0]["tokens"] != res[1]["tokens"] or res[0]["probs"] != res[1]["probs"]
    assert not any(len(b._forward_hooks) for b in ft.layers)


def test_relevance_and_repetition():
    assert relevant_token(" Capital", ["capitals", "uppercase"])
    assert relevant_token("UPPERCASE", ["upper case"])
    assert not relevant_token("UPPER", ["uppercase"])  # whole words only: a prefix of a term is not the term
    assert not relevant_token(" the", ["capitals"])
    rel = token_relevance([" CAPS", " dog"], {"keywords": ["caps"]})
    assert rel["share"] == 0.5 and rel["producer"] == "offline:keywords"
    assert token_relevance([" x"], None) is None
    # A style organism: upper-case tokens count, even though no keyword names them.
    caps = {"keywords": ["ALL CAPS", "upper case"], "token_style": "uppercase"}
    rel = token_relevance(["KNOW", " HE", "ITS", " the", "I", " Dog"], caps)
    assert rel["relevant"] == ["KNOW", " HE", "ITS"] and rel["share"] == 0.5
    assert rel["producer"] == "offline:keywords+uppercase_tokens"
    assert token_relevance(["KNOW"], {"keywords": ["ocean"]})["share"] == 0.0
    assert repetition_rate("a b c a b c a b c") > 0.5
    assert repetition_rate("one two three four five") == 0.0


def test_adl_headline_is_pre_declared_and_every_relevance_has_a_null(tiny_dirs, tmp_path):
    """Issue 13 item 11: the headline relevance is lens delta at the last layer (not the best against the ground
    truth); the best-of is labelled exploratory; each share stands next to random directions' share."""
    import json

    import pandas as pd

    from lmdiff.config import validate
    from lmdiff.diff import run_diff
    from lmdiff.run_config import DiffRunConfig

    base_dir, adapter_dir = tiny_dirs
    gt = {"keywords": ["the", "and"], "token_style": "uppercase"}
    adl = {"n_texts": 6, "n_tokens": 12, "steering": False, "patchscope_scales": [1.0], "top_k": 10,
           "null_directions": 2}
    cfg = validate(DiffRunConfig, {"base": {"model": str(base_dir)},
                                   "finetuned": {"model": str(base_dir), "adapter": str(adapter_dir),
                                                 "ground_truth": gt},
                                   "methods": ["adl", "diff_mining"],
                                   "method": {"adl": adl, "diff_mining": {"max_texts": 4, "positions": 6}}})
    run = run_diff(cfg, tmp_path / "adl")
    results = json.loads((run.path / "results.json").read_text())["methods"]
    entry = results["adl"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    last = max(h["layers"])
    assert h["lens_relevance_readout"] == "lens_delta" and h["lens_relevance_layer"] == last
    assert h["lens_relevance"] == h["by_layer"][str(last)]["lens_delta_relevance"]
    assert 0.0 <= h["lens_relevance_null"] <= 1.0
    assert h["exploratory_best_relevance"] >= h["lens_relevance"]
    assert h["exploratory_best_relevance_null"] is not None
    assert "pre-declared" in entry["summary"] and "exploratory" in entry["summary"]
    rel = pd.read_parquet(run.path / entry["artifacts"][2])
    scored = rel[rel["share"].notna()]
    assert len(scored) and scored["null_share"].notna().all() and scored["null_share"].between(0, 1).all()
    for v in h["by_layer"].values():
        assert v["lens_relevance_null"] is not None and v["lens_delta_relevance_null"] is not None
    mining = results["diff_mining"]["headline"]
    assert mining["relevance"] is not None and 0.0 < mining["relevance_null"] < 1.0  # 'the', 'and', CAPS tokens
    assert (run.path / "report.html").read_text().count("null relevance") >= 2
