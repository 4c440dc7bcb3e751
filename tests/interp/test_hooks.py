"""Block hooks: tensor and tuple block outputs, removal on exit and on error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmdiff.interp.hooks import layer_hook, replace_hidden, steer


def test_replace_hidden_handles_tensor_and_tuple_outputs():
    h = torch.ones(1, 2, 3)
    assert torch.equal(replace_hidden(h, lambda x: 2 * x), 2 * h)
    out = replace_hidden((h, "cache"), lambda x: x + 1)
    assert isinstance(out, tuple) and out[1] == "cache" and torch.equal(out[0], h + 1)


class _TupleBlock(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x + 1, None


class _FakeLM:
    """Just enough of a LanguageModel for the hooks: ``layers``."""

    def __init__(self) -> None:
        self.layers = nn.ModuleList([_TupleBlock(), nn.Identity()])


def test_layer_hook_edits_tuple_and_tensor_blocks_and_is_removed_on_error():
    lm = _FakeLM()
    x = torch.zeros(1, 2, 4)
    with layer_hook(lm, 0, lambda h: h * 3):  # type: ignore[arg-type]
        assert torch.equal(lm.layers[0](x)[0], torch.full_like(x, 3.0))
    with steer(lm, 1, torch.ones(4), 2.0):  # type: ignore[arg-type]
        assert torch.equal(lm.layers[1](x), torch.full_like(x, 2.0))
    with pytest.raises(RuntimeError), layer_hook(lm, 1, lambda h: h):  # type: ignore[arg-type]
        raise RuntimeError("boom")
    assert not any(len(b._forward_hooks) for b in lm.layers)
    assert torch.equal(lm.layers[1](x), x)


def test_steer_changes_real_model_outputs_then_restores(tiny_lm):
    ids = tiny_lm.encode("hello there")
    before = tiny_lm.next_token_logprobs([ids])[0]
    with steer(tiny_lm, 0, torch.randn(tiny_lm.d_model) * 5, 1.0):
        during = tiny_lm.next_token_logprobs([ids])[0]
    torch.testing.assert_close(tiny_lm.next_token_logprobs([ids])[0], before)
    assert float((during - before).abs().max()) > 1e-3
