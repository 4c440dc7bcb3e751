"""The causal check: projection edits, hook hygiene, a planted direction, and the method end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lmdiff.config import GenerationConfig, validate
from lmdiff.corpora import load_corpus
from lmdiff.diff import run_diff
from lmdiff.interp.hooks import steer
from lmdiff.methods.causal import (
    EvalSet,
    base_hidden,
    compare,
    evaluate_loss,
    project_out,
    random_directions,
)
from lmdiff.run_config import DiffRunConfig

SMALL = {"n_texts": 6, "eval_texts": 3, "max_tokens": 12, "reply_tokens": 6, "n_random": 2,
         "n_diff_random": 1, "batch_size": 4}


def _evalset(lm, n=5, max_tokens=20):
    seqs = load_corpus("generic", limit=n).encode(lm, max_tokens=max_tokens)
    return EvalSet("generic", seqs, [1] * len(seqs))


def _loss(nll_count):
    nll, count = nll_count
    return float(nll.sum() / count.sum())


def test_project_out_ablates_and_swaps():
    torch.manual_seed(0)
    h = torch.randn(2, 3, 8)
    u = random_directions(8, 1, seed=0)[0]
    ab = project_out(h, u)
    torch.testing.assert_close(ab @ u, torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(ab + (h @ u).unsqueeze(-1) * u, h, atol=1e-5, rtol=0)
    repl = torch.full((2, 3), 2.5)
    torch.testing.assert_close(project_out(h, u, repl) @ u, repl, atol=1e-5, rtol=0)
    c = compare(3.0, [0.0, 1.0, 2.0])
    assert c["percentile"] == 1.0 and c["z"] == pytest.approx(2.0)
    assert compare(1.0, [])["z"] is None


def test_hooks_change_loss_and_are_removed(tiny_pair):
    ft = tiny_pair.finetuned
    es = _evalset(ft)
    clean = _loss(evaluate_loss(ft, es, batch_size=2))
    u = random_directions(ft.d_model, 1, seed=3)[0]
    ablated = _loss(evaluate_loss(ft, es, batch_size=2, layer=0, direction=u))
    assert abs(ablated - clean) > 1e-5
    assert not any(len(b._forward_hooks) for b in ft.layers)
    assert _loss(evaluate_loss(ft, es, batch_size=3)) == pytest.approx(clean, rel=1e-6)
    # swap-to-base with the finetuned model's own states is the identity (checks padding/alignment)
    own = base_hidden(ft, es, 0, batch_size=2)
    same = _loss(evaluate_loss(ft, es, batch_size=2, layer=0, direction=u, base_states=own))
    assert same == pytest.approx(clean, rel=1e-5)
    # swapping to the base model's states moves the loss, and hooks are gone afterwards
    base_states = base_hidden(tiny_pair.base, es, 0, batch_size=2)
    swapped = _loss(evaluate_loss(ft, es, batch_size=2, layer=0, direction=u, base_states=base_states))
    assert abs(swapped - clean) > 1e-7
    assert not any(len(b._forward_hooks) for b in ft.layers)


@pytest.fixture(scope="module")
def peaked_lm(tiny_model_dir):
    """A private copy of the tiny model whose final norm is scaled up, so its predictions are peaked."""
    from lmdiff.models.loading import load_model

    lm = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    with torch.no_grad():
        lm.final_norm.weight.mul_(20.0)
    return lm


def test_planted_direction_beats_random_directions(peaked_lm):
    """A 'finetune' that adds c*v at layer 0: ablating v raises the loss on its own samples most."""
    lm = peaked_lm
    v = random_directions(lm.d_model, 1, seed=11)[0]
    prompts = ["The weather today", "My favourite food", "Once upon a time", "Numbers are"]
    gen = GenerationConfig.model_validate({"temperature": 0.0, "max_new_tokens": 12, "seed": 0})
    norm = float(torch.stack([h[0].norm(dim=-1).mean() for h in lm.hidden_states(
        [lm.encode(p) for p in prompts], [0])]).mean())
    with steer(lm, 0, v, 4.0 * norm):
        outs = lm.generate(prompts, gen, chat=False)
        seqs, starts = [], []
        for p, o in zip(prompts, outs, strict=True):
            ids = lm.encode(p)
            seqs.append(ids + lm.encode(o[0].text, add_special_tokens=False))
            starts.append(len(ids))
        es = EvalSet("own", seqs, starts)
        clean = _loss(evaluate_loss(lm, es))
        real = _loss(evaluate_loss(lm, es, layer=0, direction=v)) - clean
        rand = [_loss(evaluate_loss(lm, es, layer=0, direction=u)) - clean
                for u in random_directions(lm.d_model, 8, seed=5)]
    assert not any(len(b._forward_hooks) for b in lm.layers)
    assert real > 0
    assert real > max(rand)
    assert compare(real, rand)["percentile"] == 1.0


@pytest.mark.parametrize("which", ["tiny", "self"])
def test_causal_method_end_to_end(tiny_dirs, tmp_path, which):
    base_dir, adapter_dir = tiny_dirs
    ft = {"model": str(base_dir), "adapter": str(adapter_dir)} if which == "tiny" else {"model": str(base_dir)}
    cfg = validate(DiffRunConfig, {"base": {"model": str(base_dir)}, "finetuned": ft, "methods": ["causal"],
                                   "method": {"causal": SMALL}})
    run = run_diff(cfg, tmp_path / which)
    entry = json.loads((run.path / "results.json").read_text())["methods"]["causal"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    html = (run.path / "report.html").read_text()
    assert "rendering failed" not in html
    if which == "self":
        assert h["skipped"] is True and "self-pair" in h["reason"]
        return
    assert h["skipped"] is False and h["direction_norm"] > 0
    assert h["own_corpus"] == "chat+ft_replies" and h["generic_corpus"] == "generic"
    for mode in ("ablate", "swap"):
        for key in ("own", "generic"):
            assert math.isfinite(h[f"{mode}_{key}_delta"])
            assert 0.0 <= h[f"{mode}_{key}_percentile"] <= 1.0
            lo, hi = h[f"{mode}_{key}_delta_ci"]
            assert lo <= h[f"{mode}_{key}_delta"] <= hi
        lo, hi = h[f"{mode}_specificity_ci"]
        assert lo <= h[f"{mode}_specificity"] <= hi
        assert math.isfinite(h[f"{mode}_specificity"])
    import pandas as pd

    df = pd.read_parquet(run.path / entry["artifacts"][0])
    assert set(df["kind"]) == {"real", "random", "diff_random"}
    assert len(df) == 2 * 2 * (1 + 2 + 1)
    assert h["ci_unit"] == "text" and h["direction_position"] == "mean 1..4"
    real_var = df.loc[df["kind"] == "real", "proj_var"].to_numpy()
    np.testing.assert_allclose(df.loc[df["kind"] == "random", "proj_var"], real_var[0], rtol=1e-3)
    direction = np.load(run.path / entry["artifacts"][2])
    assert np.linalg.norm(direction) == pytest.approx(1.0, abs=1e-5)


def test_causal_and_adl_share_one_activation_store(tiny_dirs, tmp_path):
    base_dir, adapter_dir = tiny_dirs
    store = {"corpus": "generic", "n_texts": 6, "n_tokens": 12}
    adl = {**store, "steering": False, "patchscope_scales": [1.0]}
    cfg = validate(DiffRunConfig, {"base": {"model": str(base_dir)},
                                   "finetuned": {"model": str(base_dir), "adapter": str(adapter_dir)},
                                   "methods": ["adl", "causal"], "method": {"adl": adl, "causal": {**SMALL, **store}}})
    run = run_diff(cfg, tmp_path / "both")
    res = json.loads((run.path / "results.json").read_text())["methods"]
    assert res["adl"]["status"] == "ok" and res["causal"]["status"] == "ok", res
    assert len(list((run.path / "activations").glob("store-*"))) == 1


def test_default_settings_share_one_activation_store(tiny_pair, tiny_dirs, tmp_path):
    """With DEFAULT store settings (only steering and evaluation sizes reduced) adl and causal collect one store.

    Before the shared DirectionConfig, adl read 200 texts and causal 64 by default on CPU: two stores.
    """
    from lmdiff.methods.adl import ADLConfig
    from lmdiff.methods.causal import CausalConfig

    adl_cfg, causal_cfg = ADLConfig(), CausalConfig()
    corpus_a = adl_cfg.load_corpus(tiny_pair, seed=0)
    corpus_c = causal_cfg.load_corpus(tiny_pair, seed=0)
    layer = tiny_pair.finetuned.resolve_layer(causal_cfg.layer)
    assert adl_cfg.store_key(tiny_pair, corpus_a, adl_cfg.store_layers(tiny_pair)) == causal_cfg.store_key(
        tiny_pair, corpus_c, causal_cfg.store_layers(tiny_pair, layer))

    base_dir, adapter_dir = tiny_dirs
    adl = {"steering": False, "patchscope_scales": [1.0], "top_k": 3, "patchscope_top": 20}
    causal = {"eval_texts": 2, "max_tokens": 12, "reply_tokens": 4, "n_random": 1, "n_diff_random": 0,
              "modes": ["ablate"]}
    cfg = validate(DiffRunConfig, {"base": {"model": str(base_dir)},
                                   "finetuned": {"model": str(base_dir), "adapter": str(adapter_dir)},
                                   "methods": ["adl", "causal"], "method": {"adl": adl, "causal": causal}})
    run = run_diff(cfg, tmp_path / "defaults")
    res = json.loads((run.path / "results.json").read_text())["methods"]
    assert res["adl"]["status"] == "ok" and res["causal"]["status"] == "ok", res
    assert len(list((run.path / "activations").glob("store-*"))) == 1
    assert res["adl"]["headline"]["n_texts"] == res["causal"]["headline"]["direction_texts"] > 64


# ------------------------------------------------------------------ issue 13, item 12
def test_direction_leaves_out_the_attention_sink():
    """Position 0's difference is 100x the others' and along e0: the direction must be the later positions' e1."""
    from lmdiff.interp.directions import sink_free_direction

    d, k = 6, 4
    diff = np.zeros((k, d))
    diff[0, 0] = 100.0
    diff[1:, 1] = 1.0
    means = {"diff": diff, "counts": np.array([10.0, 10.0, 10.0, 8.0])}
    vec = sink_free_direction(means)
    unit = vec / np.linalg.norm(vec)
    assert unit[1] == pytest.approx(1.0) and unit[0] == 0.0
    assert sink_free_direction(means, position=2)[1] == 1.0
    with pytest.raises(ValueError, match="attention sink"):
        sink_free_direction(means, position=0)


def test_causal_rejects_position_zero():
    from pydantic import ValidationError

    from lmdiff.methods.causal import CausalConfig

    with pytest.raises(ValidationError):
        CausalConfig(position=0)


def test_random_controls_match_the_real_directions_projected_variance():
    """Under an anisotropic covariance, isotropic controls miss the real direction's variance; matched ones hit it."""
    from lmdiff.interp.directions import matched_variance_directions, projected_variance

    rng = np.random.default_rng(0)
    d = 40
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(np.geomspace(100.0, 0.01, d)) @ q.T
    real = q[:, 2] + 0.3 * q[:, 10]
    real /= np.linalg.norm(real)
    target = float(projected_variance(cov, real)[0])
    iso = projected_variance(cov, random_directions(d, 16, seed=1).numpy().astype(np.float64))
    assert np.median(np.abs(iso / target - 1)) > 0.3  # the old controls: not matched
    ctrl = matched_variance_directions(cov, target, 16, seed=2)
    np.testing.assert_allclose(np.linalg.norm(ctrl, axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(projected_variance(cov, ctrl), target, rtol=1e-6)
    assert np.abs(ctrl @ real).max() < 0.9 and len({round(float(c[0]), 6) for c in ctrl}) == 16  # random, distinct


def test_loss_change_ci_is_over_texts_and_covers():
    """Per-text losses with a true change of +0.1 nats/token: the 95% CI covers it in about 95% of draws."""
    from lmdiff.methods.causal import loss_change_ci

    rng = np.random.default_rng(0)
    hits, reps = 0, 200
    for r in range(reps):
        n = 30
        cnt = rng.integers(10, 40, size=n).astype(np.float64)
        per_tok = rng.normal(2.0, 0.5, size=n)  # texts differ in difficulty
        edited_per_tok = per_tok + 0.1 + rng.normal(0, 0.2, size=n)  # the text is the unit of noise
        lo, hi, boot = loss_change_ci(per_tok * cnt, cnt, edited_per_tok * cnt, cnt, n_boot=500, seed=r)
        assert lo < hi and len(boot) == 500
        hits += lo <= 0.1 <= hi
    assert hits / reps >= 0.9
