from __future__ import annotations

import numpy as np
import torch

from lmdiff.corpora import Corpus
from lmdiff.interp.logprobs import per_token_kl, token_kl
from lmdiff.methods.kl import kl_html


def test_self_pair_kl_is_zero(self_pair):
    df = token_kl(self_pair, "The quick brown fox jumps over the lazy dog.")
    assert len(df) > 5
    assert df["kl"].abs().max() < 1e-6
    assert df["kl_rev"].abs().max() < 1e-6


def test_kl_matches_direct_computation(tiny_pair):
    text = "Cats are small domesticated mammals that like to sleep."
    ids = tiny_pair.base.encode(text)
    df = per_token_kl(tiny_pair, [ids], reverse=True)
    lp_b = tiny_pair.base.next_token_logprobs([ids])[0].double()
    lp_f = tiny_pair.finetuned.next_token_logprobs([ids])[0].double()
    direct = (lp_f.exp() * (lp_f - lp_b)).sum(-1).numpy()
    np.testing.assert_allclose(df["kl"].to_numpy(), direct, rtol=1e-3, atol=1e-6)
    assert df["kl"].mean() > 1e-4
    rev = (lp_b.exp() * (lp_b - lp_f)).sum(-1).numpy()
    np.testing.assert_allclose(df["kl_rev"].to_numpy(), rev, rtol=1e-3, atol=1e-6)
    assert torch.tensor(df["top_ft"].to_numpy()).equal(lp_f.argmax(-1).to(torch.int32))


def test_batched_equals_unbatched(tiny_pair):
    corpus = Corpus("t", ("short text", "a much longer text with many more tokens in it", "mid length text"))
    seqs = corpus.encode(tiny_pair.base)
    a = per_token_kl(tiny_pair, seqs, batch_size=3)
    b = pd_concat([per_token_kl(tiny_pair, [s], offset=i) for i, s in enumerate(seqs)])
    np.testing.assert_allclose(a["kl"].to_numpy(), b["kl"].to_numpy(), rtol=1e-3, atol=1e-6)


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_kl_html_escapes():
    out = kl_html(["<b>", "x"], [0.5, 0.0], 1.0)
    assert "&lt;b&gt;" in out and "rgba(220,40,40,0.50)" in out
