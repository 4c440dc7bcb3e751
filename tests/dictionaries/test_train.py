from __future__ import annotations

import numpy as np
import pytest
import torch

from lmdiff.dictionaries import ActivationStream, TrainSettings, train_dictionary
from lmdiff.dictionaries.examples import unit_stats
from lmdiff.dictionaries.train import load_dictionary

SMALL = {"n_latents": 96, "k": 4, "train_tokens": 256 * 60, "batch_size": 256, "lr": 3e-3, "checkpoint_every": 5,
         "buffer_tokens": 2048, "dead_tokens": 256 * 10, "seed": 0}


class Killed(Exception):
    pass


def test_stream_is_reproducible_from_any_step_and_covers_the_store(planted_store):
    store, _ = planted_store
    s = ActivationStream(store, 1, "base", batch_size=128, buffer_tokens=1000, seed=3)
    full = [b for _, b in s.batches(0, 40)]
    tail = [b for _, b in s.batches(25, 40)]
    assert len(full) == 40 and len(tail) == 15
    for a, b in zip(full[25:], tail, strict=True):
        np.testing.assert_array_equal(a, b)
    # one epoch visits each kept token (positions >= 1) at most once, in a shuffled order
    per_epoch = s.tokens_per_epoch() // 128
    rows = np.concatenate([b for _, b in s.batches(0, per_epoch)])[:, 0]
    assert len(np.unique(rows, axis=0)) == len(rows)
    assert len(rows) > 0.9 * store.n_tokens * 15 / 16


def test_training_resumes_after_a_kill_and_ends_identical(planted_store, tmp_path):
    store, _ = planted_store
    settings = TrainSettings(**SMALL)

    def stream() -> ActivationStream:
        return ActivationStream(store, 1, "diff", batch_size=settings.batch_size,
                                buffer_tokens=settings.buffer_tokens, seed=0)

    whole = train_dictionary(stream(), settings, tmp_path / "whole", progress=False)

    def kill(step: int, _m: dict[str, float]) -> None:
        if step == 20:
            raise Killed

    with pytest.raises(Killed):
        train_dictionary(stream(), settings, tmp_path / "killed", on_step=kill, progress=False)
    assert (tmp_path / "killed" / "checkpoint.pt").exists()
    resumed = train_dictionary(stream(), settings, tmp_path / "killed", progress=False)
    assert resumed.resumed_from == 20
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert resumed.metrics["step"].tolist() == list(range(settings.steps))
    np.testing.assert_array_equal(whole.metrics["fve"].to_numpy(), resumed.metrics["fve"].to_numpy())
    # a finished dictionary loads instead of retraining
    again = train_dictionary(stream(), settings, tmp_path / "killed", progress=False)
    assert torch.equal(again.model.W_dec, whole.model.W_dec)
    assert (tmp_path / "whole" / "training.png").stat().st_size > 1000
    assert load_dictionary(tmp_path / "whole").metrics.shape[0] == settings.steps


def test_metrics_are_sane_fve_rises_and_l0_follows_k(planted_store, tmp_path):
    store, _ = planted_store
    settings = TrainSettings(**SMALL)
    td = train_dictionary(ActivationStream(store, 1, "base", batch_size=256, buffer_tokens=2048), settings,
                          tmp_path / "d", progress=False)
    m = td.metrics
    assert set(m.columns) >= {"step", "mse", "fve", "l0", "dead", "k", "loss"}
    early, late = m["fve"].head(5).mean(), m["fve"].tail(5).mean()
    assert late > early + 0.1 and late > 0.6, (early, late)
    assert m["k"].iloc[0] == pytest.approx(16) and m["k"].iloc[-1] == pytest.approx(4)
    assert abs(m["l0"].tail(5).mean() - 4) < 0.5
    assert (m["dead"] >= 0).all() and (m["dead"] <= settings.n_latents).all()
    # inference codes (threshold) have about the training L0
    st = unit_stats(store, 1, "base", lambda r: td.encode_raw(r), settings.n_latents, n_top=3)
    assert 1.0 < st.frequency.sum() < 12.0


def test_controls_swap_sides_or_break_pairs(planted_store):
    store, _ = planted_store
    plain = next(ActivationStream(store, 1, "paired", batch_size=512, seed=1).batches())[1]
    swap = next(ActivationStream(store, 1, "paired", batch_size=512, seed=1, control="swap").batches())[1]
    shuf = next(ActivationStream(store, 1, "paired", batch_size=512, seed=1, control="shuffle").batches())[1]
    pairs = {tuple(np.round(r[0], 5)): tuple(np.round(r[1], 5)) for r in plain}
    differ = [r for r in swap if not np.allclose(r[0], r[1])]  # tokens carrying the planted feature
    swapped = [tuple(np.round(r[1], 5)) in pairs and pairs[tuple(np.round(r[1], 5))] == tuple(np.round(r[0], 5))
               for r in differ]
    assert len(differ) > 20 and 0.25 < np.mean(swapped) < 0.75  # about half have their sides exchanged
    np.testing.assert_array_equal(np.sort(shuf[:, 0], axis=0), np.sort(plain[:, 0], axis=0))
    assert not np.array_equal(shuf[:, 1], plain[:, 1])
    with pytest.raises(ValueError):
        ActivationStream(store, 1, "diff", batch_size=8, control="swap")
