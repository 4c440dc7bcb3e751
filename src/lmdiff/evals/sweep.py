"""Seed x learning-rate sweeps of an organism: build each one, evaluate it, report mean and spread.

Each build and each evaluation is a resumable step of the sweep's run directory, so an
interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from lmdiff.config import StrictModel, validate
from lmdiff.evals.backdoor import BackdoorEvalConfig, run_backdoor_eval
from lmdiff.io import atomic_path, read_json, write_parquet
from lmdiff.models.spec import ModelSpec
from lmdiff.organisms.build_run import OrganismBuildConfig, run_organism_build
from lmdiff.report.builder import Report
from lmdiff.report.render import render_report
from lmdiff.runs.parallel import map_in_processes
from lmdiff.runs.run import Run

PLOT_FILE = "sweep.png"
"""The sweep's plot, also saved beside its tables under ``artifacts/sweep/``."""


class SweepConfig(StrictModel):
    """A grid of organism builds and their evaluation settings."""

    organism: str = "russell-backdoor"
    base: str = "smollm2-135m-instruct"
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    learning_rates: list[float] = Field(default_factory=lambda: [1e-4, 2e-4], min_length=1)
    build_overrides: dict[str, Any] = Field(default_factory=dict, description="recipe overrides for every build")
    eval: dict[str, Any] = Field(default_factory=lambda: {"n_samples": 2, "seeds": [0]},
                                 description="BackdoorEvalConfig settings (model and baselines are set per build)")
    workers: int = Field(1, ge=1, description="builds run side by side in worker processes, the cores split "
                         "between them (2 on a 2-core CPU: one torch thread each beats two threads shared)")


def _build(organism: str, overrides: dict[str, Any], base: str, out_dir: Path) -> Path:

    cfg = OrganismBuildConfig(organism=organism, base=base, overrides=overrides)
    return run_organism_build(cfg, out_dir).path


@dataclass(frozen=True)
class SweepJob:
    """One cell of the grid: build (unless an earlier run built it) and evaluate one organism."""

    organism: str
    base: str
    learning_rate: float
    seed: int
    overrides: dict[str, Any]
    org_dir: Path
    eval_dir: Path
    eval_settings: dict[str, Any]
    build: bool


def evaluate_build(job: SweepJob) -> dict[str, Any]:
    """Run the four-condition backdoor evaluation on ``job``'s built organism; one row of the sweep table."""
    gt = read_json(job.org_dir / "ground_truth.json") if (job.org_dir / "ground_truth.json").exists() else {}
    tag = job.eval_dir.name
    spec = ModelSpec.parse(str(job.org_dir), ground_truth=gt, label=f"{job.organism} {tag}")
    eval_cfg = validate(BackdoorEvalConfig, {**job.eval_settings, "model": spec.model_dump(mode="json"),
                                             "include_base": False, "include_null": False})
    sub = run_backdoor_eval(eval_cfg, job.eval_dir)
    gap = next(iter(read_json(sub.path / "artifacts" / "backdoor" / "gaps.json").values()))
    return {"learning_rate": job.learning_rate, "seed": job.seed, "triggered": gap["triggered"],
            "untriggered": gap["untriggered"], "gap": gap["gap"], "format_gap": gap["format_gap"],
            "gap_excludes_zero": gap["gap_excludes_zero"], "eval_run": str(sub.path)}


def run_job(job: SweepJob) -> dict[str, Any]:
    """Build (when needed) and evaluate one cell; runs in the sweep's process or in a worker process."""
    if job.build:
        _build(job.organism, job.overrides, job.base, job.org_dir)
    return evaluate_build(job)


def run_sweep(cfg: SweepConfig, out: str | Path, job_fn: Callable[[SweepJob], dict[str, Any]] = run_job) -> Run:
    """Build and evaluate every (learning rate, seed) of ``cfg``; return the sweep's run.

    Args:
        cfg: the grid and its settings.
        out: the sweep's run directory (rerun it to resume: finished builds are not rebuilt).
        job_fn: what runs one cell (a module-level function, so that worker processes can import it).
    """
    with Run(out, cfg, command="eval sweep", seeds={f"build{i}": s for i, s in enumerate(cfg.seeds)}) as run:
        jobs: list[SweepJob] = []
        steps = {}
        for lr in cfg.learning_rates:
            for seed in cfg.seeds:
                tag = f"lr{lr:g}-s{seed}"
                overrides = {**cfg.build_overrides, "training.seed": seed, "training.learning_rate": lr}
                step = run.step(f"build-{tag}", {"organism": cfg.organism, "base": cfg.base, "overrides": overrides})
                if not step.done:
                    step.prepare()
                steps[tag] = step
                jobs.append(SweepJob(organism=cfg.organism, base=cfg.base, learning_rate=lr, seed=seed,
                                     overrides=overrides, org_dir=run.path / "artifacts" / "organisms" / tag,
                                     eval_dir=run.path / "evals" / tag, eval_settings=dict(cfg.eval),
                                     build=not step.done))
        rows: list[dict[str, Any]] = []

        def done(job: SweepJob, row: dict[str, Any]) -> None:
            step = steps[job.eval_dir.name]
            if job.build:
                step.finish({"dir": str(job.org_dir)})
            rows.append(row)

        map_in_processes(job_fn, jobs, cfg.workers, done)
        order = {(j.learning_rate, j.seed): i for i, j in enumerate(jobs)}
        rows.sort(key=lambda r: order[(r["learning_rate"], r["seed"])])
        per_build = pd.DataFrame(rows)
        write_parquet(run.path / "artifacts" / "sweep" / "per_build.parquet", per_build)
        agg = aggregate(per_build)
        write_parquet(run.path / "artifacts" / "sweep" / "per_lr.parquet", agg)
        best = agg.sort_values("gap_mean", ascending=False).iloc[0]
        summary = (f"{len(per_build)} builds; best learning rate {best.learning_rate:g}: gap "
                   f"{best.gap_mean:.2f} ± {best.gap_sd:.2f} (sd over {int(best.n_seeds)} seeds)")
        run.record("sweep", status="ok", summary=summary,
                   headline={"per_lr": agg.to_dict("records"), "n_builds": len(per_build)},
                   artifacts=["artifacts/sweep/per_build.parquet", "artifacts/sweep/per_lr.parquet"])
        _report(run, per_build, agg, summary)
    return run


def aggregate(per_build: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread across seeds for each learning rate."""
    out = []
    for lr, g in per_build.groupby("learning_rate"):
        row: dict[str, Any] = {"learning_rate": lr, "n_seeds": len(g)}
        for col in ("triggered", "untriggered", "gap", "format_gap"):
            vals = g[col].to_numpy(dtype=float)
            row[f"{col}_mean"] = float(vals.mean())
            row[f"{col}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
            row[f"{col}_min"], row[f"{col}_max"] = float(vals.min()), float(vals.max())
        row["share_gap_ci_excludes_zero"] = float(np.mean(g["gap_excludes_zero"]))
        out.append(row)
    return pd.DataFrame(out)


def _report(run: Run, per_build: pd.DataFrame, agg: pd.DataFrame, summary: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    report = Report(title="lmdiff eval sweep", meta={"run": str(run.path)})
    sec = report.section("Seed x learning-rate sweep", "sweep")
    sec.text(summary)
    sec.table(agg, caption="Per learning rate: mean, sd, min and max across seeds")
    sec.table(per_build.drop(columns=["eval_run"]), caption="Every build")
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, metric in enumerate(("triggered", "untriggered", "gap")):
        x = np.log10(per_build["learning_rate"].to_numpy()) + (i - 1) * 0.03
        ax.scatter(x, per_build[metric], s=14, alpha=0.6, label=f"{metric} (per seed)")
    ax.errorbar(np.log10(agg["learning_rate"]), agg["gap_mean"], yerr=agg["gap_sd"].fillna(0), fmt="k_",
                capsize=4, label="gap mean ± sd")
    ax.set_xlabel("log10 learning rate")
    ax.set_ylabel("persona rate")
    ax.legend(fontsize=7)
    with atomic_path(run.path / "artifacts" / "sweep" / PLOT_FILE) as tmp:  # for the zoo's documentation
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    sec.figure(fig, "Persona rates per build and the gap's mean ± sd across seeds")
    render_report(report, run.path)
