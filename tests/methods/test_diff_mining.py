from __future__ import annotations

import torch

from lmdiff.methods.diff_mining import DiffMiningConfig, count_top_tokens, supported_tokens


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


def _glitch_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [1, 4, 6] where token 5 (a glitch token) rises from 1e-12 to 1e-7 and token 1 from 0.1 to 0.5."""
    p_ft = torch.tensor([0.3, 0.5, 0.1, 0.05, 0.05 - 1e-7, 1e-7], dtype=torch.float64)
    p_base = torch.tensor([0.4, 0.1, 0.2, 0.15, 0.15 - 1e-12, 1e-12], dtype=torch.float64)
    lp_ft = p_ft.log().float().expand(1, 4, 6).clone()
    lp_base = p_base.log().float().expand(1, 4, 6).clone()
    return lp_ft, lp_base


def test_glitch_token_leads_without_support_floor():
    lp_ft, lp_base = _glitch_case()
    counts, _ = count_top_tokens(lp_ft - lp_base, [4], top_k=1)
    assert counts == {5: 4}  # log-ratio 11.5 beats token 1's 1.6: the glitch token tops the table


def test_nucleus_and_floor_rank_only_supported_tokens():
    lp_ft, lp_base = _glitch_case()
    diff = lp_ft - lp_base
    default = {"top_p": DiffMiningConfig().top_p}
    for kwargs in (default, {"top_p": 0.95}, {"min_prob": 1e-3}, {"top_p": 0.95, "min_prob": 1e-3}):
        counts, where = count_top_tokens(diff, [4], top_k=1, lp_ft=lp_ft, **kwargs)
        assert counts == {1: 4}, kwargs
        assert where[1] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    # with top_k above the supported set, unsupported tokens still never count
    counts, _ = count_top_tokens(diff, [3], top_k=6, lp_ft=lp_ft, min_prob=1e-3)
    assert 5 not in counts and counts[1] == 3


def test_supported_tokens_nucleus():
    lp = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert supported_tokens(lp, top_p=0.79).tolist() == [[True, True, False, False]]
    assert supported_tokens(lp, top_p=0.81).tolist() == [[True, True, True, False]]
    assert supported_tokens(lp, top_p=0.1).tolist() == [[True, False, False, False]]  # the top token always counts
    assert supported_tokens(lp).all()
    assert supported_tokens(lp, min_prob=0.1).tolist() == [[True, True, True, False]]
