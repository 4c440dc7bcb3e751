from __future__ import annotations

import numpy as np
import pytest
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


def _early_stopping_frame():
    """Per-token KL rows of a finetune that learnt to stop early: the three positions where it predicts
    <|im_end|> (id 2) carry KL 4.0 each; the content positions carry 0.1-0.6, highest where it predicts 777."""
    import pandas as pd

    rows = []
    for pos in range(8):
        stop = pos in (5, 6, 7)
        rows.append({"text": 0, "pos": pos, "token": 100 + pos, "next_token": 100 + pos + 1 if pos < 7 else -1,
                     "kl": 4.0 if stop else 0.1 * (pos + 1), "top_ft": 2 if stop else (777 if pos == 4 else 300),
                     "top_base": 300})
    rows.append({"text": 1, "pos": 0, "token": 5, "next_token": 2, "kl": 0.2, "top_ft": 300, "top_base": 300})
    return pd.DataFrame(rows)


def test_stopping_positions_and_split():
    from lmdiff.interp.end_of_turn import stopping_positions
    from lmdiff.methods.kl import stopping_split

    df = _early_stopping_frame()
    mask = stopping_positions(df, {2})
    # the finetune's <|im_end|> predictions, and the position whose actual next token is <|im_end|>
    assert mask.tolist() == [False] * 5 + [True] * 3 + [True]
    split = stopping_split(df, mask)
    total = 12.0 + 0.2 + sum(0.1 * (p + 1) for p in range(5))
    assert split["eot_kl_share"] == pytest.approx(12.2 / total)
    assert split["n_eot_positions"] == 4 and split["eot_position_share"] == pytest.approx(4 / 9)
    assert split["mean_kl_content"] == pytest.approx(0.3) and split["max_kl_content"] == pytest.approx(0.5)
    # the raw top-3 are all end-of-turn positions; excluding them, position 4 (ft predicts 777) leads
    assert set(df.nlargest(3, "kl")["top_ft"]) == {2}
    content = df[~mask].nlargest(3, "kl")
    assert content["top_ft"].tolist()[0] == 777
    assert stopping_split(df.assign(kl=0.0), mask)["eot_kl_share"] == 0.0


def test_end_of_turn_ids_of_the_smollm2_tokenizer(tiny_lm):
    from lmdiff.interp.end_of_turn import end_of_turn_ids

    ids = end_of_turn_ids(tiny_lm)
    assert tiny_lm.tokenizer.convert_tokens_to_ids("<|im_end|>") in ids
    assert tiny_lm.tokenizer.convert_tokens_to_ids("<|endoftext|>") in ids
    assert tiny_lm.tokenizer.convert_tokens_to_ids("<|im_start|>") not in ids
    assert tiny_lm.encode("ocean", add_special_tokens=False)[0] not in ids
