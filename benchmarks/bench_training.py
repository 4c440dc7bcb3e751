"""Training speed on this machine: LoRA training tokens/s, and time to build each zoo organism.

Usage:
    python benchmarks/bench_training.py            # tokens/s (a few steps) + recorded build times
    python benchmarks/bench_training.py --steps 8 --batch-size 4 --seq-len 192

The tokens/s part trains the default recipe's LoRA (all linear layers, r=8) on the shipped
SmolLM2-135M-Instruct for a few optimizer steps on self-distilled-like chat examples of about
``--seq-len`` tokens. The build-time part prints the timings each prebuilt zoo organism recorded
when it was built (``rates.json`` -> ``timing_s``, ``training_log.json``); pass ``--build NAME`` to
time a fresh build into a temporary directory instead.
"""

from __future__ import annotations

import argparse
import json
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


def print_build_times() -> None:
    from lmdiff.organisms.zoo import RECIPES, find_organism

    print("Zoo build times (recorded at build time on this kind of machine):")
    print(f"  {'organism':18s} {'examples':>8s} {'steps':>6s} {'tokens/s':>9s} {'train s':>8s} {'total s':>8s}")
    for name in RECIPES:
        d = find_organism(name)
        if d is None or not (d / "rates.json").exists():
            print(f"  {name:18s} (not built)")
            continue
        rates = json.loads((d / "rates.json").read_text())
        log = json.loads((d / "training_log.json").read_text())
        recipe = json.loads((d / "recipe.json").read_text())
        t = rates["timing_s"]
        print(
            f"  {name:18s} {recipe['n_examples']:8d} {log['steps']:6d} {log['tokens_per_s']:9.0f} "
            f"{t['train']:8.0f} {t['total']:8.0f}"
        )


def time_build(name: str) -> None:
    from lmdiff.organisms.build import build_organism

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        build_organism(name, out_dir=Path(tmp) / name, resume=False, progress=False)
        print(f"built {name} in {time.perf_counter() - t:.0f} s (including self-distillation if not cached)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=192)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--build", action="append", default=[], help="time a fresh build of this organism")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    if not args.skip_train:
        bench_tokens_per_s(args.steps, args.batch_size, args.grad_accum, args.seq_len, args.threads)
    print_build_times()
    for name in args.build:
        time_build(name)


if __name__ == "__main__":
    main()
