"""Mean differences from a store, and the shared direction/store settings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lmdiff.activations import collect_activations
from lmdiff.interp.directions import DEFAULT_TEXTS_CPU, DirectionConfig, mean_differences


def test_adl_and_causal_inherit_the_same_store_settings():
    from lmdiff.methods.adl import ADLConfig
    from lmdiff.methods.causal import CausalConfig

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a field shadowing a DirectionConfig attribute would warn
        adl, causal = ADLConfig(), CausalConfig()
    shared = set(DirectionConfig.model_fields)
    assert adl.model_dump(include=shared) == causal.model_dump(include=shared) == DirectionConfig().model_dump()
    assert adl.store_tokens == causal.store_tokens == 32 and causal.max_tokens == 64  # causal's eval length
    assert DirectionConfig().texts() == DEFAULT_TEXTS_CPU and DirectionConfig(n_texts=7).texts() == 7
    assert DirectionConfig(n_tokens=3, k=5).store_tokens == 5


def test_store_layers_add_extra_layers(tiny_pair):
    cfg = DirectionConfig(layers=[1.0])
    assert cfg.store_layers(tiny_pair) == [1]
    assert cfg.store_layers(tiny_pair, 0.5) == [0, 1]


def test_mean_differences_match_a_hand_computation(tiny_pair, tmp_path):
    lm = tiny_pair.base
    seqs = [lm.encode(t) for t in ("The cat sat on the mat today.", "Hi", "One two three four five six")]
    store = collect_activations(tiny_pair, seqs, [1], tmp_path / "s", dtype="float32", shard_tokens=8)
    k = 3
    m = mean_differences(store, 1, k)
    hb = [h[1].double().numpy() for h in tiny_pair.base.hidden_states(seqs, [1])]
    hf = [h[1].double().numpy() for h in tiny_pair.finetuned.hidden_states(seqs, [1])]
    for p in range(k):
        rows = [i for i, s in enumerate(seqs) if len(s) > p]
        assert m["counts"][p] == len(rows)
        np.testing.assert_allclose(m["base"][p], np.mean([hb[i][p] for i in rows], 0), atol=1e-5)
        np.testing.assert_allclose(m["diff"][p], np.mean([hf[i][p] - hb[i][p] for i in rows], 0), atol=1e-5)
    late_ft = np.concatenate([h[k:] for h in hf])
    assert m["norm_ft"] == pytest.approx(float(np.linalg.norm(late_ft, axis=1).mean()), rel=1e-5)
    assert np.linalg.norm(m["diff"][0]) > 0
