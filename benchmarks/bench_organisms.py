"""Build time of each zoo organism on this machine, read from the records each build wrote.

Usage:
    python benchmarks/bench_organisms.py                 # recorded build times of the zoo
    python benchmarks/bench_organisms.py --build null    # also time a fresh build (temporary directory)
    python benchmarks/bench_organisms.py --build null --set data.n_aligned=8 --set training.epochs=1

For every recipe it prints the recorded split (data: self-distillation and data building; train;
eval: measuring the organism and the base; total), the training tokens and tokens/s, from
``rates.json`` (``timing_s``) and ``training_log.json`` next to each built adapter. Records in the
older format that lack a split print what they have.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def build_time_rows(base: str = "smollm2-135m-instruct") -> list[dict[str, Any]]:
    """One row per recipe: ``{"name", "built", "data", "train", "eval", "total", "train_tokens", "tokens_per_s"}``."""
    from lmdiff.organisms.zoo import RECIPES, find_organism

    rows: list[dict[str, Any]] = []
    for name in RECIPES.names():
        d = find_organism(name, base)
        row: dict[str, Any] = {"name": name, "built": d is not None and (d / "rates.json").exists()}
        if row["built"] and d is not None:
            timing = json.loads((d / "rates.json").read_text()).get("timing_s", {})
            log_path = d / "training_log.json"
            log = json.loads(log_path.read_text()) if log_path.exists() else {}
            row.update({k: timing.get(k) for k in ("data", "train", "eval", "total")})
            row["train_tokens"] = log.get("train_tokens")
            row["tokens_per_s"] = log.get("tokens_per_s")
            row["steps"] = log.get("steps")
        rows.append(row)
    return rows


def _cell(value: Any, width: int) -> str:
    return f"{value:>{width}.0f}" if isinstance(value, int | float) else f"{'-':>{width}s}"


def print_build_times(rows: list[dict[str, Any]]) -> None:
    """Print :func:`build_time_rows` as a table."""
    print("Zoo build times in seconds (recorded when each organism was built):")
    cols = ("data", "train", "eval", "total", "steps", "train_tokens", "tokens_per_s")
    print(f"  {'organism':22s} " + " ".join(f"{c:>12s}" for c in cols))
    for r in rows:
        if not r["built"]:
            print(f"  {r['name']:22s} (not built)")
            continue
        print(f"  {r['name']:22s} " + " ".join(_cell(r.get(c), 12) for c in cols))


def time_build(name: str, overrides: dict[str, Any]) -> None:
    """Build ``name`` into a temporary directory and print its wall time and recorded split."""
    from lmdiff.organisms.build import build_organism

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        out = build_organism(name, overrides, out_dir=Path(tmp) / name, resume=False, progress=False)
        wall = time.perf_counter() - t
        rec = json.loads((out / "rates.json").read_text())
        print(f"built {name} in {wall:.0f} s (self-distillation included if not cached): "
              f"{rec['timing_s']}, {rec['training']['train_tokens']} training tokens at "
              f"{rec['training']['tokens_per_s']} tokens/s")


def main() -> None:
    from lmdiff.organisms.recipe import parse_overrides

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--build", action="append", default=[], help="time a fresh build of this organism")
    ap.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE for --build")
    args = ap.parse_args()
    print_build_times(build_time_rows(args.base))
    for name in args.build:
        time_build(name, parse_overrides(args.set))


if __name__ == "__main__":
    main()
