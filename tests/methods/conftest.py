"""Tiny random Llama pair (base dir + LoRA adapter) for white-box tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def build_tiny(root: Path) -> tuple[Path, Path]:
    """Save a 2-layer random Llama with the SmolLM2 tokenizer and a random LoRA adapter under ``root``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    try:
        tok_dir = shipped.local_dir(progress=False)
    except Exception as err:  # pragma: no cover - package missing
        pytest.skip(f"SmolLM2 tokenizer unavailable: {err}")
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    base_dir = root / "base"
    model.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj",
                                                                                    "down_proj"]))
    torch.manual_seed(1)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.2)
    adapter_dir = root / "adapter"
    peft_model.save_pretrained(adapter_dir)
    return base_dir, adapter_dir


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny(tmp_path_factory.mktemp("tiny_wb"))


@pytest.fixture(scope="session")
def tiny_pair(tiny_dirs: tuple[Path, Path]):
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

    base_dir, adapter_dir = tiny_dirs
    return ModelPair(str(base_dir), ModelSpec(model=str(base_dir), adapter=str(adapter_dir)))


@pytest.fixture(scope="session")
def self_pair(tiny_dirs: tuple[Path, Path]):
    from lmdiff.models.pair import ModelPair

    base_dir, _ = tiny_dirs
    return ModelPair(str(base_dir), str(base_dir))
