"""Named corpora: the pair-replies corpus holds each prompt with both models' own replies."""

from __future__ import annotations

import pytest

from lmdiff.config import GenerationConfig
from lmdiff.corpora import load_corpus
from lmdiff.data.prompts import load_prompts
from lmdiff.errors import ConfigError


def test_pair_replies_holds_each_prompt_with_the_base_reply_then_the_finetuned_one(tiny_pair, tmp_path, monkeypatch):
    corpus = load_corpus("pair-replies", tiny_pair, limit=6, seed=3, cache_dir=tmp_path, reply_tokens=5)
    assert corpus.name == "pair-replies" and len(corpus) == 12 and corpus.templated
    assert corpus.describe()["prompts"] == 6
    prompts = [t.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0] for t in corpus.texts]
    assert prompts[:6] == prompts[6:]  # the same prompts, in the same order, in both halves
    pool = set(load_prompts("chat").texts) | set(load_prompts("instructions").texts)
    assert set(prompts) <= pool
    greedy = GenerationConfig(temperature=0.0, max_new_tokens=5, seed=3)
    base = [g[0].text for g in tiny_pair.base.generate(prompts[:6], greedy)]
    ft = [g[0].text for g in tiny_pair.finetuned.generate(prompts[:6], greedy)]
    assert base != ft  # the random adapter changes the greedy replies, so the halves can be told apart
    for text, reply in zip(corpus.texts, base + ft, strict=True):
        assert f"<|im_start|>assistant\n{reply}" in text

    def no_generation(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("replies were generated again instead of read from the cache")

    monkeypatch.setattr(type(tiny_pair.base), "generate", no_generation)
    again = load_corpus("pair-replies", tiny_pair, limit=6, seed=3, cache_dir=tmp_path, reply_tokens=5)
    assert again.content_hash == corpus.content_hash


def test_pair_replies_without_a_pair_says_it_needs_one():
    with pytest.raises(ConfigError, match="needs a model pair"):
        load_corpus("pair-replies")
