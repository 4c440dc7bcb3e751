from __future__ import annotations

import pytest

from tests.helpers import tiny_causal_lm


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    try:
        path = shipped.local_dir(progress=False)
    except Exception as err:  # package missing
        pytest.skip(f"SmolLM2 tokenizer unavailable: {err}")
    return AutoTokenizer.from_pretrained(str(path))


def make_tiny_model(tokenizer, seed: int = 0):
    return tiny_causal_lm(tokenizer, "llama", seed=seed, hidden=32, max_positions=256, tie_word_embeddings=False)


@pytest.fixture
def tiny_factory(tokenizer):
    """A function returning a fresh, seeded 2-layer random Llama with the SmolLM2 vocabulary."""
    return lambda seed=0: make_tiny_model(tokenizer, seed)
