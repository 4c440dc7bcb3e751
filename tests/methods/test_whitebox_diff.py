"""End to end: every white-box method through run_diff, on the tiny LoRA pair, on perturbed pairs of four
architecture families, and on self pairs (where every difference must be zero)."""

from __future__ import annotations

import json
import math

import pytest

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.methods.followup import SIGNAL_KEYS
from lmdiff.run_config import DiffRunConfig
from tests.helpers import FAMILIES, build_perturbed_copy, build_tiny_model

SMALL = {
    "kl": {"corpus": "generic", "max_texts": 6, "max_tokens": 24},
    "activation_stats": {"corpus": "generic", "max_texts": 6, "max_tokens": 24},
    "adl": {"corpus": "generic", "n_texts": 6, "n_tokens": 12, "steering_prompts": 1, "steering_samples": 1,
            "steering_search_steps": 2, "max_new_tokens": 8, "patchscope_scales": [1.0, 4.0]},
    "diff_mining": {"corpus": "generic", "max_texts": 6, "positions": 8},
    "causal": {"corpus": "generic", "n_texts": 6, "n_tokens": 12, "eval_texts": 2, "max_tokens": 12,
               "reply_tokens": 4, "n_random": 2, "n_diff_random": 1},
}


def _run(base, ft, out):
    methods = list(SMALL)
    cfg = validate(DiffRunConfig, {"base": base, "finetuned": ft, "methods": methods, "method": SMALL})
    run = run_diff(cfg, out)
    return json.loads((run.path / "results.json").read_text()), run


def _check(res, run, differs: bool):
    for m in SMALL:
        assert res["methods"][m]["status"] == "ok", res["methods"][m]
        assert res["methods"][m]["corpus"]
    assert "rendering failed" not in (run.path / "report.html").read_text()
    # adl and causal read the same settings, so they share one store; activation_stats has its own
    assert len(list((run.path / "activations").glob("store-*"))) == 2
    h = {m: res["methods"][m]["headline"] for m in SMALL}
    kl, stats, adl, mining, causal = h["kl"], h["activation_stats"], h["adl"], h["diff_mining"], h["causal"]
    assert len(adl["layers"]) == 2 and set(adl["by_layer"]) == {str(x) for x in adl["layers"]}
    diff_norms = [n for v in adl["by_layer"].values() for n in v["mean_diff_norms"]]
    assert kl["n_tokens"] > 0 and stats["n_tokens"] > 0 and mining["n_positions"] > 0
    assert 0.0 <= kl["eot_kl_share"] <= 1.0 and kl["mean_kl_content"] <= kl["max_kl"] + 1e-9
    assert "end-of-turn positions" in res["methods"]["kl"]["summary"]
    assert "Excluding end-of-turn positions" in (run.path / "report.html").read_text()
    if not differs:
        assert max(diff_norms) == 0.0
        assert kl["mean_kl"] < 1e-6 and kl["max_kl"] < 1e-5
        assert stats["mean_norm_diff"] == 0.0 and stats["mean_cosine"] == pytest.approx(1.0, abs=1e-5)
        assert mining["identical_distributions"] is True and mining["top_tokens"] == []
        assert causal["skipped"] is True
    else:
        assert min(diff_norms) > 0
        assert kl["mean_kl"] > 1e-5 and kl["max_kl"] >= kl["mean_kl"]
        assert stats["mean_norm_diff"] > 0 and 0 < stats["mean_rel_norm_diff"] < 10
        assert -1.0 <= stats["mean_cosine"] < 1.0
        assert mining["identical_distributions"] is False and len(mining["top_tokens"]) > 0
        assert causal["skipped"] is False and causal["direction_norm"] > 0
        assert math.isfinite(causal["ablate_generic_delta"]) and math.isfinite(causal["swap_generic_delta"])
        assert causal["ablate_generic_delta"] != 0.0
    # the follow-up step and the report's leads read these headline keys: they must exist where a method writes
    for method, key in SIGNAL_KEYS.items():
        if method in h:
            assert isinstance(h[method][key], list), (method, key)


@pytest.mark.parametrize("which", ["tiny", "self"])
def test_all_methods(tiny_dirs, tmp_path, which):
    base_dir, adapter_dir = tiny_dirs
    ft = {"model": str(base_dir), "adapter": str(adapter_dir)} if which == "tiny" else {"model": str(base_dir)}
    res, run = _run({"model": str(base_dir)}, ft, tmp_path / which)
    _check(res, run, differs=which == "tiny")


@pytest.fixture(scope="module", params=FAMILIES)
def family_dirs(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    base = build_tiny_model(root / "base", family=request.param)
    return request.param, base, build_perturbed_copy(base, root / "perturbed")


def test_all_methods_per_family(family_dirs, tmp_path):
    """Each architecture family: the perturbed pair differs everywhere, the self pair nowhere."""
    family, base, perturbed = family_dirs
    res, run = _run({"model": str(base)}, {"model": str(perturbed)}, tmp_path / "perturbed")
    _check(res, run, differs=True)
    assert res["methods"]["adl"]["headline"]["layers"] == [0, 1], family
    res, run = _run({"model": str(base)}, {"model": str(base)}, tmp_path / "self")
    _check(res, run, differs=False)
