"""Probing on the real shipped model: the model against itself validates nothing, and it knows most capitals."""

from __future__ import annotations

import json

import pytest

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.run_config import DiffRunConfig

pytestmark = pytest.mark.real_model

BASE = "smollm2-135m-instruct"
# measured: base accuracy on the capital paraphrases of the 16 most populous countries (see the branch report)
CAPITAL_FLOOR = 0.5


def test_self_pair_validates_no_flip_and_knows_capitals(tmp_path) -> None:
    cfg = validate(DiffRunConfig, {
        "base": {"model": BASE}, "finetuned": {"model": BASE}, "methods": ["probing"],
        "method": {"probing": {"relations": ["capital"], "entities": ["Rome"]}}})
    run = run_diff(cfg, tmp_path / "r")
    entry = json.loads((run.path / "results.json").read_text())["methods"]["probing"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["n_flips"] == 0 and h["n_leads"] == 0 and h["n_hypotheses_tested"] == 0
    acc = h["accuracy"]["capital"]
    assert acc["base"] == acc["finetuned"] >= CAPITAL_FLOOR
