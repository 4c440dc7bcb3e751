"""The real shipped SmolLM2-135M-Instruct (converted once into the user cache)."""

import numpy as np
import pytest
import torch

from lmdiff.config import GenerationConfig
from lmdiff.models.numerics import hidden_tolerance, score_tolerance

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def smol():
    from lmdiff.models.loading import load_model

    return load_model("smollm2-135m-instruct", dtype="float32")


@pytest.fixture(scope="module")
def smol_bf16():
    from lmdiff.models.loading import load_model

    return load_model("smollm2-135m-instruct", dtype="bfloat16")


def test_coherent_reply(smol):
    out = smol.generate(["What is the capital of France?"], GenerationConfig(temperature=0, max_new_tokens=16))
    assert "Paris" in out[0][0].text


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batched_equals_unbatched_real(request, dtype):
    smol = request.getfixturevalue("smol" if dtype == "float32" else "smol_bf16")
    texts = ["The quick brown fox jumps over the lazy dog.", "Hi", "Water boils at 100 degrees Celsius at sea level."]
    ctx = [smol.chat_text("Say something.")] * 3
    batched = smol.score(ctx, texts, batch_size=3)
    for c, t, b in zip(ctx, texts, batched, strict=True):
        np.testing.assert_allclose(b, smol.score([c], [t], batch_size=1)[0], atol=score_tolerance(dtype), rtol=0)
    seqs = [smol.encode(t) for t in texts]
    hb = smol.hidden_states(seqs, [0.5], batch_size=3)
    atol, rtol = hidden_tolerance(dtype)
    for s, h in zip(seqs, hb, strict=True):
        torch.testing.assert_close(h[14], smol.hidden_states([s], [0.5], batch_size=1)[0][14], atol=atol, rtol=rtol)


def test_batched_generation_equals_unbatched_real(smol):
    # greedy decoding in float32; in bf16 a near-tie between two tokens may break either way with the batch
    cfg = GenerationConfig(temperature=0, max_new_tokens=12, batch_size=3)
    prompts = ["Name a colour.", "What is 2+2?", "Say hello in French."]
    assert [g[0].text for g in smol.generate(prompts, cfg)] == \
        [smol.generate([p], cfg.model_copy(update={"batch_size": 1}))[0][0].text for p in prompts]


def test_bf16_scores_are_close_to_fp32_real(smol, smol_bf16):
    # the float32 head keeps bf16 scores near the float32 ones (bf16 logits alone were off by up to 0.1 nats)
    ctx, text = smol.chat_text("Say something."), "Water boils at 100 degrees Celsius at sea level."
    a, b = smol.score([ctx], [text])[0], smol_bf16.score([ctx], [text])[0]
    assert np.abs(a - b).mean() < 0.1
