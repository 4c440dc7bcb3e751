"""`run_diff` end to end on tiny models: results.json, report, reuse of finished methods."""

from lmdiff.config import DiffRunConfig, validate
from lmdiff.diff import run_diff
from lmdiff.io import read_json


def _cfg(base, ft, **extra):
    return validate(DiffRunConfig, {"base": {"model": str(base)}, "finetuned": ft, "methods": ["samples"],
                                    "method": {"samples": {"n_prompts": 3, "max_new_tokens": 6}}, **extra})


def test_diff_samples_lora_pair(tiny_model_dir, tiny_adapter_dir, tmp_path):
    cfg = _cfg(tiny_model_dir, {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir)})
    run = run_diff(cfg, tmp_path / "r")
    res = read_json(run.path / "results.json")
    entry = res["methods"]["samples"]
    assert entry["status"] == "ok" and entry["headline"]["n_replies"] == 6
    # the finetune's own replies are more likely under the finetune than under the base
    assert entry["headline"]["llr_finetuned_replies"] > 0
    assert res["pair"]["shares_weights"] is True and res["tokenizers_shared"] is True
    html = (run.path / "report.html").read_text()
    assert 'id="samples"' in html and "data:image/png" in html
    mtime = (run.path / "steps" / "method-samples.json").stat().st_mtime_ns
    run2 = run_diff(cfg, tmp_path / "r")  # same config: reused, not recomputed
    assert (run2.path / "steps" / "method-samples.json").stat().st_mtime_ns == mtime


def test_self_pair_finds_zero_llr(tiny_model_dir, tmp_path):
    run = run_diff(_cfg(tiny_model_dir, {"model": str(tiny_model_dir)}), tmp_path / "r")
    h = read_json(run.path / "results.json")["methods"]["samples"]["headline"]
    assert abs(h["llr_finetuned_replies"]) < 1e-6 and abs(h["llr_base_replies"]) < 1e-6


def test_methods_needing_both_models_are_skipped_one_at_a_time(tiny_model_dir, tiny_adapter_dir, tmp_path):
    cfg = validate(DiffRunConfig, {
        "base": {"model": str(tiny_model_dir)},
        "finetuned": {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir), "dtype": "float32"},
        "methods": ["kl"], "compute": {"load": "one_at_a_time"},
        "method": {"kl": {"corpus": "generic", "max_texts": 2, "max_tokens": 8}}})
    run = run_diff(cfg, tmp_path / "r")
    entry = read_json(run.path / "results.json")["methods"]["kl"]
    assert entry["status"] == "skipped" and "compute.load=together" in entry["summary"]
