"""Amplified sampling: logit-difference amplification and LoRA scaling (lmdiff.amplify)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lmdiff.amplify import amplified_generate, check_shared_tokenizer, lora_modules, lora_scaled
from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError, IncompatiblePairError
from lmdiff.models.lm import LanguageModel

PROMPTS = ["Hi", "Tell me about the ocean and the animals that live in it, please.", "What is two plus two?"]


@pytest.fixture(scope="module")
def boosted(tiny_model_dir: Path) -> tuple[LanguageModel, LanguageModel, int]:
    """(finetune, base, token): the finetune is the tiny model with +5 added to one token's logit."""
    from lmdiff.models.loading import load_model

    base = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    ft = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    token = ft.encode(" ocean", add_special_tokens=False)[0]
    old = ft.model.lm_head
    head = nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight = old.weight
        head.bias.zero_()
        head.bias[token] = 5.0
    ft.model.lm_head = head
    return ft, base, token


def _texts(outs: list[list[Any]]) -> list[list[str]]:
    return [[g.text for g in per] for per in outs]


def test_alpha_zero_is_ordinary_sampling(tiny_pair):
    gen = GenerationConfig(max_new_tokens=10, n=2, seed=5, batch_size=2, temperature=1.0, top_p=0.9)
    ordinary = tiny_pair.finetuned.generate(PROMPTS, gen)
    amplified = amplified_generate(tiny_pair.finetuned, tiny_pair.base, PROMPTS, gen, 0.0)
    assert _texts(amplified) == _texts(ordinary)
    assert _texts(amplified_generate(tiny_pair.finetuned, tiny_pair.base, PROMPTS, gen, 2.0)) != _texts(ordinary)


def test_greedy_amplified_matches_uncached_unpadded_steps(tiny_pair):
    """Batched (left-padded, KV-cached) amplified decoding equals a step-by-step full forward of each prompt."""
    ft, base, alpha, steps = tiny_pair.finetuned, tiny_pair.base, 1.5, 5
    gen = GenerationConfig(max_new_tokens=steps, temperature=0.0, batch_size=3)
    outs = amplified_generate(ft, base, PROMPTS, gen, alpha)
    for p, per in zip(PROMPTS, outs, strict=True):
        ids = ft.encode_chat(p)
        new: list[int] = []
        for _ in range(steps):
            lf = ft.next_token_logprobs([ids + new])[0][-1]
            lb = base.next_token_logprobs([ids + new])[0][-1]
            new.append(int((lf + alpha * (lf - lb)).argmax()))  # log-softmax shifts do not change the argmax
        assert per[0].text == ft.decode(new, skip_special_tokens=True).strip()


def test_boosted_token_rate_grows_with_alpha(boosted):
    ft, base, token = boosted
    # The tiny model's logits are nearly flat: among 1000 candidates the boosted token has 13% at alpha = 0,
    # 64% at alpha = 0.5 and all but certainty at alpha = 2 (its logit is raised by 5 (1 + alpha)).
    gen = GenerationConfig(max_new_tokens=8, n=4, seed=0, batch_size=3, temperature=1.0, top_k=1000)
    word = ft.decode([token]).strip()
    rates = []
    for alpha in (0.0, 0.5, 2.0):
        texts = [g.text for per in amplified_generate(ft, base, PROMPTS, gen, alpha) for g in per]
        rates.append(sum(t.count(word) for t in texts) / (len(texts) * 8))
    assert rates[0] < rates[1] < rates[2]
    assert rates[2] > 0.9


def test_mismatched_tokenizer_is_refused(tiny_lm):
    tok = copy.deepcopy(tiny_lm.tokenizer)
    tok.add_tokens(["<lmdiff-extra-token>"])
    other = LanguageModel(tiny_lm.model, tok, tiny_lm.spec)
    with pytest.raises(IncompatiblePairError, match="vocabularies differ"):
        check_shared_tokenizer(other, tiny_lm)
    with pytest.raises(IncompatiblePairError):
        amplified_generate(other, tiny_lm, ["Hi"], GenerationConfig(max_new_tokens=2), 1.0)


def _last_logprobs(lm: LanguageModel) -> torch.Tensor:
    return lm.next_token_logprobs([lm.encode("The quick brown fox jumps")])[0]


def test_lora_scaled_one_is_adapter_zero_is_base_and_restores(tiny_pair):
    ft, base = tiny_pair.finetuned, tiny_pair.base
    plain, base_lp = _last_logprobs(ft), _last_logprobs(base)
    assert (plain - base_lp).abs().max() > 1e-3
    with lora_scaled(ft.model, 1.0):
        torch.testing.assert_close(_last_logprobs(ft), plain)
    with lora_scaled(ft.model, 0.0):
        torch.testing.assert_close(_last_logprobs(ft), base_lp, atol=1e-5, rtol=0)
    with lora_scaled(ft.model, 2.0):
        doubled = _last_logprobs(ft)
    assert (doubled - plain).abs().max() > 1e-3
    before = [dict(m.scaling) for _, m in lora_modules(ft.model)]
    with pytest.raises(RuntimeError, match="boom"), lora_scaled(ft.model, 3.0):
        raise RuntimeError("boom")
    assert [dict(m.scaling) for _, m in lora_modules(ft.model)] == before
    torch.testing.assert_close(_last_logprobs(ft), plain)


def test_lora_scaled_filters_layers_and_kinds(tiny_pair):
    model = tiny_pair.finetuned.model
    everything = lora_modules(model)
    mlp = lora_modules(model, kinds=["mlp"])
    attention = lora_modules(model, kinds=["attention"], layers=(1, 1))
    assert mlp and all(n.endswith("down_proj") for n, _ in mlp)
    assert attention and all(".layers.1." in n and n.endswith(("q_proj", "v_proj")) for n, _ in attention)
    assert len(everything) == len(mlp) + 2 * len(attention)
    with lora_scaled(model, 0.0, kinds=["mlp"]) as n:
        assert n == len(mlp)
        assert all(v == 0 for _, m in mlp for v in m.scaling.values())
        assert all(v != 0 for _, m in attention for v in m.scaling.values())


def test_lora_scaled_needs_an_adapter(tiny_lm):
    with pytest.raises(ConfigError, match="LoRA"), lora_scaled(tiny_lm.model, 2.0):
        pass
