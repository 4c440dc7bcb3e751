"""Weight-space statistics of a finetune (lmdiff.interp.weight_delta)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from lmdiff.interp.weight_delta import (
    by_block_and_kind,
    full_delta_stats,
    lora_delta_stats,
    plot_weight_deltas,
    spectrum_stats,
    top_moved_block,
)


def test_spectrum_stats():
    s = spectrum_stats(np.array([3.0, 0.0, 4.0]), top_k=1)
    assert s["top_singular"] == [4.0]
    assert s["top_energy"] == 16 / 25
    assert 1.0 < s["effective_rank"] < 2.0
    assert spectrum_stats(np.ones(4), top_k=2)["effective_rank"] == 4.0


def test_perturbed_block_is_the_top_one(tiny_lm):
    base = tiny_lm.core
    ft = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        w = ft.model.layers[1].mlp.down_proj.weight
        u, v = torch.randn(w.shape[0], 1, generator=gen), torch.randn(1, w.shape[1], generator=gen)
        w.add_(0.05 * u @ v)  # a rank-one change
    df = full_delta_stats(base, ft, top_k=2)
    assert top_moved_block(df) == 1
    row = df[df["name"] == "model.layers.1.mlp.down_proj.weight"].iloc[0]
    assert row["kind"] == "mlp" and row["block"] == 1
    np.testing.assert_allclose(row["delta_norm"], float((0.05 * u @ v).norm()), rtol=1e-4)
    assert row["top_energy"] > 0.999 and row["effective_rank"] < 1.01
    assert (df.drop(df.index[df["name"] == row["name"]])["delta_norm"] == 0).all()
    grouped = by_block_and_kind(df)
    assert grouped.loc[grouped["rel_delta"].idxmax(), ["block", "kind"]].tolist() == [1, "mlp"]
    plot_weight_deltas(df).savefig("/dev/null", format="png")


def test_lora_delta_matches_the_merged_weights(tiny_pair):
    model = tiny_pair.finetuned.model
    df = lora_delta_stats(model, top_k=4)
    assert len(df) > 0 and (df["source"] == "lora").all()
    for name, mod in model.named_modules():
        if hasattr(mod, "get_delta_weight") and hasattr(mod, "lora_A"):
            delta = mod.get_delta_weight("default").detach().double()  # the shared fixture may require grad
            row = df[df["name"] == name.removeprefix("base_model.model.") + ".weight"].iloc[0]
            np.testing.assert_allclose(row["delta_norm"], float(delta.norm()), rtol=1e-5)
            sv = torch.linalg.svdvals(delta).numpy()[:4]
            np.testing.assert_allclose(row["top_singular"], sv, rtol=1e-4, atol=1e-8)
            assert row["kind"] in ("attention", "mlp")
