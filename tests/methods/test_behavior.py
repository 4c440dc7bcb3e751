"""End-to-end: the ``behavior`` method on a tiny random model pair through ``run_diff``."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lmdiff.models.registry import get_shipped

    try:
        tok = AutoTokenizer.from_pretrained(str(get_shipped("smollm2-135m-instruct").local_dir(progress=False)))
    except Exception as err:
        pytest.skip(f"SmolLM2 tokenizer unavailable: {err}")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    d = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_behavior_method_self_pair(tiny_dir, tmp_path) -> None:
    from lmdiff.config import DiffRunConfig
    from lmdiff.diff import run_diff
    from lmdiff.models.spec import ModelSpec

    cfg = DiffRunConfig(
        base=ModelSpec(model=str(tiny_dir)),
        finetuned=ModelSpec(model=str(tiny_dir)),
        methods=["behavior"],
        method={
            "behavior": {
                "n_prompts": 8,
                "n_per_prompt": 2,
                "max_new_tokens": 8,
                "embedder": "hashing",
                "global_n_perm": 9,
                "n_perm": 99,
                "use_llm": False,
            }
        },
    )
    run = run_diff(cfg, tmp_path / "run")
    res = json.loads((run.path / "results.json").read_text())
    entry = res["methods"]["behavior"] if "methods" in res else res["behavior"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["n_prompts"] == 8 and h["n_replies"] == 32
    assert h["n_discovery_prompts"] + h["n_validation_prompts"] == 8
    assert h["n_validated"] == 0
    html = (run.path / "report.html").read_text()
    assert "global tests" in html and "failed validation" in html
