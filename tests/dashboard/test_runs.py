import json

import numpy as np
import pytest

from lmdiff.dashboard.runs import Direction, RunData, find_runs, summarise
from lmdiff.errors import LmdiffError


def test_find_runs_lists_the_run_with_pair_methods_status_and_findings(runs_root):
    runs = find_runs(runs_root)
    assert [r.key for r in runs] == ["tiny"]
    r = runs[0]
    assert r.methods == {"kl": "ok", "diff_mining": "ok"}
    assert r.status == "ok" and r.command == "diff"
    assert "adapter" in r.finetuned and r.base != "?"
    res = json.loads((runs_root / "tiny" / "results.json").read_text())
    assert r.n_findings == len(res["findings"]) and r.top_finding == res["findings"][0]["statement"]
    row = r.to_row()
    assert row["methods"] == "kl, diff_mining" and row["findings"] == r.n_findings


def test_find_runs_refuses_a_missing_directory_in_one_sentence(tmp_path):
    with pytest.raises(LmdiffError, match="does not exist"):
        find_runs(tmp_path / "nope")


def test_an_unreadable_run_is_listed_not_hidden(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    (r,) = find_runs(tmp_path)
    assert r.status == "unreadable" and r.key == "bad"
    assert summarise(tmp_path / "bad").status == "unreadable"


def test_run_data_reads_findings_kl_examples_and_tables_without_recomputing(runs_root):
    run = RunData.open(runs_root / "tiny")
    ft = run.findings_table()
    assert list(ft["rank"]) == [f["rank"] for f in run.findings]
    examples = run.kl_examples()
    assert examples and all(len(e["tokens"]) == len(e["kl"]) for e in examples)
    assert set(run.methods_table()["method"]) == {"kl", "diff_mining"}
    arts = run.artifacts("kl")
    assert "artifacts/kl/kl_tokens.parquet" in arts
    tokens = run.table("artifacts/kl/kl_tokens.parquet")
    assert (tokens["kl"] >= 0).all() and len(tokens) == run.methods["kl"]["headline"]["n_tokens"]
    base, ft_spec = run.pair_specs()
    assert ft_spec["adapter"] and not base.get("adapter")
    assert run.steering_directions() == []  # no adl or pca in this run


def test_artifact_paths_outside_the_run_are_refused(runs_root):
    run = RunData.open(runs_root / "tiny")
    with pytest.raises(LmdiffError, match="outside the run"):
        run.table("../../etc/passwd")


def test_steering_directions_come_from_adl_mean_differences(tmp_path):
    (tmp_path / "artifacts" / "adl").mkdir(parents=True)
    (tmp_path / "results.json").write_text(json.dumps({"methods": {}}))
    diff = np.arange(2 * 4, dtype=np.float32).reshape(2, 4)
    np.savez(tmp_path / "artifacts" / "adl" / "mean_differences.npz", layer1_diff=diff,
             layer1_norm_ft=np.float32(10.0), layer1_counts=np.array([3, 3]))
    dirs = RunData.open(tmp_path).steering_directions()
    assert [d.label for d in dirs] == ["adl: layer 1, position 0", "adl: layer 1, position 1"]
    v = dirs[1].scaled(2.0)
    assert np.linalg.norm(v) == pytest.approx(20.0, rel=1e-5)
    assert np.allclose(v / np.linalg.norm(v), diff[1] / np.linalg.norm(diff[1]))


def test_a_direction_without_a_known_norm_scales_the_unit_vector():
    d = Direction("x", "pca", 0, np.array([3.0, 4.0], dtype=np.float32), 0.0)
    assert np.allclose(d.scaled(1.0), [0.6, 0.8])
