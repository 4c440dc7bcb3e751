"""Paired log-probabilities and per-token KL."""

from __future__ import annotations

import math

import torch

from lmdiff.interp.logprobs import kl_rows, paired_logprobs, per_token_kl


def test_kl_rows_matches_a_hand_computation():
    p = torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    q = torch.tensor([[0.25, 0.5, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    kl = kl_rows(p.log(), q.log())
    expected = 0.5 * math.log(2) + 0.25 * math.log(0.5)
    torch.testing.assert_close(kl, torch.tensor([expected, 0.0]), atol=1e-6, rtol=0)


def test_paired_logprobs_cover_every_sequence_once(tiny_pair):
    lm = tiny_pair.base
    seqs = [lm.encode(t) for t in ("a b c d e", "hello", "one two three")]
    seen = []
    for idx, lengths, lpb, lpf in paired_logprobs(tiny_pair, seqs, batch_size=2):
        seen += idx
        assert lpb.shape == lpf.shape and lengths == [len(seqs[i]) for i in idx]
        ref = lm.next_token_logprobs([seqs[idx[0]]])[0]
        torch.testing.assert_close(lpb[0, : lengths[0]], ref, atol=1e-5, rtol=1e-5)
    assert sorted(seen) == [0, 1, 2]


def test_per_token_kl_is_zero_on_the_self_pair(self_pair):
    df = per_token_kl(self_pair, [self_pair.base.encode("The cat sat on the mat.")], reverse=True)
    assert len(df) > 0 and float(df["kl"].abs().max()) < 1e-6 and float(df["kl_rev"].abs().max()) < 1e-6
