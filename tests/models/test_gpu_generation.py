"""Generation on a CUDA GPU (skipped without one): lmdiff's decode loop against transformers' ``generate``."""

from __future__ import annotations

import pytest
import torch

from lmdiff.config import GenerationConfig

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PROMPTS = ["Hello there", "Tell me about the ocean and its waves", "What is 2+2?", "Name a colour", "Why?"]


def test_decode_on_cuda_matches_transformers_generate_and_drops_ended_rows(tiny_model_dir):
    from transformers import GenerationConfig as HfGenerationConfig

    from lmdiff.models.loading import load_model

    lm = load_model(str(tiny_model_dir), dtype="float32", device="cuda")
    assert lm.device.type == "cuda"
    cfg = GenerationConfig(temperature=0, max_new_tokens=16, repetition_penalty=5.0, batch_size=8)
    ours = lm.generate(PROMPTS, cfg)
    # transformers' generate on the same left-padded batch (one batch, prompts sorted longest first)
    encoded = [lm.encode_chat(p) for p in PROMPTS]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    width = max(map(len, encoded))
    pad = int(lm.tokenizer.pad_token_id)
    ids = torch.full((len(order), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, i in enumerate(order):
        ids[r, width - len(encoded[i]):] = torch.as_tensor(encoded[i])
        mask[r, width - len(encoded[i]):] = 1
    hf = HfGenerationConfig(max_new_tokens=16, do_sample=False, repetition_penalty=5.0, pad_token_id=pad,
                            eos_token_id=int(lm.tokenizer.eos_token_id))
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids.cuda(), attention_mask=mask.cuda(), generation_config=hf)
    new = out[:, width:].cpu()
    for r, i in enumerate(order):
        toks = new[r].tolist()
        cut = toks.index(hf.eos_token_id) if hf.eos_token_id in toks else len(toks)
        assert ours[i][0].text == lm.decode(toks[:cut], skip_special_tokens=True).strip()
    # sampled replies are reproducible on the GPU too
    samp = GenerationConfig(temperature=1.0, top_p=0.9, max_new_tokens=8, n=2, seed=3)
    assert [[g.text for g in p] for p in lm.generate(PROMPTS, samp)] == \
        [[g.text for g in p] for p in lm.generate(PROMPTS, samp)]
