"""Quantized copies on CPU (optimum-quanto): a precision pair's KL, flip rate and pair structure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from lmdiff.data.prompts import PromptItem
from lmdiff.interp.logprobs import kl_rows
from lmdiff.interp.precision import final_number, is_precision_pair, precision_metrics
from lmdiff.models.spec import ModelSpec
from tests.helpers import build_tiny_model

needs_quanto = pytest.mark.skipif(
    importlib.util.find_spec("optimum") is None or importlib.util.find_spec("optimum.quanto") is None,
    reason="optimum-quanto is not installed (pip install 'lmdiff[quant]')",
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog, and the dog does not mind at all.",
    "Water is made of hydrogen and oxygen; it boils at one hundred degrees Celsius at sea level.",
]


def test_final_number_and_precision_pair() -> None:
    assert final_number("so 3 + 4 = 7, and the answer is 1,250.") == "1250"
    assert final_number("It takes 42.0 days") == "42"
    assert final_number("no digits") is None
    a = ModelSpec(model="m")
    assert is_precision_pair(a, ModelSpec(model="m", quantization="int8"))
    assert is_precision_pair(a, ModelSpec(model="m", dtype="bfloat16"))
    assert not is_precision_pair(a, ModelSpec(model="m"))
    assert not is_precision_pair(a, ModelSpec(model="other", quantization="int8"))


def test_token_kl_is_zero_for_equal_and_positive_otherwise() -> None:
    lp = torch.log_softmax(torch.randn(5, 11), -1)
    assert torch.allclose(kl_rows(lp, lp), torch.zeros(5))
    assert (kl_rows(lp, torch.log_softmax(torch.randn(5, 11), -1)) > 0).all()


def _mean_kl(base, other, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    seqs = [base.encode(t) for t in texts]
    lb = base.next_token_logprobs(seqs)
    lo = other.next_token_logprobs(seqs)
    return float(torch.cat([kl_rows(a, b) for a, b in zip(lb, lo, strict=True)]).mean())


@needs_quanto
def test_int8_is_close_and_int4_is_further(tiny_model_dir: Path, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    from lmdiff.models.loading import load_model

    q8 = load_model(str(tiny_model_dir), dtype="float32", device="cpu", quantization="int8")
    q4 = load_model(str(tiny_model_dir), dtype="float32", device="cpu", quantization="int4")
    assert type(q8.layers[0].self_attn.q_proj).__module__.startswith("optimum.quanto")
    kl8 = _mean_kl(tiny_lm, q8, TEXTS)
    kl4 = _mean_kl(tiny_lm, q4, TEXTS)
    assert 0 < kl8 < 1e-4
    assert kl4 > 10 * kl8


def _talking_tiny_model(path: Path) -> Path:
    """A tiny random model whose greedy replies are visible text (special and blank tokens' embeddings zeroed)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    build_tiny_model(path, seed=3)
    tok = AutoTokenizer.from_pretrained(path)
    blank = [i for i in range(len(tok)) if not tok.decode([i]).strip()]
    special = sorted(set(tok.all_special_ids) | set(blank))
    weights = load_file(path / "model.safetensors")
    key = next(k for k in weights if k.endswith("embed_tokens.weight"))
    weights[key][special] = 0.0
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    return path


@needs_quanto
def test_precision_pair_structure_and_metrics(tmp_path: Path) -> None:
    from lmdiff.models.loading import load_model
    from lmdiff.models.pair import ModelPair

    model_dir = _talking_tiny_model(tmp_path / "model")
    pair = ModelPair(str(model_dir), ModelSpec(model=str(model_dir), quantization="int8"))
    assert not pair.shares_weights and not pair.is_self_pair
    assert pair.effective_policy() != "same"  # the quantized side is its own model
    assert is_precision_pair(pair.base_spec, pair.finetuned_spec)

    items = [
        PromptItem(id="c0", prompt="Tell me about rivers."),
        PromptItem(id="m0", prompt="What is 12 times 3?", category="math"),
    ]
    base = load_model(str(model_dir), dtype="float32", device="cpu")
    q4 = load_model(str(model_dir), dtype="float32", device="cpu", quantization="int4")
    same = precision_metrics(base, base, items, max_new_tokens=6)
    assert same.flip_rate == 0.0 and same.math_flip_rate == 0.0 and same.n_math == 1
    assert same.mean_token_kl is not None and same.mean_token_kl < 1e-9 and same.n_tokens > 0
    m = precision_metrics(base, lambda: q4, items, max_new_tokens=6)
    assert m.n_prompts == 2 and len(m.rows) == 2 and m.mean_token_kl is not None and m.mean_token_kl > 0
    assert set(m.rows.columns) >= {"answer_base", "answer_finetuned", "flipped", "number_flipped", "mean_kl"}
