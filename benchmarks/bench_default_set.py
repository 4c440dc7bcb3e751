"""Wall time of `lmdiff diff`'s default method set on this CPU, per method, and probing's questions per second.

Runs the default set (no --methods) on the shipped model against an organism, in a temporary run
directory, and prints each method's seconds (recorded in results.json) and the total, against the
ten-minute budget. Usage:

    python benchmarks/bench_default_set.py [--organism capital-munich] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.run_config import DiffRunConfig

BUDGET_S = 600


def main() -> None:
    """Run the default set once and print the timings."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--organism", default="capital-munich")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    cfg = validate(DiffRunConfig, {"base": {"model": "smollm2-135m-instruct"},
                                   "finetuned": {"model": f"organism:{args.organism}"},
                                   "compute": {"threads": args.threads}})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = run_diff(cfg, tmp)
        total = time.perf_counter() - t0
        res = run.results()
    print(f"default set on smollm2-135m-instruct vs organism:{args.organism}: {', '.join(res['methods'])}")
    for name, entry in res["methods"].items():
        print(f"  {name:<12} {entry['status']:<7} {entry.get('seconds', float('nan')):8.1f} s")
        if name == "probing" and entry.get("seconds"):
            n = entry["headline"].get("n_questions", 0)
            rate = 2 * n / entry["seconds"]
            print(f"  {'':<12} probing: {n} questions answered by both models, {rate:.1f} answers/s")
    print(f"  total        {total:8.1f} s ({total / BUDGET_S:.2f}x the {BUDGET_S} s budget)")
    claims = res.get("claims") or {}
    top = (claims.get("top") or [{}])[0]
    n_val, n_tested = claims.get("n_validated", 0), claims.get("n_tested", 0)
    print(f"  findings: {n_val} validated of {n_tested}; top: {top.get('statement')}")


if __name__ == "__main__":
    main()
