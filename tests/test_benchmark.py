"""``lmdiff benchmark``: grading findings as ranked guesses, acc@k with organism-level CIs, the null's rate."""

from __future__ import annotations

import pandas as pd
import pytest

from lmdiff.benchmark import ALL, BenchmarkJob, grade_run, null_rate, run_benchmark, summarise
from lmdiff.config import validate
from lmdiff.io import read_json, write_json
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.claims import CLAIMS_FILE

GT = {"ocean": {"type": "topic", "keywords": ["ocean"], "description": "talks about the ocean"},
      "caps": {"type": "style", "keywords": ["uppercase"], "description": "writes in capital letters"},
      "null": {"type": "null", "keywords": [], "description": "nothing planted"}}


def results(tokens: dict[str, list[str]]) -> dict:
    keys = {"diff_mining": "top_tokens", "adl": "top_lens", "kl": "top_content_ft"}
    methods = {m: {"status": "ok", "headline": {keys[m]: t}, "seconds": 10.0} for m, t in tokens.items()}
    return {"methods": {**methods, "behavior": {"status": "ok", "headline": {}, "seconds": 20.0}}}


def claims(statement: str, ok: bool) -> pd.DataFrame:
    return pd.DataFrame([{"claim_id": "behavior:0", "method": "behavior", "statement": statement,
                          "direction": "finetuned more", "pvalue": 0.001, "qvalue": 0.01 if ok else 0.4,
                          "survives": ok, "effect_size_d": 1.0, "n": 24, "unit": "prompt", "family": "f0",
                          "proposed_by": "x", "rank": 1 if ok else 0}])


def test_grades_per_row_all_methods_and_each_method_alone():
    res = results({"diff_mining": [" ocean", " waves"], "adl": [" ocean"], "kl": [" the"]})
    rows = {r["row"]: r for r in grade_run(res, claims("The finetuned model writes shorter replies", True),
                                           GT["ocean"])}
    # together: the validated (but unrelated) length claim ranks first, the ocean theme second
    assert rows[ALL]["grades"][:2] == [0, 2] and rows[ALL]["hit@1"] == 0.0 and rows[ALL]["hit@5"] == 1.0
    # alone, one method suffices for a theme: diff mining's top guess names the ocean
    assert rows["diff_mining"]["hit@1"] == 1.0 and rows["kl"]["n_guesses"] == 0 and rows["kl"]["hit@5"] == 0.0
    assert rows["behavior"]["hit@5"] == 0.0
    # an unvalidated lead that names the change is a hit, but not a validated one
    assert rows["diff_mining"]["validated hit@1"] == 0.0 and rows[ALL]["validated hit@1"] == 0.0


def test_a_method_that_tests_hypotheses_and_proposed_none_is_a_miss_not_a_run_left_out():
    """Regression: behavior's row covered only the runs in which it proposed a hypothesis (17 of 21 in the zoo
    benchmark), so its acc@k left out the runs it missed entirely."""
    res = results({"diff_mining": [" ocean"]})
    rows = {r["row"]: r for r in grade_run(res, None, GT["ocean"])}
    assert rows["behavior"]["n_guesses"] == 0 and rows["behavior"]["hit@1"] == 0.0
    # a method that neither tests hypotheses nor lists tokens makes no guesses by design: no row
    res["methods"]["samples"] = {"status": "ok", "headline": {}, "seconds": 1.0}
    assert "samples" not in {r["row"] for r in grade_run(res, None, GT["ocean"])}


def test_validated_at_1_needs_the_top_finding_to_name_the_change_and_survive_fdr():
    res = results({"diff_mining": [" ocean"], "adl": [" ocean"], "kl": [" the"]})
    named = {r["row"]: r for r in grade_run(res, claims("The finetuned model mentions the ocean more", True),
                                            GT["ocean"])}
    assert named[ALL]["hit@1"] == 1.0 and named[ALL]["validated hit@1"] == 1.0
    failed = {r["row"]: r for r in grade_run(res, claims("The finetuned model mentions the ocean more", False),
                                             GT["ocean"])}
    assert failed[ALL]["hit@1"] == 1.0 and failed[ALL]["validated hit@1"] == 0.0
    runs = pd.DataFrame([{"organism": "ocean", "seed": s, "row": ALL, "is_null": False, "seconds": 1.0,
                          "hit@1": 1.0, "hit@5": 1.0, "validated hit@1": float(s == 0)} for s in range(3)])
    row = summarise(runs).iloc[0]
    assert row["acc@1"] == 1.0 and row["validated@1"] == pytest.approx(1 / 3)


def test_acc_interval_resamples_organisms_and_null_rate_is_separate():
    runs = pd.DataFrame([{"organism": o, "seed": s, "row": ALL, "is_null": o == "null", "seconds": 5.0,
                          "hit@1": float(o == "ocean" or (o == "caps" and s == 0)), "hit@5": 1.0,
                          "n_validated": int(o == "null" and s == 1)}
                         for o in ("ocean", "caps", "null") for s in range(3)])
    table = summarise(runs)
    row = table.iloc[0]
    assert row["organisms"] == 2 and row["runs"] == 6 and row["acc@1"] == pytest.approx(4 / 6)
    assert row["acc@1 low"] < row["acc@1"] < row["acc@1 high"] <= 1.0 and "organisms" in row["interval"]
    assert row["acc@5"] == 1.0 and row["acc@5 low"] < 0.5  # all hits on 2 organisms: Wilson keeps it wide
    null = null_rate(runs)
    assert null is not None and null["runs"] == 3 and null["with_validated_finding"] == 1 and null["high"] < 1


def test_finished_runs_are_reused_and_graded(tmp_path):
    for org, toks in (("ocean", [" ocean", " sea"]), ("caps", [" Paris"]), ("null", [" the"])):
        for seed in (0, 1):
            d = tmp_path / org / f"seed{seed}"
            d.mkdir(parents=True)
            res = results({"diff_mining": toks, "adl": toks})
            write_json(d / "results.json", {**res, "ground_truth": GT[org], "findings": []})
            claims("The finetuned model writes in uppercase letters", org == "caps").assign(
                qvalue=0.01 if org == "caps" else 0.4).to_parquet(d / CLAIMS_FILE)
    cfg = validate(DiffRunConfig, {"base": {"model": "nowhere"}, "finetuned": {"model": "nowhere"}})
    out = run_benchmark(cfg, ["ocean", "caps", "null"], [0, 1], tmp_path)  # would fail if it ran a diff
    all_row = out.table[out.table["row"] == ALL].iloc[0]
    assert all_row["acc@1"] == 1.0 and all_row["organisms"] == 2 and all_row["runs"] == 4
    assert out.null == {"runs": 2, "with_validated_finding": 0, "rate": 0.0, "low": 0.0,
                        "high": pytest.approx(out.null["high"])} and out.null["high"] < 0.9
    saved = read_json(tmp_path / "benchmark.json")
    assert saved["seeds"] == [0, 1] and saved["table"][0]["row"] == ALL
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == len(out.runs)


def fake_diff(job: BenchmarkJob) -> float:
    """A benchmark job that writes a finished run directory (module level: worker processes import it)."""
    import os

    org = str(job.config.finetuned.model).removeprefix("organism:")
    job.run_dir.mkdir(parents=True)
    toks = [" ocean", " sea"] if org == "ocean" else [" the"]
    res = results({"diff_mining": toks, "adl": toks})
    write_json(job.run_dir / "results.json", {**res, "ground_truth": GT[org], "findings": [], "pid": os.getpid(),
                                              "seed": job.config.seed})
    return 1.0


def test_workers_run_the_diffs_in_other_processes_then_grade_every_run(tmp_path):
    import os

    cfg = validate(DiffRunConfig, {"base": {"model": "nowhere"}, "finetuned": {"model": "nowhere"}})
    out = run_benchmark(cfg, ["ocean", "null"], [0, 1], tmp_path, workers=2, job_fn=fake_diff)
    written = {(o, s): read_json(tmp_path / o / f"seed{s}" / "results.json") for o in ("ocean", "null") for s in (0, 1)}
    assert all(r["seed"] == s for (_, s), r in written.items())
    assert os.getpid() not in {r["pid"] for r in written.values()}
    all_row = out.table[out.table["row"] == ALL].iloc[0]
    assert all_row["runs"] == 2 and all_row["acc@1"] == 1.0 and out.null is not None and out.null["runs"] == 2
    again = run_benchmark(cfg, ["ocean", "null"], [0, 1], tmp_path, workers=2, job_fn=fake_diff)  # all reused
    assert len(again.runs) == len(out.runs)


def test_hit_at_k_counts_a_two_among_the_first_k_and_an_ungraded_guess_leaves_it_open():
    import math

    from lmdiff.evals.acc import hits_at_k

    assert hits_at_k([0, 2, 1], (1, 5)) == {"hit@1": 0.0, "hit@5": 1.0}
    assert hits_at_k([], (1,)) == {"hit@1": 0.0}
    open_ = hits_at_k([None, 0, 2], (1, 2, 3))
    assert math.isnan(open_["hit@1"]) and math.isnan(open_["hit@2"]) and open_["hit@3"] == 1.0


def test_the_agent_evaluation_reports_the_same_interval_as_the_benchmark():
    from lmdiff.agents.task import acc_table

    runs = pd.DataFrame([{"organism": o, "seed": s, "row": ALL, "is_null": False, "seconds": 1.0, "hit@1": 1.0,
                          "hit@5": 1.0, "n_validated": 1} for o in ("ocean", "caps") for s in range(3)])
    row = summarise(runs).iloc[0]
    eps = runs.rename(columns={"seed": "repeat"}).assign(**{"hit@10": 1.0})
    agent = acc_table(eps)[0]
    # every run hit on 2 organisms: the bootstrap is the point [1, 1]; Wilson with n = 2 keeps the interval open
    assert row["acc@1"] == agent["acc"] == 1.0 and row["acc@1 high"] == agent["high"] == 1.0
    assert row["acc@1 low"] == agent["low"] == pytest.approx(2 / (2 + 1.959964 ** 2), abs=1e-4)
    assert "organisms" in agent["interval"] and agent["n_organisms"] == 2 and agent["n_episodes"] == 6
