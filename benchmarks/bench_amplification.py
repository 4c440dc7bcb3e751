"""Cost of amplified sampling and of the default ``amplification`` method on this CPU.

Prints, from one run (ratios are what to compare; absolute numbers vary with machine load):
  * generated tokens/s of ordinary sampling from the finetune and of logit-difference amplified
    sampling (alpha = 2: both models step, each with its KV cache) on the same prompts and seeds;
  * tokens/s of LoRA-scaled sampling (scale 2) when the finetune is an adapter;
  * wall time of the default amplification method (``lmdiff diff BASE FT --methods amplification``).

Usage: python benchmarks/bench_amplification.py [--base smollm2-135m-instruct] [--finetuned organism:ocean-topic]
       [--prompts 8] [--tokens 48] [--skip-method]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from lmdiff.amplify import amplified_generate, lora_scaled
from lmdiff.config import GenerationConfig, validate
from lmdiff.data.prompts import load_prompts
from lmdiff.models.pair import ModelPair


def _rate(fn: Callable[[], list[list[Any]]]) -> tuple[float, int, float]:
    t = time.perf_counter()
    outs = fn()
    wall = time.perf_counter() - t
    n = sum(g.n_tokens for per in outs for g in per)
    return n / wall, n, wall


def main() -> None:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--finetuned", default="organism:ocean-topic")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--skip-method", action="store_true")
    args = ap.parse_args()
    pair = ModelPair(args.base, args.finetuned)
    prompts = load_prompts("chat").subset(args.prompts, 0).texts
    gen = GenerationConfig(max_new_tokens=args.tokens, temperature=1.0, top_p=0.9, seed=0, batch_size=8)
    ft, base = pair.finetuned, pair.base
    ft.generate(prompts[:1], gen.model_copy(update={"max_new_tokens": 2}))  # warm-up
    rows = [("ordinary (finetune)", _rate(lambda: ft.generate(prompts, gen))),
            ("amplified alpha=2", _rate(lambda: amplified_generate(ft, base, prompts, gen, 2.0)))]
    if pair.shares_weights:
        def scaled() -> list[list[Any]]:
            with lora_scaled(ft.model, 2.0):
                return ft.generate(prompts, gen)

        rows.append(("LoRA scale 2", _rate(scaled)))
    print(f"{args.base} vs {args.finetuned}: {len(prompts)} prompts, up to {args.tokens} new tokens, batch 8")
    ref = rows[0][1][0]
    for name, (rate, n, wall) in rows:
        print(f"  {name:22s} {rate:7.1f} tokens/s  ({n} tokens in {wall:.1f} s; {rate / ref:.2f}x ordinary)")
    if args.skip_method:
        return
    from lmdiff.diff import run_diff
    from lmdiff.run_config import DiffRunConfig

    cfg = validate(DiffRunConfig, {"base": pair.base_spec, "finetuned": pair.finetuned_spec,
                                   "methods": ["amplification"]})
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        run_diff(cfg, out)
        print(f"  default amplification method: {time.perf_counter() - t:.1f} s wall")


if __name__ == "__main__":
    main()
