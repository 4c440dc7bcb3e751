"""Overhead of the local Ray executor against the in-process one, for per-token KL over one corpus.

Prints, measured in one run on this machine (ratios are what to compare; absolute times vary with load):
  * in-process KL time (torch on every core, and on one thread);
  * Ray KL time with warm actors (models already loaded: the steady state of a long run) and the ratio
    to the faster in-process setting (target <= 1.2x), plus the cold time (ray.init, actor start and
    model loading included);
  * Ray time and speed-up for 1, 2, ... workers up to the number of cores (scaling; on 2 cores little).
Every Ray result is checked to equal the in-process one exactly. The load average is printed before and
after: on a machine shared with other work, multi-threaded torch in one process suffers more from
oversubscription than single-threaded actors, which flatters Ray.

Usage: python benchmarks/bench_ray.py [--texts 32] [--max-tokens 96] [--chunk 4]
       [--base smollm2-135m-instruct] [--finetuned organism:caps]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--chunk", type=int, default=4, help="texts per shard")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--finetuned", default="organism:caps")
    args = ap.parse_args()
    os.environ.setdefault("LMDIFF_PROGRESS", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from lmdiff.corpora import load_corpus
    from lmdiff.methods.kl import kl_chunk
    from lmdiff.models.device import set_threads
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.recipe import pair_recipe
    from lmdiff.models.spec import ModelSpec
    from lmdiff.runs.chunks import map_chunks
    from lmdiff.runs.executor import LocalExecutor, RayExecutor, Worker

    cores = len(os.sched_getaffinity(0))
    set_threads(None)
    spec_b = ModelSpec.parse(args.base, dtype="float32")
    spec_f = ModelSpec.parse(args.finetuned, dtype="float32")
    pair = ModelPair(spec_b, spec_f, load="together")
    corpus = load_corpus("generic", pair, limit=args.texts, seed=0)
    seqs = corpus.encode(pair.base, max_tokens=args.max_tokens)
    n_tok = sum(len(s) for s in seqs)
    fn = functools.partial(kl_chunk, batch_size=args.batch, reverse=False)
    worker = Worker(pair, pair_recipe(pair))
    n_shards = (len(seqs) + args.chunk - 1) // args.chunk
    print(f"pair {spec_b.display_name} vs {spec_f.display_name}; {len(seqs)} texts, {n_tok} tokens, "
          f"{n_shards} shards of {args.chunk} texts; {cores} cores")

    tmp = Path(tempfile.mkdtemp(prefix="bench_ray-"))
    runs = iter(range(10**6))

    def timed(executor: object) -> tuple[float, pd.DataFrame]:
        t = time.perf_counter()
        df = map_chunks(seqs, fn, tmp / f"r{next(runs)}", args.chunk, worker, executor)  # type: ignore[arg-type]
        return time.perf_counter() - t, df

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    timed(LocalExecutor())  # warm-up (models loaded, kernels touched)
    t_local, ref = timed(LocalExecutor())
    print(f"in-process ({cores} threads): {t_local:6.2f} s  ({n_tok / t_local:6.1f} tok/s)", flush=True)
    set_threads(1)
    t_one, df = timed(LocalExecutor())
    set_threads(None)
    print(f"in-process (1 thread): {t_one:6.2f} s  ({n_tok / t_one:6.1f} tok/s)", flush=True)
    t_best = min(t_local, t_one)  # the fair baseline: the faster in-process setting on this machine now

    import ray

    default = RayExecutor()
    t_cold, df = timed(default)
    assert df.equals(ref), "Ray KL differs from in-process KL"
    n_default, opts = default.plan()
    t_warm, df = timed(default)
    assert df.equals(ref)
    print(f"ray ({n_default} workers x {opts.get('num_cpus')} CPU): warm {t_warm:6.2f} s  "
          f"ratio {t_warm / t_best:.2f}x the faster in-process setting (target <= 1.2x; "
          f"{t_warm / t_local:.2f}x in-process on {cores} threads); cold (ray.init + actors + model load) "
          f"{t_cold:6.2f} s, ratio {t_cold / t_best:.2f}x", flush=True)
    default.shutdown()

    print("scaling (warm actors):")
    for n in range(1, cores + 1):
        ex = RayExecutor(workers=n)
        timed(ex)  # start the actors and load the models
        t, df = timed(ex)
        assert df.equals(ref)
        print(f"  {n} worker(s) x {ex.plan()[1].get('num_cpus')} CPU: {t:6.2f} s  speed-up vs the faster "
              f"in-process setting {t_best / t:.2f}x", flush=True)
        ex.shutdown()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
