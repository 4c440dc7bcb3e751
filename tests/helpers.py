"""Tiny random models of several architecture families, built in tests (never downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAMILIES = ("llama", "gpt2", "gpt_neox", "qwen2")
#: LoRA target modules per family (attention and MLP output projections).
LORA_TARGETS = {
    "llama": ["q_proj", "v_proj", "down_proj"],
    "qwen2": ["q_proj", "v_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense_4h_to_h"],
}


def smollm2_tokenizer() -> Any:
    """The shipped SmolLM2 tokenizer."""
    from transformers import AutoTokenizer

    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    assert shipped is not None
    return AutoTokenizer.from_pretrained(shipped.local_dir(progress=False))


def tiny_causal_lm(
    tokenizer: Any, family: str = "llama", *, seed: int = 0, n_layers: int = 2, hidden: int = 64,
    n_heads: int = 4, n_kv_heads: int = 2, max_positions: int = 512, tie_word_embeddings: bool = True,
) -> Any:
    """A random causal LM of ``family`` (llama, gpt2, gpt_neox, qwen2) over ``tokenizer``'s vocabulary."""
    import torch
    import transformers as tf

    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id, "vocab_size": len(tokenizer),
               "tie_word_embeddings": tie_word_embeddings}
    if family in ("llama", "qwen2"):
        config_cls, model_cls = ((tf.LlamaConfig, tf.LlamaForCausalLM) if family == "llama"
                                 else (tf.Qwen2Config, tf.Qwen2ForCausalLM))
        cfg = config_cls(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=n_layers,
                         num_attention_heads=n_heads, num_key_value_heads=n_kv_heads,
                         max_position_embeddings=max_positions, **special)
    elif family == "gpt2":
        config_cls, model_cls = tf.GPT2Config, tf.GPT2LMHeadModel
        cfg = config_cls(n_embd=hidden, n_layer=n_layers, n_head=n_heads, n_positions=max_positions, **special)
    elif family == "gpt_neox":
        config_cls, model_cls = tf.GPTNeoXConfig, tf.GPTNeoXForCausalLM
        cfg = config_cls(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=n_layers,
                         num_attention_heads=n_heads, max_position_embeddings=max_positions, **special)
    else:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    return model_cls(cfg).eval()


def build_tiny_model(path: Path, seed: int = 0, n_layers: int = 2, hidden: int = 64, family: str = "llama") -> Path:
    """A random model of ``family`` (default a 2-layer Llama) with the SmolLM2 tokenizer, saved to ``path``."""
    tok = smollm2_tokenizer()
    model = tiny_causal_lm(tok, family, seed=seed, n_layers=n_layers, hidden=hidden)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def build_perturbed_copy(base_dir: Path, path: Path, seed: int = 1, scale: float = 0.1) -> Path:
    """A copy of the model in ``base_dir`` with Gaussian noise (``scale`` x each tensor's std) on every weight."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            std = float(p.float().std()) if p.numel() > 1 else 1.0
            p.add_(torch.randn(p.shape, generator=gen) * scale * max(std, 1e-3))
    model.save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(path)
    return path


def build_tiny_adapter(base_dir: Path, path: Path, seed: int = 1, scale: float = 0.5, family: str = "llama") -> Path:
    """A LoRA adapter over ``base_dir`` with non-zero random weights (so the finetune differs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS[family]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    peft_model.save_pretrained(path, safe_serialization=True)
    return path
