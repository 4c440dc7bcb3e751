"""pca, sae_diff and crosscoder end to end through run_diff on the tiny LoRA pair and a self pair."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.methods.followup import SIGNAL_KEYS
from lmdiff.run_config import DiffRunConfig

TRAIN = {"n_latents": 64, "k": 4, "train_tokens": 4096, "batch_size": 256, "checkpoint_every": 4,
         "buffer_tokens": 2048, "dead_tokens": 2048}
COMMON = {"corpus": "generic", "n_texts": 24, "n_tokens": 48, "layer": 1, "n_units": 3, "n_examples": 3,
          "top_k": 5, "steering_prompts": 1, "steering_samples": 1, "steering_search_steps": 1, "max_new_tokens": 6}
SMALL = {
    "pca": {**COMMON, "n_components": 8},
    "sae_diff": {**COMMON, "steering": False, "train": TRAIN},
    "crosscoder": {**COMMON, "steering": False, "train": TRAIN, "scaling_latents": 16},
}


def _run(tiny_dirs, out, ft_adapter=True, methods=None, settings=None):
    base_dir, adapter_dir = tiny_dirs
    ft = {"model": str(base_dir), "adapter": str(adapter_dir)} if ft_adapter else {"model": str(base_dir)}
    ft["ground_truth"] = {"keywords": ["the", "and", "water"]}
    methods = methods or list(SMALL)
    cfg = validate(DiffRunConfig, {"base": {"model": str(base_dir)}, "finetuned": ft, "methods": methods,
                                   "method": settings or {m: SMALL[m] for m in methods}})
    run = run_diff(cfg, out)
    return json.loads((run.path / "results.json").read_text())["methods"], run


def test_dictionary_methods_end_to_end(tiny_dirs, tmp_path):
    res, run = _run(tiny_dirs, tmp_path / "run")
    for m in SMALL:
        assert res[m]["status"] == "ok", res[m]
        assert "; its top example: \"" in res[m]["summary"] and "[[" in res[m]["summary"], res[m]["summary"]
        h = res[m]["headline"]
        assert isinstance(h[SIGNAL_KEYS[m]], list) and h[SIGNAL_KEYS[m]], (m, h)
        assert h["lens_relevance"] is not None and 0 <= h["lens_relevance_null"] <= 1
        assert h["example_relevance"] is not None and h["example_relevance_null"] is not None
    # one store for the three methods (same corpus, tokens, layer)
    assert len(list((run.path / "activations").glob("store-*"))) == 1
    pca = res["pca"]["headline"]
    assert pca["writer_prompts"] is None  # the generic corpus does not pair replies: no contrast
    assert res["sae_diff"]["headline"]["ranked_by"] == "variance"
    assert abs(sum(pca["explained"]) - 1) < 1 and pca["explained"] == sorted(pca["explained"], reverse=True)
    units = json.loads((run.path / "artifacts" / "pca" / "units.json").read_text())
    assert units[0]["examples"] and units[0]["bottom_examples"] and "[[" in units[0]["examples"][0]["context"]
    assert units[0]["examples"][0]["value"] >= units[0]["examples"][-1]["value"]
    steering = json.loads((run.path / "artifacts" / "pca" / "steering.json").read_text())
    assert steering["samples"] and steering["search"]
    sae = res["sae_diff"]["headline"]
    assert sae["source"] == "trained" and 0 < sae["l0"] <= 4 * 4 and sae["alive"] > 0
    shares = sae["top_variance_share"]
    assert shares == sorted(shares, reverse=True) and 0 < shares[0] < 1.5
    cc = res["crosscoder"]["headline"]
    assert sum(cc["tag_counts"].values()) == 64 and sum(cc["control_tag_counts"].values()) == 64
    assert cc["finetuned_only_excess"] == cc["finetuned_only"] - cc["finetuned_only_control"]
    lat = pd.read_parquet(run.path / "artifacts" / "crosscoder" / "latents.parquet")
    assert lat["nu_eps"].notna().sum() > 0
    html = (run.path / "report.html").read_text()
    assert "rendering failed" not in html and html.count("training curves") >= 3
    # the exported SAE loads back as a pretrained SAE
    saelens = run.path / "artifacts" / "sae_diff" / "saelens"
    assert (saelens / "cfg.json").exists() and (saelens / "sae_weights.safetensors").exists()
    res2, _ = _run(tiny_dirs, tmp_path / "pretrained", methods=["sae_diff"],
                   settings={"sae_diff": {**SMALL["sae_diff"], "pretrained": str(saelens)}})
    h2 = res2["sae_diff"]["headline"]
    assert res2["sae_diff"]["status"] == "ok" and h2["source"].startswith("pretrained")
    assert h2["top_variance_share"] == pytest.approx(sae["top_variance_share"], rel=1e-3, abs=1e-6)


def test_self_pair_skips_difference_methods_and_crosscoder_has_no_excess(tiny_dirs, tmp_path):
    res, run = _run(tiny_dirs, tmp_path / "self", ft_adapter=False)
    for m in ("pca", "sae_diff"):
        h = res[m]["headline"]
        assert res[m]["status"] == "ok" and h["skipped"] is True and h["top_lens"] == []
    cc = res["crosscoder"]["headline"]
    assert res["crosscoder"]["status"] == "ok"
    assert cc["finetuned_only"] <= max(cc["finetuned_only_control"], 1)
    assert "rendering failed" not in (run.path / "report.html").read_text()


def test_methods_of_one_run_share_the_generated_pair_replies_corpus(tiny_dirs, tmp_path, monkeypatch):
    from lmdiff.models.lm import LanguageModel

    calls: list[int] = []
    real = LanguageModel.generate

    def counting(self, prompts, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(prompts))
        return real(self, prompts, *args, **kwargs)

    monkeypatch.setattr(LanguageModel, "generate", counting)
    shared = {**COMMON, "corpus": "pair-replies", "n_texts": 4, "steering": False}
    res, run = _run(tiny_dirs, tmp_path / "replies", methods=["pca", "sae_diff", "crosscoder"],
                    settings={"pca": {**shared, "n_components": 4}, "sae_diff": {**shared, "train": TRAIN},
                              "crosscoder": {**shared, "train": TRAIN, "scaling_latents": 8}})
    assert all(res[m]["status"] == "ok" for m in ("pca", "sae_diff", "crosscoder")), res
    assert calls == [4, 4]  # the base's replies, then the finetune's: generated once for both methods
    # on pair-replies both methods contrast the finetune's replies with the base's, prompt by prompt
    for m in ("pca", "sae_diff", "crosscoder"):
        assert res[m]["headline"]["writer_prompts"] == 4, res[m]["headline"]
    cc = res["crosscoder"]["headline"]
    if cc["finetuned_only"] < COMMON["n_units"]:  # the rest of the table: most difference in the finetune's replies
        assert cc["filled_by"] == "writer_excess"
    ctrl = pd.read_parquet(run.path / "artifacts" / "crosscoder" / "latents_control.parquet")
    assert len(ctrl) == TRAIN["n_latents"] and cc["control_rel_norm_range"][0] <= cc["control_rel_norm_range"][1]
    sae = res["sae_diff"]["headline"]
    assert sae["ranked_by"] == "writer" and 0 <= sae["writer_significant"] <= sae["alive"]
    for m in ("pca", "sae_diff", "crosscoder"):  # the words the contrast backs lead the signals, then the lens
        h = res[m]["headline"]
        assert h["top_signals"][: len(h["top_example_words"])] == h["top_example_words"], h
    units = json.loads((run.path / "artifacts" / "sae_diff" / "units.json").read_text())
    excess = [u["writer_excess"] for u in units]
    assert excess == sorted(excess, reverse=True) and all(u["writer_q"] >= u["writer_p"] for u in units)
    lat = pd.read_parquet(run.path / "artifacts" / "sae_diff" / "latents.parquet")
    assert {"variance_share", "writer_excess", "writer_q"} <= set(lat.columns) and len(lat) == TRAIN["n_latents"]
    assert "carry more of the difference in the finetune" in (run.path / "report.html").read_text()
    assert len(list((run.path / "cache" / "corpora").glob("*_replies_*.json"))) == 2
    assert len(list((run.path / "activations").glob("store-*"))) == 1
