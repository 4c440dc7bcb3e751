"""Generation speed of the shipped model on this machine: transformers' ``generate`` vs lmdiff's decode loop.

Measured in one process, settings interleaved over several rounds so that machine load hits all
of them alike (the median round is printed). Every setting decodes the same prompts greedily, and
the script checks that each produces exactly the replies of transformers' ``generate``; tokens/s
counts the tokens of the replies (what a user gets), not padding or the steps of rows that ended.

* ``transformers generate, batch 8`` is what ``LanguageModel.generate`` did before
  :mod:`lmdiff.models.decoding` (every row stays in the batch until the longest ends);
* ``transformers generate, batch 32`` separates what a larger batch alone gives;
* ``lmdiff decode, batch B`` drops ended rows from the batch and its KV cache (``GenerationConfig.batch_size``
  defaults to 32).

Usage: python benchmarks/bench_generation.py [--prompts 32] [--max-new-tokens 128] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch


def hf_generate(lm: Any, prompts: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy replies through transformers' ``generate`` (left padding, length-sorted batches)."""
    from transformers import GenerationConfig as HfGenerationConfig

    gen_eos = lm.core.generation_config.eos_token_id
    extra = gen_eos if isinstance(gen_eos, list) else [] if gen_eos is None else [gen_eos]
    eos = sorted({int(lm.tokenizer.eos_token_id), *map(int, extra)})
    pad = int(lm.tokenizer.pad_token_id)
    hf = HfGenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, eos_token_id=eos)
    encoded = [lm.encode_chat(p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    out: list[str] = [""] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(idx):
                ids[r, width - len(encoded[i]) :] = torch.as_tensor(encoded[i])
                mask[r, width - len(encoded[i]) :] = 1
            new = lm.model.generate(input_ids=ids, attention_mask=mask, generation_config=hf)[:, width:]
            for r, i in enumerate(idx):
                toks = new[r].tolist()
                cut = next((j for j, t in enumerate(toks) if t in eos), len(toks))
                out[i] = lm.decode(toks[:cut], skip_special_tokens=True).strip()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    from lmdiff.config import GenerationConfig
    from lmdiff.data.prompts import load_prompts
    from lmdiff.models.device import set_threads
    from lmdiff.models.loading import load_model

    set_threads(args.threads)
    lm = load_model("smollm2-135m-instruct", dtype="float32", device="cpu")
    prompts = [p.prompt for p in load_prompts("chat").items][: args.prompts]
    print(f"threads={torch.get_num_threads()}, {len(prompts)} chat prompts, greedy, "
          f"max_new_tokens={args.max_new_tokens}, fp32")

    def lmdiff_gen(bs: int) -> list[str]:
        cfg = GenerationConfig(temperature=0, max_new_tokens=args.max_new_tokens, batch_size=bs)
        return [g[0].text for g in lm.generate(prompts, cfg)]

    settings = {
        "transformers generate, batch 8 (before)": lambda: hf_generate(lm, prompts, args.max_new_tokens, 8),
        "transformers generate, batch 32": lambda: hf_generate(lm, prompts, args.max_new_tokens, 32),
        "lmdiff decode, batch 8": lambda: lmdiff_gen(8),
        "lmdiff decode, batch 16": lambda: lmdiff_gen(16),
        "lmdiff decode, batch 32": lambda: lmdiff_gen(32),
    }
    times: dict[str, list[float]] = {k: [] for k in settings}
    replies: dict[str, list[str]] = {}
    for rnd in range(args.rounds):
        for name, fn in settings.items():
            t = time.perf_counter()
            replies[name] = fn()
            times[name].append(time.perf_counter() - t)
        print(f"round {rnd + 1}/{args.rounds} done", flush=True)
    reference = replies["transformers generate, batch 8 (before)"]
    n_tokens = sum(len(lm.encode(r, add_special_tokens=False)) for r in reference)
    base = statistics.median(times["transformers generate, batch 8 (before)"])
    print(f"\n{'setting':42s} {'median s':>9s} {'tok/s':>7s} {'vs before':>10s} {'identical replies':>18s}")
    for name in settings:
        med = statistics.median(times[name])
        same = sum(a == b for a, b in zip(replies[name], reference, strict=True))
        print(f"{name:42s} {med:9.1f} {n_tokens / med:7.1f} {base / med:9.2f}x {same:>9d}/{len(reference)}")


if __name__ == "__main__":
    main()
