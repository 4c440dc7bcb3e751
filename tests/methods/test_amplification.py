"""The amplification method end to end on the tiny LoRA pair."""

from __future__ import annotations

import json

import pandas as pd


def test_amplification_through_run_diff(tiny_dirs, tmp_path):
    from lmdiff.config import validate
    from lmdiff.diff import run_diff
    from lmdiff.methods.registry import available_methods
    from lmdiff.run_config import DiffRunConfig

    assert "amplification" in available_methods()
    base_dir, adapter_dir = tiny_dirs
    settings = {"n_prompts": 3, "n_per_prompt": 1, "max_new_tokens": 6, "alphas": [2.0], "lora_scales": [1.0, 3.0],
                "min_prompts": 1, "top_singular": 2}
    cfg = validate(DiffRunConfig, {"base": {"model": str(base_dir)},
                                   "finetuned": {"model": str(base_dir), "adapter": str(adapter_dir),
                                                 "ground_truth": {"keywords": ["the", "a"]}},
                                   "methods": ["amplification"], "method": {"amplification": settings}})
    run = run_diff(cfg, tmp_path / "amp")
    entry = json.loads((run.path / "results.json").read_text())["methods"]["amplification"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["alphas"] == [0.0, 2.0] and h["lora_scales"] == [3.0] and h["validated"] is False
    assert set(h["keyword_rate"]) == {"base", "alpha=0", "alpha=2", "lora x3"}
    assert h["weights_source"].startswith("LoRA") and h["most_moved_block"] in (0, 1)
    gens = pd.read_parquet(run.path / entry["artifacts"][0])
    assert gens.groupby("setting").size().to_dict() == {"base": 3, "alpha=0": 3, "alpha=2": 3, "lora x3": 3}
    assert gens.groupby("setting")["seed"].apply(lambda s: tuple(sorted(set(s)))).nunique() == 1
    per = pd.read_parquet(run.path / entry["artifacts"][1]).set_index("setting")
    assert (per["base_ppl"] > 1).all() and per["repetition"].between(0, 1).all()
    assert "not a validated finding" in entry["summary"] or "nothing here is a validated finding" in entry["summary"]
    report = (run.path / "report.md").read_text()
    assert "propose" in report and "Which weights moved" in report
