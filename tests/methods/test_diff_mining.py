from __future__ import annotations

import torch

from lmdiff.methods.diff_mining import count_top_tokens


def test_planted_bias_is_counted():
    torch.manual_seed(0)
    diff = torch.randn(3, 10, 500) * 0.1
    diff[..., 42] += 5.0
    counts, where = count_top_tokens(diff, [10, 7, 4], top_k=5)
    assert counts.most_common(1)[0] == (42, 21)
    assert len(where[42]) == 21


def test_zero_diff_counts_nothing():
    counts, _ = count_top_tokens(torch.zeros(2, 4, 50), [4, 4], top_k=3)
    assert not counts
