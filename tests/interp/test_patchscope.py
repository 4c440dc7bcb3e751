from __future__ import annotations

import torch

from lmdiff.interp.patchscope import IDENTITY_PROMPTS, patchscope


def test_patching_an_unembedding_row_reads_its_token(tiny_lm):
    tok = tiny_lm.encode(" banana", add_special_tokens=False)[0]
    last = tiny_lm.n_layers - 1
    v = tiny_lm.unembed.weight[tok].detach().float()
    hooks_before = [len(b._forward_hooks) for b in tiny_lm.layers]  # transformers may install its own
    res = patchscope(tiny_lm, last, v, [200.0], top=50, keep=5)
    assert res[0]["scale"] == 200.0 and res[0]["tokens"][0] == tok
    assert 0 < res[0]["probs"][0] <= res[0]["mass"] <= 1
    assert [len(b._forward_hooks) for b in tiny_lm.layers] == hooks_before
    assert len(IDENTITY_PROMPTS) == 3 and torch.is_tensor(v)
