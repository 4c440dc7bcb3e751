from __future__ import annotations

import pytest
import torch


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
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def tiny_factory(tokenizer):
    """A function returning a fresh, seeded 2-layer random Llama with the SmolLM2 vocabulary."""
    return lambda seed=0: make_tiny_model(tokenizer, seed)
