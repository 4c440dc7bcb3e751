"""Shared fixtures: tiny random models built here, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LMDIFF_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_model(path: Path, seed: int = 0, n_layers: int = 2, hidden: int = 64) -> Path:
    """A 2-layer Llama with random weights and the SmolLM2 tokenizer, saved to ``path``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    assert shipped is not None
    tok = AutoTokenizer.from_pretrained(shipped.local_dir(progress=False))
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def build_tiny_adapter(base_dir: Path, path: Path, seed: int = 1, scale: float = 0.5) -> Path:
    """A LoRA adapter over ``base_dir`` with non-zero random weights (so the finetune differs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    peft_model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny random Llama (2 layers, d=64) with the SmolLM2 tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter over ``tiny_model_dir``."""
    return build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("tiny") / "adapter")


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny model loaded as a LanguageModel (fp32, CPU)."""
    from lmdiff.models.loading import load_model

    return load_model(str(tiny_model_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_lm_in(tiny_model_dir: Path) -> Any:
    """Factory: the tiny model loaded on the CPU in a given dtype ("float32", "bfloat16"), one copy per dtype."""
    from lmdiff.models.loading import load_model

    loaded: dict[str, Any] = {}

    def get(dtype: str) -> Any:
        if dtype not in loaded:
            loaded[dtype] = load_model(str(tiny_model_dir), dtype=dtype, device="cpu")
        return loaded[dtype]

    return get


@pytest.fixture(scope="session")
def tiny_dirs(tiny_model_dir: Path, tiny_adapter_dir: Path) -> tuple[Path, Path]:
    """(base model dir, LoRA adapter dir) of the session's tiny random model."""
    return tiny_model_dir, tiny_adapter_dir


@pytest.fixture(scope="session")
def tiny_pair(tiny_dirs: tuple[Path, Path]) -> Any:
    """The tiny base model against itself plus the random LoRA adapter (shared weights), in float32 on any CPU."""
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

    base_dir, adapter_dir = tiny_dirs
    return ModelPair(ModelSpec(model=str(base_dir), dtype="float32"),
                     ModelSpec(model=str(base_dir), adapter=str(adapter_dir), dtype="float32"))


@pytest.fixture(scope="session")
def self_pair(tiny_dirs: tuple[Path, Path]) -> Any:
    """The tiny base model against itself (a null control), in float32 on any CPU."""
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

    base_dir, _ = tiny_dirs
    spec = ModelSpec(model=str(base_dir), dtype="float32")
    return ModelPair(spec, spec)
