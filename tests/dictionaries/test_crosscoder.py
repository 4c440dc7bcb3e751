from __future__ import annotations

import numpy as np

from lmdiff.dictionaries import ActivationStream, TrainSettings, train_dictionary
from lmdiff.dictionaries.examples import unit_stats
from lmdiff.dictionaries.scaling import latent_scaling, norm_tags
from tests.dictionaries.conftest import sparse_features, write_store

CC = {"n_latents": 64, "k": 4, "train_tokens": 256 * 600, "batch_size": 256, "lr": 5e-3, "checkpoint_every": 50,
      "buffer_tokens": 4096, "dead_tokens": 256 * 20, "seed": 0}


def _crosscoder(store, out, control="none", steps=600):
    settings = TrainSettings(**{**CC, "train_tokens": 256 * steps})
    td = train_dictionary(ActivationStream(store, 1, "paired", batch_size=256, buffer_tokens=4096, control=control),
                          settings, out, progress=False)
    st = unit_stats(store, 1, "paired", td.encode_raw, settings.n_latents, n_top=5)
    return td, norm_tags(td, st.frequency), st


def test_crosscoder_tags_a_planted_finetuned_only_direction(planted_store, tmp_path):
    store, planted = planted_store
    td, tags, _ = _crosscoder(store, tmp_path / "cc")
    dirs = td.directions()  # [L, 2, D] raw units
    ft_dirs = dirs[:, 1] / np.maximum(np.linalg.norm(dirs[:, 1], axis=1, keepdims=True), 1e-12)
    cos = ft_dirs @ planted
    best = int(np.argmax(cos * (tags["frequency"].to_numpy() > 0)))
    assert cos[best] > 0.9, cos[best]
    assert tags.loc[best, "tag"] == "finetuned-only", tags.loc[best]
    ft_only = tags[tags.tag == "finetuned-only"]
    assert 1 <= len(ft_only) <= 4  # the planted feature, not the 48 shared ones
    sc = latent_scaling(store, 1, td, np.array([best, *tags[tags.tag == "shared"].latent.head(5)]))
    row = sc.iloc[0]
    assert row["own"] == "finetuned"
    assert row["beta_eps_ft"] > 0.5 and abs(row["nu_eps"]) < 0.2 and abs(row["nu_r"]) < 0.2, row
    shared = sc.iloc[1:]
    assert (shared["nu_eps"] > 0.5).all(), shared  # shared latents: the other side holds them too


def test_self_pair_has_no_finetuned_only_latents_beyond_the_swap_control(self_store, tmp_path):
    _, tags, _ = _crosscoder(self_store, tmp_path / "real", steps=200)
    _, ctrl, _ = _crosscoder(self_store, tmp_path / "ctrl", control="swap", steps=200)
    n_real = int((tags.tag == "finetuned-only").sum())
    n_ctrl = int((ctrl.tag == "finetuned-only").sum())
    assert n_real <= max(n_ctrl, 1)
    assert n_real <= 2


def test_the_delta_loss_makes_a_crosscoder_write_a_small_planted_change_into_its_decoder_difference(tmp_path):
    # the finetune adds a direction of norm 0.2-0.4 on 10% of tokens: about 0.3% of the activations' variance
    base, _ = sparse_features(8192, 32, 48, 3.0, seed=1)
    rng = np.random.default_rng(2)
    planted = rng.standard_normal(32)
    planted /= np.linalg.norm(planted)
    on = (rng.random(len(base)) < 0.1) * rng.uniform(0.2, 0.4, len(base))
    store = write_store(tmp_path / "store", base, (base + on[:, None] * planted[None, :]).astype(np.float32))

    def best_cosine(delta_coef: float) -> float:
        settings = TrainSettings(**{**CC, "train_tokens": 256 * 400, "delta_coef": delta_coef})
        td = train_dictionary(ActivationStream(store, 1, "paired", batch_size=256, buffer_tokens=4096), settings,
                              tmp_path / f"cc-{delta_coef}", progress=False)
        d = td.directions()
        change = d[:, 1] - d[:, 0]
        return float(np.max(change @ planted / np.maximum(np.linalg.norm(change, axis=1), 1e-12)))

    plain, with_delta = best_cosine(0.0), best_cosine(10.0)
    assert with_delta > 0.95 and plain < 0.85, (plain, with_delta)
