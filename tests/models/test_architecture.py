"""The architecture table: blocks, final norm, embeddings and head of each known family."""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from torch import nn

from lmdiff.errors import ConfigError
from lmdiff.models.architecture import call_in_float32, resolve_architecture

SMALL = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 2,
         "intermediate_size": 64, "vocab_size": 97, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

CASES = {
    "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, {}, "llama-like", "model.norm"),
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, {}, "llama-like", "model.norm"),
    "mistral": (tf.MistralConfig, tf.MistralForCausalLM, {}, "llama-like", "model.norm"),
    "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, {"head_dim": 16}, "llama-like", "model.norm"),
    "phi": (tf.PhiConfig, tf.PhiForCausalLM, {}, "phi", "model.final_layernorm"),
    "gpt_neox": (tf.GPTNeoXConfig, tf.GPTNeoXForCausalLM, {}, "gpt-neox", "gpt_neox.final_layer_norm"),
    "gpt2": (tf.GPT2Config, tf.GPT2LMHeadModel, {"n_embd": 32, "n_layer": 3, "n_head": 2}, "gpt2", "transformer.ln_f"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_family_resolves_to_its_modules(name):
    config_cls, model_cls, extra, family, norm_path = CASES[name]
    kwargs = {**SMALL, **extra} if name != "gpt2" else {**extra, "vocab_size": 97}
    model = model_cls(config_cls(**kwargs))
    arch = resolve_architecture(model)
    assert arch.family == family
    assert len(arch.layers) == 3
    assert arch.final_norm is model.get_submodule(norm_path)
    assert arch.unembed is model.get_output_embeddings()
    assert arch.embeddings is model.get_input_embeddings()
    # the head applied to the final norm of the last block's output gives the model's logits
    ids = torch.tensor([[3, 5, 7, 11]])
    captured = {}
    handle = arch.layers[-1].register_forward_hook(
        lambda _m, _i, out: captured.update(h=out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        logits = model(ids).logits
        handle.remove()
        torch.testing.assert_close(arch.unembed(arch.final_norm(captured["h"])), logits, atol=1e-5, rtol=1e-5)


def test_peft_wrapper_is_looked_through():
    from peft import LoraConfig, get_peft_model

    model = tf.LlamaForCausalLM(tf.LlamaConfig(**SMALL))
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert resolve_architecture(wrapped).layers is model.model.layers


def test_unknown_architecture_names_the_class():
    class Mystery(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2)])

    with pytest.raises(ConfigError, match="Mystery"):
        resolve_architecture(Mystery())


def test_call_in_float32_leaves_the_module_in_its_dtype():
    norm = nn.LayerNorm(8).to(torch.bfloat16)
    x = torch.randn(3, 8)
    out = call_in_float32(norm, x.bfloat16(), torch.bfloat16)
    assert out.dtype == torch.float32 and norm.weight.dtype == torch.bfloat16
    ref = nn.functional.layer_norm(x.bfloat16().double(), (8,), norm.weight.double(), norm.bias.double())
    torch.testing.assert_close(out.double(), ref, atol=1e-6, rtol=0)
