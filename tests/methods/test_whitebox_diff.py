"""End to end: the white-box methods through run_diff on the tiny pair and the self pair."""

from __future__ import annotations

import json

import pytest

from lmdiff.config import DiffRunConfig, validate
from lmdiff.diff import run_diff

SMALL = {
    "kl": {"corpus": "generic", "max_texts": 6, "max_tokens": 24},
    "activation_stats": {"corpus": "generic", "max_texts": 6, "max_tokens": 24},
    "adl": {"corpus": "generic", "n_texts": 6, "n_tokens": 12, "steering_prompts": 1, "steering_samples": 1,
            "steering_search_steps": 2, "max_new_tokens": 8, "patchscope_scales": [1.0, 4.0]},
    "diff_mining": {"corpus": "generic", "max_texts": 6, "positions": 8},
}


def _run(base, ft, out, methods):
    cfg = validate(DiffRunConfig, {"base": base, "finetuned": ft, "methods": methods,
                                   "method": {m: SMALL[m] for m in methods}})
    run = run_diff(cfg, out)
    return json.loads((run.path / "results.json").read_text()), run


@pytest.mark.parametrize("which", ["tiny", "self"])
def test_all_methods(tiny_dirs, tmp_path, which):
    base_dir, adapter_dir = tiny_dirs
    ft = {"model": str(base_dir), "adapter": str(adapter_dir)} if which == "tiny" else {"model": str(base_dir)}
    methods = [m for m in SMALL if _registered(m)]
    res, run = _run({"model": str(base_dir)}, ft, tmp_path / which, methods)
    for m in methods:
        assert res["methods"][m]["status"] == "ok", res["methods"][m]
        assert res["methods"][m]["corpus"]
    html = (run.path / "report.html").read_text()
    assert "rendering failed" not in html
    kl = res["methods"]["kl"]["headline"]["mean_kl"]
    adl = res["methods"]["adl"]["headline"]
    assert len(adl["layers"]) == 2 and set(adl["by_layer"]) == {str(x) for x in adl["layers"]}
    diff_norms = [n for v in adl["by_layer"].values() for n in v["mean_diff_norms"]]
    if which == "self":
        assert max(diff_norms) == 0.0
        assert kl < 1e-6
        if "activation_stats" in methods:
            assert res["methods"]["activation_stats"]["headline"]["mean_norm_diff"] == 0.0
    else:
        assert min(diff_norms) > 0
        assert kl > 1e-4


def _registered(name):
    from lmdiff.methods.registry import available_methods

    return name in available_methods()
