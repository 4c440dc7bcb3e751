"""Forward and generation throughput of the shipped model, against this CPU's measured matmul peak.

Prints, for several settings measured in one run (ratios are what to compare; absolute
numbers vary with machine load):
  * forward tokens/s (real tokens, padding excluded) and the share of the matmul peak it reaches
    (FLOPs per token x tokens/s / measured GFLOP/s in the same dtype);
  * generation tokens/s (batch 8, 48 new tokens);
  * peak resident memory.

Usage: python benchmarks/bench_forward.py [--texts 48] [--compile]
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import torch


def matmul_peak_gflops(dtype: torch.dtype, sizes: tuple[int, ...] = (512, 1024, 2048), trials: int = 5) -> float:
    """Best GFLOP/s over several square sizes and trials (a single short trial underestimates the peak)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        reps = max(1, int(2e9 // (2 * n**3)))
        for _ in range(trials):
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
            if dtype != torch.float32 and best < 20:  # emulated bf16: one trial is enough to show it
                break
    return best


def flops_per_token(cfg, mean_len: float) -> float:
    d, L, f, V = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size
    kv = d * cfg.num_key_value_heads // cfg.num_attention_heads
    per_layer = 2 * (d * d + 2 * d * kv + d * d) + 2 * 3 * d * f  # q,k,v,o + gated MLP
    attn = 2 * 2 * d * mean_len / 2  # QK^T and AV over half the context on average (causal)
    return L * (per_layer + attn) + 2 * d * V


def corpus(lm, n: int, seed: int = 0) -> list[list[int]]:
    from lmdiff.data.prompts import load_prompts

    rng = random.Random(seed)
    texts = [p.meta["reference"] for p in load_prompts("instructions").items][: n * 2]
    seqs = []
    for t in texts:
        ids = lm.encode(t)
        if len(ids) >= 16:
            seqs.append(ids[: rng.randint(16, 256)])
        if len(seqs) == n:
            break
    return seqs


def forward_tps(lm, seqs, batch_size: int, sort: bool) -> float:
    list(lm.iter_forward(seqs[:batch_size], batch_size=batch_size))  # warm-up
    t = time.perf_counter()
    for _ in lm.iter_forward(seqs, batch_size=batch_size, sort_by_length=sort):
        pass
    return sum(len(s) for s in seqs) / (time.perf_counter() - t)


def generation_tps(lm) -> float:
    from lmdiff.config import GenerationConfig

    prompts = ["Tell me about the ocean.", "Write a poem.", "What is 17*23?", "Describe a city.",
               "Give me advice on sleep.", "Why is the sky blue?", "Name three fruits.", "Explain gravity."]
    cfg = GenerationConfig(temperature=0, max_new_tokens=48, batch_size=8)
    t = time.perf_counter()
    out = lm.generate(prompts, cfg)
    return sum(g[0].n_tokens for g in out) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=48)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = ap.parse_args()
    from lmdiff.models.device import cpu_has_fast_bf16, set_threads
    from lmdiff.models.loading import load_model

    set_threads(None)
    rows = []
    peaks = {dt: matmul_peak_gflops(dt) for dt in (torch.float32, torch.bfloat16)}
    print(f"threads={torch.get_num_threads()} fast_bf16={cpu_has_fast_bf16()} "
          f"matmul peak: fp32 {peaks[torch.float32]:.0f} GFLOP/s, bf16 {peaks[torch.bfloat16]:.0f} GFLOP/s")
    lm = load_model("smollm2-135m-instruct", dtype="float32", device="cpu")
    seqs = corpus(lm, args.texts)
    mean_len = sum(map(len, seqs)) / len(seqs)
    fpt = flops_per_token(lm.config, mean_len)
    print(f"{len(seqs)} texts, mean {mean_len:.0f} tokens; {fpt / 1e6:.0f} MFLOP per token")

    def record(name: str, tps: float, dtype: torch.dtype) -> None:
        rows.append((name, tps, fpt * tps / 1e9 / peaks[dtype]))

    lm.core.config._attn_implementation = "eager"
    record("fp32, eager attention, unsorted batches (plain transformers)", forward_tps(lm, seqs, 8, False),
           torch.float32)
    lm.core.config._attn_implementation = "sdpa"
    record("fp32, SDPA, unsorted", forward_tps(lm, seqs, 8, False), torch.float32)
    record("fp32, SDPA, length-sorted batches (lmdiff default)", forward_tps(lm, seqs, 8, True), torch.float32)
    record("fp32, SDPA, length-sorted, batch 16", forward_tps(lm, seqs, 16, True), torch.float32)
    if args.compile:
        lm.model.forward = torch.compile(lm.model.forward, dynamic=True)
        forward_tps(lm, seqs, 8, True)
        record("fp32, SDPA, sorted, torch.compile", forward_tps(lm, seqs, 8, True), torch.float32)
    gen32 = generation_tps(load_model("smollm2-135m-instruct", dtype="float32", device="cpu"))
    lm16 = load_model("smollm2-135m-instruct", dtype="bfloat16", device="cpu")
    record("bf16, SDPA, length-sorted", forward_tps(lm16, seqs[:16], 8, True), torch.bfloat16)
    print(f"\n{'setting':62s} {'fwd tok/s':>10s} {'% of matmul peak':>17s}")
    for name, tps, frac in rows:
        emulated = name.startswith("bf16") and not cpu_has_fast_bf16()
        share = "n/a (bf16 emulated)" if emulated else f"{100 * frac:.0f}%"
        print(f"{name:62s} {tps:10.0f} {share:>17s}")
    print(f"\ngeneration (batch 8, 48 new tokens, fp32): {gen32:.0f} tok/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    from lmdiff.models.device import dtype_choice

    print("dtype=auto on this CPU:", dtype_choice("auto", torch.device("cpu")).reason)


if __name__ == "__main__":
    main()
