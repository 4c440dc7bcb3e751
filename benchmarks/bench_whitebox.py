"""White-box benchmarks: activation collection and KL vs plain forward passes; peak RSS vs corpus size.

Run: ``python benchmarks/bench_whitebox.py [--model smollm2-135m-instruct] [--texts 32]``.
Prints figures; nothing is asserted (targets: collection <= 1.1x forward, KL <= 1.15x two forwards,
flat peak RSS when the corpus grows 10x).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _pair(model: str):
    from lmdiff.models.pair import ModelPair

    return ModelPair(model, model, load="together")


def bench_ratios(model: str, n_texts: int, max_tokens: int, batch_size: int, trials: int) -> None:
    """Time plain forwards, activation collection and KL over the same tokens.

    The settings are interleaved and repeated ``trials`` times; each figure is the best trial, so
    a burst of load on a shared machine inflates neither side of a ratio.
    """
    from lmdiff.activations import collect_activations
    from lmdiff.corpora import load_corpus
    from lmdiff.interp.logprobs import per_token_kl

    pair = _pair(model)
    seqs = load_corpus("generic", limit=n_texts).encode(pair.base, max_tokens=max_tokens)
    layer = pair.base.resolve_layer(0.5)
    for _ in pair.base.iter_forward(seqs[:batch_size], batch_size=batch_size):  # warm-up
        pass

    def forward_to_layer() -> None:
        for side in ("base", "finetuned"):
            for _ in pair.side(side).iter_forward(seqs, batch_size=batch_size, layers=[layer], logits=False):
                pass

    def collect() -> None:
        with tempfile.TemporaryDirectory() as d:
            collect_activations(pair, seqs, [layer], Path(d) / "s", batch_size=batch_size, progress=False)

    def two_forwards() -> None:
        for side in ("base", "finetuned"):
            for b in pair.side(side).iter_forward(seqs, batch_size=batch_size):
                b.logprobs()

    def kl() -> None:
        per_token_kl(pair, seqs, batch_size=batch_size)

    best: dict[str, float] = {}
    for _ in range(trials):
        for name, fn in (("fwd_layer", forward_to_layer), ("collect", collect), ("fwd", two_forwards), ("kl", kl)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    n_tok = sum(len(s) for s in seqs)
    print(f"tokens: {n_tok} x 2 sides; layer {layer}; best of {trials} interleaved trials")
    print(f"forward to layer {layer} (both sides): {best['fwd_layer']:.2f}s; activation collection: "
          f"{best['collect']:.2f}s -> ratio {best['collect'] / best['fwd_layer']:.3f} (target <= 1.1)")
    print(f"two full forwards + log-softmax: {best['fwd']:.2f}s; KL: {best['kl']:.2f}s -> ratio "
          f"{best['kl'] / best['fwd']:.3f} (target <= 1.15)")


def bench_rss(model: str, n_texts: int, max_tokens: int) -> None:
    """Peak RSS of a collection subprocess at n and 10n texts, and its growth over the loaded model.

    The model's weights dominate the process size, so the figure that must stay flat is the peak
    minus the RSS measured after loading, tokenizing and one warm-up forward (safetensors weights
    are memory-mapped and only count once a forward pass has touched them).
    """
    for n in (n_texts, 10 * n_texts):
        code = (
            "import resource,tempfile;from pathlib import Path;"
            "from lmdiff.activations import collect_activations;from lmdiff.corpora import load_corpus;"
            f"from lmdiff.models.pair import ModelPair;p=ModelPair({model!r},{model!r},load='together');"
            f"s=load_corpus('generic',limit={n}).encode(p.base,max_tokens={max_tokens});"
            "[None for _ in p.base.iter_forward(s[:8],batch_size=8)];"  # page the mmapped weights in first
            "rss=int(open('/proc/self/statm').read().split()[1])*resource.getpagesize()//1024;"
            "d=tempfile.mkdtemp();"
            "collect_activations(p,s,[p.base.resolve_layer(0.5)],Path(d)/'s',shard_tokens=4096,progress=False);"
            "print(len(s),sum(map(len,s)),rss,resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        n_seq, n_tok, before, peak = map(int, out.stdout.strip().splitlines()[-1].split())
        print(f"collection of {n_seq} texts ({n_tok} tokens): RSS after loading {before / 1024:.0f} MiB, peak "
              f"{peak / 1024:.0f} MiB, added by collection {(peak - before) / 1024:.0f} MiB")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--texts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--rss-texts", type=int, default=16, help="the memory check runs this many texts, then 10x")
    ap.add_argument("--skip-rss", action="store_true")
    a = ap.parse_args()
    bench_ratios(a.model, a.texts, a.max_tokens, a.batch_size, a.trials)
    if not a.skip_rss:
        bench_rss(a.model, a.rss_texts, a.max_tokens)


if __name__ == "__main__":
    main()
