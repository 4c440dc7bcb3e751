"""End-to-end: the ``behavior`` method on a tiny random model pair through ``run_diff``."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_dir(tiny_model_dir):
    """The session's tiny random model (tests/conftest.py)."""
    return tiny_model_dir


def test_behavior_method_self_pair(tiny_dir, tmp_path) -> None:
    from lmdiff.config import DiffRunConfig
    from lmdiff.diff import run_diff
    from lmdiff.models.spec import ModelSpec

    cfg = DiffRunConfig(
        base=ModelSpec(model=str(tiny_dir)),
        finetuned=ModelSpec(model=str(tiny_dir)),
        methods=["behavior"],
        method={
            "behavior": {
                "n_prompts": 8,
                "n_per_prompt": 2,
                "max_new_tokens": 8,
                "embedder": "hashing",
                "global_n_perm": 9,
                "n_perm": 99,
                "use_llm": False,
            }
        },
    )
    run = run_diff(cfg, tmp_path / "run")
    res = json.loads((run.path / "results.json").read_text())
    entry = res["methods"]["behavior"] if "methods" in res else res["behavior"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["n_prompts"] == 8 and h["n_replies"] == 32
    assert h["n_discovery_prompts"] + h["n_validation_prompts"] == 8
    assert h["n_validated"] == 0
    html = (run.path / "report.html").read_text()
    assert "global tests" in html and "failed validation" in html
