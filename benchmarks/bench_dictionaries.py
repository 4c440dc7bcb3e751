"""Training throughput and memory of the dictionary trainer on a synthetic activation store.

Prints, per run (each in its own process, so peak RSS is its own):
  * training tokens/s of a BatchTopK SAE (one side) and a crosscoder (two sides);
  * the split of training time between waiting for batches (store reads, shuffling) and optimiser
    steps, and so whether training is compute- or I/O-bound;
  * peak RSS with the store at 1x and at 10x its size (same training steps): streaming shard by
    shard keeps it flat, a trainer that loads the store would grow 10x.

Usage: python benchmarks/bench_dictionaries.py [--tokens 32768] [--d 576] [--latents 1024] [--k 32]
       [--steps 40] [--batch 512] [--shard-tokens 16384]
Defaults mirror the CPU defaults on smollm2-135m (d=576, 1024 latents, k=32, batch 512). For a GPU, pass
larger --latents/--batch (see README "Dictionary methods").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_store(path: Path, n_tokens: int, d: int, shard_tokens: int, seed: int = 0) -> None:
    """A synthetic float32 store of one layer (sequences of 128 tokens), generated through memory maps."""
    from lmdiff.activations import store_from_arrays

    rng = np.random.default_rng(seed)
    src = path.with_name(path.name + "-src")
    src.mkdir(parents=True, exist_ok=True)
    base = np.lib.format.open_memmap(src / "base.npy", mode="w+", dtype=np.float32, shape=(n_tokens, d))
    ft = np.lib.format.open_memmap(src / "ft.npy", mode="w+", dtype=np.float32, shape=(n_tokens, d))
    for a in range(0, n_tokens, 16384):
        b = min(a + 16384, n_tokens)
        base[a:b] = rng.standard_normal((b - a, d), dtype=np.float32)
        ft[a:b] = base[a:b] + 0.1 * rng.standard_normal((b - a, d), dtype=np.float32)
    store_from_arrays(path, {"base": {0: base}, "finetuned": {0: ft}}, [128] * (n_tokens // 128),
                      shard_tokens=shard_tokens)
    del base, ft
    for f in src.iterdir():
        f.unlink()
    src.rmdir()


def child(args: argparse.Namespace) -> None:
    """Train once on the store at ``args.store`` and print one JSON line."""
    import torch

    from lmdiff.activations import ActivationStore
    from lmdiff.dictionaries import ActivationStream, TrainSettings, train_dictionary

    torch.set_num_threads(max(1, torch.get_num_threads()))
    store = ActivationStore(args.store)
    settings = TrainSettings(n_latents=args.latents, k=args.k, batch_size=args.batch,
                             train_tokens=args.batch * args.steps, buffer_tokens=args.buffer,
                             checkpoint_every=10**9)
    view = "paired" if args.kind == "crosscoder" else "diff"
    stream = ActivationStream(store, 0, view, batch_size=args.batch, buffer_tokens=args.buffer)
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        td = train_dictionary(stream, settings, out, progress=False)
        wall = time.perf_counter() - t
    timing = td.timing or {}
    print(json.dumps({"kind": args.kind, "store_tokens": store.n_tokens, "shards": store.n_shards,
                      "wall_s": wall, "tokens_per_s": args.batch * args.steps / wall, **timing,
                      "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Build the stores, run each configuration in a child process, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=32768, help="store size at 1x")
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--latents", type=int, default=1024)
    ap.add_argument("--k", type=float, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--buffer", type=int, default=16384)
    ap.add_argument("--shard-tokens", type=int, default=16384)
    ap.add_argument("--child", choices=["sae", "crosscoder"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.kind = args.child
        child(args)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (1, 10):
            path = Path(tmp) / f"store{scale}x"
            t = time.perf_counter()
            make_store(path, args.tokens * scale, args.d, args.shard_tokens)
            print(f"store {scale}x: {args.tokens * scale} tokens x 2 sides, d={args.d} "
                  f"({time.perf_counter() - t:.1f}s to write)", flush=True)
            for kind in ("sae", "crosscoder"):
                cmd = [sys.executable, __file__, "--child", kind, "--store", str(path)] + [
                    f"--{k}={v}" for k, v in (("d", args.d), ("latents", args.latents), ("k", args.k),
                                              ("steps", args.steps), ("batch", args.batch), ("buffer", args.buffer))]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                rows.append({"scale": f"{scale}x", **json.loads(out)})
    print(f"\n{'store':>6} {'kind':>10} {'shards':>6} {'tokens/s':>10} {'read s':>7} {'step s':>7} "
          f"{'bound':>8} {'peak RSS MB':>11}")
    for r in rows:
        bound = "I/O" if r["read_s"] > r["step_s"] else "compute"
        print(f"{r['scale']:>6} {r['kind']:>10} {r['shards']:>6} {r['tokens_per_s']:>10.0f} {r['read_s']:>7.2f} "
              f"{r['step_s']:>7.2f} {bound:>8} {r['peak_rss_mb']:>11.0f}")
    for kind in ("sae", "crosscoder"):
        a, b = (next(r for r in rows if r["kind"] == kind and r["scale"] == s) for s in ("1x", "10x"))
        print(f"{kind}: peak RSS 10x / 1x = {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
