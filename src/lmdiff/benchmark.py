"""``lmdiff benchmark``: how often a run's ranked findings name the planted change, over organisms x seeds.

For every organism (with a ground truth) and seed, :func:`run_benchmark` runs ``lmdiff diff`` on
(base, ``organism:NAME``) into ``OUT/<organism>/seed<k>`` (a finished run directory is reused, an
interrupted one resumes), then grades the run's ranked findings (the deterministic synthesiser's
guesses, :mod:`lmdiff.findings`) against the ground truth: a guess scores 2 when it names the
planted behaviour, 1 when related, 0 otherwise (:func:`lmdiff.evals.grading.grade_against`).
acc@k is the share of runs with a 2 among the first k guesses. A guess need not be validated (an
unvalidated lead such as "the internals point at 'Italy'" counts, as in the auditing benchmarks), so
the table also gives the stricter "validated@1": the share of runs whose top finding names the change
*and* survived the run's FDR procedure.

Rows of the table: the synthesiser over every method that ran, then each method alone (the
synthesiser fed only that method's claims and signals, with one method enough for a theme). The
interval of acc@k is the wider of a two-level bootstrap (organisms, then seeds within them: seeds of
one organism are not independent evidence) and a Wilson interval with the organisms as n (the
bootstrap collapses to a point when every run hit): :func:`lmdiff.evals.acc.acc_at_k`, which the agent
evaluation uses too. The null organism is not graded; its row is the false-finding rate:
the share of its runs with at least one validated finding (Wilson interval over seeds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmdiff.diff import run_diff
from lmdiff.errors import ConfigError
from lmdiff.evals.acc import HIT, acc_at_k, hits_at_k
from lmdiff.evals.grading import grade_against
from lmdiff.findings import synthesise
from lmdiff.interp.signals import SIGNAL_KEYS
from lmdiff.io import read_json, write_json, write_parquet
from lmdiff.methods.registry import get_method
from lmdiff.progress import progress_bar
from lmdiff.report.numbers import fmt_pct
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.claims import load_claims
from lmdiff.runs.parallel import map_in_processes
from lmdiff.stats import wilson_interval

__all__ = ["BenchmarkResult", "grade_run", "run_benchmark", "summarise"]

ALL = "all methods (synthesiser)"
VALIDATED_HIT = "validated hit@1"


@dataclass
class BenchmarkResult:
    """Per-run grades (one row per organism x seed x row of the table) and the summary table."""

    runs: pd.DataFrame
    table: pd.DataFrame
    null: dict[str, Any] | None
    out: Path


def _restrict(results: dict[str, Any], claims: pd.DataFrame | None, method: str) -> tuple[dict[str, Any],
                                                                                          pd.DataFrame | None]:
    """The results and claims as if only ``method`` had run."""
    res = {**results, "methods": {k: v for k, v in results.get("methods", {}).items() if k == method}}
    if claims is None or claims.empty:
        return res, claims
    return res, claims[claims["method"] == method]


def _tests_hypotheses(method: str) -> bool:
    try:
        return bool(get_method(method).tests_hypotheses)
    except ConfigError:  # a method this install does not know (a plugin's)
        return False


def grade_run(results: dict[str, Any], claims: pd.DataFrame | None, ground_truth: dict[str, Any],
              ks: Sequence[int] = (1, 5, 10)) -> list[dict[str, Any]]:
    """Grades of one run's guesses: one row for all methods together, one per method that ran.

    Each row has ``row`` (which guesses), ``grades`` (0/1/2 per guess, best first), ``hit@k`` for each
    k, ``validated hit@1`` (the top guess names the change and was validated), ``n_guesses`` and
    ``n_validated``.
    """
    rows = []
    ran = [m for m, e in results.get("methods", {}).items() if e.get("status") == "ok"]
    variants: list[tuple[str, dict[str, Any], pd.DataFrame | None, int]] = [(ALL, results, claims, 2)]
    for m in ran:
        has_claims = claims is not None and not claims.empty and bool((claims["method"] == m).any())
        # a method that tests hypotheses and proposed none in this run made no guess: a miss, not a run left out
        if m in SIGNAL_KEYS or has_claims or _tests_hypotheses(m):
            res_m, claims_m = _restrict(results, claims, m)
            variants.append((m, res_m, claims_m, 1))
    for name, res, cl, min_methods in variants:
        found = synthesise(res, cl, max_findings=max(ks), min_methods=min_methods)
        grades = [grade_against(f.as_guess(), ground_truth) for f in found]
        row: dict[str, Any] = {"row": name, "grades": grades, "n_guesses": len(found),
                               "n_validated": sum(f.validated for f in found),
                               "top": found[0].statement if found else ""}
        row.update(hits_at_k(grades, ks))
        row[VALIDATED_HIT] = float(bool(found) and found[0].validated and grades[0] == HIT)
        rows.append(row)
    return rows


def summarise(runs: pd.DataFrame, ks: Sequence[int] = (1, 5)) -> pd.DataFrame:
    """The acc@k table: one row per ``row`` of the graded runs (organisms other than the null)."""
    graded = runs[~runs["is_null"]]
    out = []
    for name, df in graded.groupby("row", sort=False):
        r: dict[str, Any] = {"row": name, "organisms": int(df["organism"].nunique()), "runs": len(df)}
        cols = [(f"acc@{k}", f"hit@{k}") for k in ks]
        if VALIDATED_HIT in df:
            cols.append(("validated@1", VALIDATED_HIT))
        for name_out, col in cols:
            a = acc_at_k(df[col], df["organism"], df["seed"], 0.95, repeat_name="seeds")
            r[name_out] = a["acc"]
            r[f"{name_out} low"], r[f"{name_out} high"] = a["low"], a["high"]
            r["interval"] = a["interval"]
        r["mean seconds"] = float(df["seconds"].mean())
        out.append(r)
    return pd.DataFrame(out)


def null_rate(runs: pd.DataFrame) -> dict[str, Any] | None:
    """The null organism's false-finding rate: runs with at least one validated finding (all methods)."""
    df = runs[runs["is_null"] & (runs["row"] == ALL)]
    if df.empty:
        return None
    hits = int((df["n_validated"] > 0).sum())
    low, high = wilson_interval(hits / len(df), len(df), 0.95)
    return {"runs": len(df), "with_validated_finding": hits, "rate": hits / len(df), "low": float(low),
            "high": float(high)}


def _done(run_dir: Path) -> bool:
    p = run_dir / "results.json"
    if not p.exists():
        return False
    res = read_json(p)
    return isinstance(res.get("findings"), list)


@dataclass(frozen=True)
class BenchmarkJob:
    """One diff run of the benchmark: its configuration and directory."""

    config: DiffRunConfig
    run_dir: Path


def run_job(job: BenchmarkJob) -> float:
    """Run one diff (module level: worker processes import it); its wall time in seconds."""
    t0 = time.perf_counter()
    run_diff(job.config, job.run_dir)  # a plain diff run directory, reusable by `lmdiff diff --out`
    return time.perf_counter() - t0


def run_benchmark(config: DiffRunConfig, organisms: Sequence[str], seeds: Sequence[int], out: str | Path,
                  ks: Sequence[int] = (1, 5, 10), workers: int = 1,
                  job_fn: Callable[[BenchmarkJob], float] = run_job) -> BenchmarkResult:
    """Run (or reuse) each organism x seed, grade the findings, write ``benchmark.json`` and ``runs.parquet``.

    Args:
        config: the diff configuration; ``finetuned`` and ``seed`` are set per run.
        organisms: organism names (the zoo's or user organisms with a ground truth).
        seeds: run seeds.
        out: the benchmark directory.
        ks: the k of acc@k recorded per run.
        workers: diff runs side by side in worker processes, the cores split between them
            (:mod:`lmdiff.runs.parallel`).
        job_fn: what runs one diff (a module-level function, so that worker processes can import it).
    """
    root = Path(out)
    rows: list[dict[str, Any]] = []
    pairs = [(o, s) for o in organisms for s in seeds]
    wall: dict[Path, float] = {}
    todo = [
        BenchmarkJob(config.model_copy(update={"seed": seed, "finetuned": config.finetuned.model_copy(
            update={"model": f"organism:{org}", "adapter": None})}), root / org / f"seed{seed}")
        for org, seed in pairs if not _done(root / org / f"seed{seed}")
    ]
    with progress_bar("benchmark runs", len(pairs)) as advance:
        advance(len(pairs) - len(todo))

        def done(job: BenchmarkJob, seconds: float) -> None:
            wall[job.run_dir] = seconds
            advance(1)

        map_in_processes(job_fn, todo, workers, done)
    for org, seed in pairs:
        run_dir = root / org / f"seed{seed}"
        res = read_json(run_dir / "results.json")
        seconds = float(sum(float(e.get("seconds") or 0) for e in res.get("methods", {}).values())) or wall.get(
            run_dir, float("nan"))
        gt = res.get("ground_truth") or {}
        is_null = gt.get("type") == "null" or org == "null"
        for r in grade_run(res, load_claims(run_dir), gt, ks):
            rows.append({"organism": org, "seed": seed, "is_null": is_null, "seconds": seconds,
                         "llm_calls": sum(int((e.get("llm") or {}).get("calls", 0))
                                          for e in res.get("methods", {}).values()), **r})
    runs = pd.DataFrame(rows)
    table = summarise(runs, [k for k in ks if k in (1, 5)] or list(ks)[:1])
    null = null_rate(runs)
    write_parquet(root / "runs.parquet", runs.assign(grades=[list(map(int, g)) for g in runs["grades"]]))
    write_json(root / "benchmark.json", {"organisms": list(organisms), "seeds": list(seeds),
                                         "table": table.to_dict("records"), "null": null})
    return BenchmarkResult(runs=runs, table=table, null=null, out=root)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table with numbers written for reading (acc with its interval)."""
    out = pd.DataFrame({"row": table["row"], "organisms": table["organisms"], "runs": table["runs"]})
    for col in ("acc@1", "acc@5", "validated@1"):
        if col in table:
            out[f"{col} [95% CI]"] = [f"{fmt_pct(a)} [{fmt_pct(lo)}, {fmt_pct(hi)}]" for a, lo, hi in zip(
                table[col], table[f"{col} low"], table[f"{col} high"], strict=True)]
    out["s/run"] = [f"{x:.0f}" if np.isfinite(x) else "n/a" for x in table["mean seconds"]]
    return out
