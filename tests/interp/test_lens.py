"""Logit lens and lens delta: float32 readout whatever the model dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from lmdiff.interp.lens import lens_delta, lens_delta_tokens, lens_tokens, logit_lens


def _float64_lens(lm, v: torch.Tensor) -> torch.Tensor:
    """The lens computed in float64 from the model's own (bf16) weights."""
    norm, head = lm.final_norm, lm.unembed

    def f64(module, x):
        tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
        return functional_call(module, {k: t.double() for k, t in tensors.items()}, (x,))

    with torch.no_grad():
        return torch.log_softmax(f64(head, f64(norm, v.double())), dim=-1)


@pytest.fixture(scope="module")
def bf16_lm(tiny_model_dir):
    """A bf16 copy of the tiny model whose final norm is scaled so that logits reach 16-32, as in real models."""
    from lmdiff.models.loading import load_model

    lm = load_model(str(tiny_model_dir), dtype="bfloat16", device="cpu")
    with torch.no_grad():
        lm.final_norm.weight.mul_(600.0)
    return lm


def test_fp32_lens_matches_float64_and_naive_bf16_does_not(bf16_lm):
    lm = bf16_lm
    assert lm.dtype == torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(4, lm.d_model, generator=gen, dtype=torch.float64)
    ref = _float64_lens(lm, v)
    logits = ref - ref.logsumexp(-1, keepdim=True)
    assert float((logits.max(-1).values - logits.min(-1).values).min()) > 16  # a real model's logit range
    fp32 = logit_lens(lm, v)
    assert fp32.dtype == torch.float32 and fp32.shape == (4, lm.unembed.out_features)
    with torch.no_grad():
        naive = torch.log_softmax(lm.unembed(lm.final_norm(v.to(torch.bfloat16))).float(), dim=-1)
    err_fp32 = float((fp32.double() - ref).abs().max())
    err_naive = float((naive.double() - ref).abs().max())
    assert err_fp32 < 1e-3
    assert err_naive > 0.05 and err_naive > 50 * err_fp32
    # the lens delta of two close means: its ranking survives in fp32, not in bf16
    a, b = v[0], v[0] + 0.01 * v[1]
    delta_ref = (_float64_lens(lm, a) - _float64_lens(lm, b)).float()
    delta = lens_delta(lm, a.numpy(), b.numpy())
    torch.testing.assert_close(delta, delta_ref, atol=2e-3, rtol=0)
    assert torch.topk(delta, 5).indices.tolist() == torch.topk(delta_ref, 5).indices.tolist()
    assert bf16_lm.final_norm.weight.dtype == torch.bfloat16  # the model was not converted


def test_lens_of_planted_unembedding_row(tiny_lm):
    tok = tiny_lm.encode("banana", add_special_tokens=False)[0]
    v = tiny_lm.unembed.weight[tok].detach().double().numpy() * 50
    top = lens_tokens(tiny_lm, v, 3)
    assert top[0][0] == tiny_lm.token_strings([tok])[0] and 0 < top[0][1] <= 1
    up, down = lens_delta_tokens(tiny_lm, v, np.zeros_like(v), 3)
    assert up[0][0] == top[0][0] and up[0][1] > 0 and down[0][1] > 0
    assert [t for t, _ in up] != [t for t, _ in down]
