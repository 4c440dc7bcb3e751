"""End-to-end: the ``behavior`` method on a tiny random model pair through ``run_diff``."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_dir(tiny_model_dir):
    """The session's tiny random model (tests/conftest.py)."""
    return tiny_model_dir


SETTINGS = {
    "n_prompts": 8,
    "n_per_prompt": 2,
    "max_new_tokens": 8,
    "embedder": "hashing",
    "global_n_perm": 9,
    "n_perm": 99,
    "use_llm": False,
}


def _config(tiny_dir, **overrides):
    from lmdiff.models.spec import ModelSpec
    from lmdiff.run_config import DiffRunConfig

    return DiffRunConfig(
        base=ModelSpec(model=str(tiny_dir)),
        finetuned=ModelSpec(model=str(tiny_dir)),
        methods=["behavior"],
        method={"behavior": {**SETTINGS, **overrides}},
    )


def test_behavior_method_self_pair(tiny_dir, tmp_path) -> None:
    from lmdiff.diff import run_diff

    run = run_diff(_config(tiny_dir), tmp_path / "run")
    res = json.loads((run.path / "results.json").read_text())
    entry = res["methods"]["behavior"] if "methods" in res else res["behavior"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["n_prompts"] == 8 and h["n_replies"] == 32
    assert h["n_discovery_prompts"] + h["n_validation_prompts"] == 8
    assert h["n_validated"] == 0
    html = (run.path / "report.html").read_text()
    assert "global tests" in html and "failed validation" in html
    assert "artifacts/behavior/annotations.parquet" in html  # where each p-value's held-out scores are


def test_changing_an_analysis_setting_reuses_the_samples(tiny_dir, tmp_path) -> None:
    from lmdiff.diff import run_diff

    run = run_diff(_config(tiny_dir), tmp_path / "run")
    parts = sorted((run.path / "artifacts" / "behavior-generate").rglob("*.parquet"))
    assert parts
    before = {p: p.stat().st_mtime_ns for p in parts}
    run = run_diff(_config(tiny_dir, n_perm=199, ngram_z_min=2.5), tmp_path / "run")
    res = json.loads((run.path / "results.json").read_text())["methods"]["behavior"]
    assert res["status"] == "ok"
    assert {p: p.stat().st_mtime_ns for p in parts} == before  # sampled once, analysed twice
    run = run_diff(_config(tiny_dir, max_new_tokens=6), tmp_path / "run")
    assert any(p.stat().st_mtime_ns != before[p] for p in parts if p.exists())  # new samples for a new length


def test_generative_scorer_gives_per_token_reply_logprobs_under_both_models(tiny_pair) -> None:
    from types import SimpleNamespace

    import numpy as np

    from lmdiff.methods.behavior.method import _scorer

    score = _scorer(SimpleNamespace(pair=tiny_pair))
    lb, lf = score(["Hi", "Hello there"], ["a reply", "another reply here"])
    assert lb.shape == lf.shape == (2,) and np.all(lb < 0) and np.all(lf < 0)
    ref = tiny_pair.finetuned.score([tiny_pair.finetuned.chat_text("Hello there")], ["another reply here"])[0]
    assert lf[1] == pytest.approx(float(ref.mean()), rel=1e-5)  # per token: length is not evidence
    assert not np.allclose(lb, lf)  # the adapter changes the scores
