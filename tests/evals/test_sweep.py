import pandas as pd

from lmdiff.evals import sweep as S
from lmdiff.io import read_json, write_json
from tests.helpers import build_tiny_adapter

from .test_backdoor import GT


def test_sweep_builds_evaluates_and_aggregates(tiny_model_dir, tmp_path, monkeypatch):
    built = []

    def fake_build(organism, overrides, base, out_dir):  # training is tested in tests/organisms
        built.append((overrides["training.seed"], overrides["training.learning_rate"]))
        build_tiny_adapter(tiny_model_dir, out_dir, seed=overrides["training.seed"])
        write_json(out_dir / "ground_truth.json", GT)
        return out_dir

    monkeypatch.setattr(S, "_build", fake_build)
    cfg = S.SweepConfig(organism="russell-backdoor", base=str(tiny_model_dir), seeds=[1, 2],
                        learning_rates=[1e-4, 2e-4],
                        eval={"n_samples": 1, "seeds": [0], "max_new_tokens": 4,
                              "judge": "offline", "max_questions": 2})
    run = S.run_sweep(cfg, tmp_path / "sweep")
    assert sorted(built) == [(1, 1e-4), (1, 2e-4), (2, 1e-4), (2, 2e-4)]
    agg = pd.read_parquet(run.path / "artifacts" / "sweep" / "per_lr.parquet")
    assert list(agg["learning_rate"]) == [1e-4, 2e-4] and list(agg["n_seeds"]) == [2, 2]
    assert {"gap_mean", "gap_sd", "triggered_mean", "untriggered_mean"} <= set(agg.columns)
    assert read_json(run.results_path)["methods"]["sweep"]["headline"]["n_builds"] == 4
    assert (run.path / "artifacts" / "sweep" / S.PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    built.clear()
    S.run_sweep(cfg, tmp_path / "sweep")  # resumable: nothing is rebuilt
    assert built == []


def fake_job(job: S.SweepJob) -> dict:
    """A sweep cell with a tiny random adapter for the build (module level: worker processes import it)."""
    import os
    from pathlib import Path

    import torch

    if job.build:
        build_tiny_adapter(Path(job.base), job.org_dir, seed=job.seed)
        write_json(job.org_dir / "ground_truth.json", GT)
    return {**S.evaluate_build(job), "pid": os.getpid(), "threads": torch.get_num_threads(), "built": job.build,
            "omp": os.environ.get("OMP_NUM_THREADS")}


def test_sweep_workers_run_cells_in_separate_processes_with_the_cores_split(tiny_model_dir, tmp_path):
    import os

    cfg = S.SweepConfig(organism="russell-backdoor", base=str(tiny_model_dir), seeds=[1, 2], learning_rates=[1e-4],
                        workers=2, eval={"n_samples": 1, "seeds": [0], "max_new_tokens": 4,
                                         "judge": "offline", "max_questions": 2})
    run = S.run_sweep(cfg, tmp_path / "sweep", job_fn=fake_job)
    per_build = pd.read_parquet(run.path / "artifacts" / "sweep" / "per_build.parquet")
    assert list(per_build["seed"]) == [1, 2]  # grid order, whatever order the workers finished in
    assert os.getpid() not in set(per_build["pid"]) and per_build["built"].all()
    half = max(1, len(os.sched_getaffinity(0)) // 2)
    assert set(per_build["threads"]) == {half} and set(per_build["omp"]) == {str(half)}
    manifest = read_json(run.path / "manifest.json")
    assert manifest["status"] == "ok"
    rerun = S.run_sweep(cfg, tmp_path / "sweep", job_fn=fake_job)  # resumable: the builds are recorded as done
    assert not pd.read_parquet(rerun.path / "artifacts" / "sweep" / "per_build.parquet")["built"].any()
