"""The real shipped SmolLM2-135M-Instruct (converted once into the user cache)."""

import numpy as np
import pytest
import torch

from lmdiff.config import GenerationConfig

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def smol():
    from lmdiff.models.loading import load_model

    return load_model("smollm2-135m-instruct")


def test_coherent_reply(smol):
    out = smol.generate(["What is the capital of France?"], GenerationConfig(temperature=0, max_new_tokens=16))
    assert "Paris" in out[0][0].text


def test_batched_equals_unbatched_real(smol):
    texts = ["The quick brown fox jumps over the lazy dog.", "Hi", "Water boils at 100 degrees Celsius at sea level."]
    ctx = [smol.chat_text("Say something.")] * 3
    batched = smol.score(ctx, texts, batch_size=3)
    for c, t, b in zip(ctx, texts, batched, strict=True):
        np.testing.assert_allclose(b, smol.score([c], [t], batch_size=1)[0], atol=2e-4)
    seqs = [smol.encode(t) for t in texts]
    hb = smol.hidden_states(seqs, [0.5], batch_size=3)
    for s, h in zip(seqs, hb, strict=True):
        torch.testing.assert_close(h[14], smol.hidden_states([s], [0.5], batch_size=1)[0][14], atol=2e-4, rtol=1e-4)
    cfg = GenerationConfig(temperature=0, max_new_tokens=12, batch_size=3)
    prompts = ["Name a colour.", "What is 2+2?", "Say hello in French."]
    assert [g[0].text for g in smol.generate(prompts, cfg)] == \
        [smol.generate([p], cfg.model_copy(update={"batch_size": 1}))[0][0].text for p in prompts]
