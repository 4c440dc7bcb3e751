"""Null controls of the behaviour pipeline on the real shipped model (issue 8, items 8 and 9).

1. Self-pair: smollm2-135m-instruct against itself, the two sides sampled with independent
   seeds, over several run seeds; prints the share of seeds where any hypothesis survives FDR
   (target: at most 5%).
2. Near-null: the model against its int8 copy (optimum-quanto on CPU); prints the share of
   hypotheses surviving, the greedy answer flip rate and the mean token KL.

Usage::

    python benchmarks/bench_behavior_null.py --seeds 5 --n-prompts 16 --out /tmp/bench-behavior-null
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

MODEL = "smollm2-135m-instruct"


def _run(out: Path, seed: int, finetuned: Any, settings: dict[str, Any]) -> dict[str, Any]:
    from lmdiff.diff import run_diff
    from lmdiff.models.spec import ModelSpec
    from lmdiff.run_config import DiffRunConfig

    cfg = DiffRunConfig(
        base=ModelSpec(model=MODEL),
        finetuned=finetuned,
        methods=["behavior"],
        seed=seed,
        generation={"seed": seed},
        method={"behavior": settings},
    )
    run = run_diff(cfg, out)
    res = json.loads((run.path / "results.json").read_text())
    entry = res["methods"]["behavior"] if "methods" in res else res["behavior"]
    if entry.get("status") != "ok":
        raise RuntimeError(f"behavior failed: {entry}")
    return dict(entry["headline"])


def main() -> None:
    """Run the self-pair over seeds, then the int8 pair once, and print the figures."""
    from lmdiff.models.spec import ModelSpec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-prompts", type=int, default=16)
    ap.add_argument("--n-per-prompt", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 near-null")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-behavior-null"))
    args = ap.parse_args()
    settings: dict[str, Any] = {
        "n_prompts": args.n_prompts,
        "n_per_prompt": args.n_per_prompt,
        "max_new_tokens": args.max_new_tokens,
        "global_n_perm": 99,
        "n_perm": 999,
        "use_llm": False,
    }
    hits, rows = 0, []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        t = time.perf_counter()
        h = _run(args.out / f"self-{seed}", seed, ModelSpec(model=MODEL), settings)
        hits += h["n_validated"] > 0
        rows.append((seed, h["n_validated"], h["n_hypotheses_tested"], h["global_auc"], h["global_pvalue"]))
        print(
            f"self seed {seed}: {h['n_validated']}/{h['n_hypotheses_tested']} validated, global AUC "
            f"{h['global_auc']:.3f} (p={h['global_pvalue']:.3f}), {time.perf_counter() - t:.0f}s",
            flush=True,
        )
    print(
        f"SELF-PAIR: {hits}/{args.seeds} seeds ({hits / args.seeds:.0%}) with any hypothesis surviving FDR "
        f"(target <= 5%); {time.perf_counter() - t0:.0f}s",
        flush=True,
    )
    if args.no_int8:
        return
    t = time.perf_counter()
    q = {**settings, "quantization_n_prompts": 8, "quantization_math_prompts": 4, "quantization_max_new_tokens": 64}
    h = _run(args.out / "int8", 0, ModelSpec(model=MODEL, quantization="int8"), q)
    share = h["n_validated"] / max(h["n_hypotheses_tested"], 1)
    print(
        f"INT8 NEAR-NULL: {h['n_validated']}/{h['n_hypotheses_tested']} hypotheses surviving ({share:.1%}), "
        f"global AUC {h['global_auc']:.3f} (p={h['global_pvalue']:.3f}), answer flip rate {h['answer_flip_rate']:.3f}, "
        f"math final-number flip rate {h['math_flip_rate']}, mean token KL {h['mean_token_kl']:.4f}; "
        f"{time.perf_counter() - t:.0f}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
