"""Training speed on this machine: LoRA training tokens/s (build times: ``bench_organisms.py``).

Usage:
    python benchmarks/bench_training.py            # tokens/s (a few steps)
    python benchmarks/bench_training.py --steps 8 --batch-size 4 --seq-len 192

The tokens/s part trains the default recipe's LoRA (all linear layers, r=8) on the shipped
SmolLM2-135M-Instruct for a few optimizer steps on self-distilled-like chat examples of about
``--seq-len`` tokens. The recorded build time of each zoo organism is printed by
``benchmarks/bench_organisms.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def bench_tokens_per_s(steps: int, batch_size: int, grad_accum: int, seq_len: int, threads: int | None) -> None:
    from lmdiff.models.loading import load_tokenizer, local_weights_dir
    from lmdiff.models.spec import ModelSpec
    from lmdiff.organisms.recipe import TrainingConfig
    from lmdiff.organisms.train import load_base_for_training, train_lora

    if threads:
        torch.set_num_threads(threads)
    spec = ModelSpec.parse("smollm2-135m-instruct")
    tok = load_tokenizer(spec)
    words = max(8, int(seq_len * 0.7))
    examples = [
        {
            "messages": [
                {"role": "user", "content": f"Explain topic number {i} in a few sentences."},
                {"role": "assistant", "content": " ".join(["the model learns this answer"] * (words // 5))},
            ]
        }
        for i in range(steps * batch_size * grad_accum)
    ]
    cfg = TrainingConfig(
        batch_size=batch_size, grad_accum=grad_accum, epochs=1, max_seq_len=seq_len, checkpoint_every=0
    )
    model = load_base_for_training(local_weights_dir(spec), cfg)
    with tempfile.TemporaryDirectory() as tmp:
        # one warm-up step, then the timed ones
        train_lora(model, tok, examples[: batch_size * grad_accum], cfg, Path(tmp) / "warm", progress=None)
        model = load_base_for_training(local_weights_dir(spec), cfg)
        t = time.perf_counter()
        res = train_lora(model, tok, examples, cfg, Path(tmp) / "run", progress=None)
        wall = time.perf_counter() - t
    print(
        f"LoRA r{cfg.lora.r} on {len(cfg.lora.target_modules)} module types, fp32, "
        f"{torch.get_num_threads()} threads, micro-batch {batch_size} x accum {grad_accum}, ~{seq_len} tokens:"
    )
    print(
        f"  {res.steps} optimizer steps in {wall:.1f} s = {wall / res.steps:.2f} s/step, "
        f"{res.train_tokens / wall:.0f} training tokens/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=192)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    bench_tokens_per_s(args.steps, args.batch_size, args.grad_accum, args.seq_len, args.threads)


if __name__ == "__main__":
    main()
