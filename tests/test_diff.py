"""`run_diff` end to end on tiny models: results.json, report, reuse of finished methods."""

import pandas as pd
import pytest

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.io import read_json
from lmdiff.run_config import DiffRunConfig


def _cfg(base, ft, **extra):
    return validate(DiffRunConfig, {"base": {"model": str(base)}, "finetuned": ft, "methods": ["samples"],
                                    "method": {"samples": {"n_prompts": 3, "max_new_tokens": 6}}, **extra})


def test_diff_samples_lora_pair(tiny_model_dir, tiny_adapter_dir, tmp_path):
    cfg = _cfg(tiny_model_dir, {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir)})
    run = run_diff(cfg, tmp_path / "r")
    res = read_json(run.path / "results.json")
    entry = res["methods"]["samples"]
    assert entry["status"] == "ok" and entry["headline"]["n_replies"] == 6
    # the headline is the mean per-reply log-likelihood ratio of the finetune's replies (its sign on a random
    # adapter is chance: replies are re-tokenised from text, so it is not an expected KL)
    scored = pd.read_parquet(run.path / "artifacts" / "samples" / "samples.parquet")
    ft = scored[scored["side"] == "finetuned"]
    assert (ft["logp_finetuned"] <= 0).all() and (ft["logp_base"] <= 0).all()
    expected = (100 * (ft["logp_finetuned"] - ft["logp_base"]) / ft["chars"]).mean()
    assert entry["headline"]["llr_finetuned_replies"] == pytest.approx(expected)
    assert res["pair"]["shares_weights"] is True and res["tokenizers_shared"] is True
    html = (run.path / "report.html").read_text()
    assert 'id="samples"' in html and "data:image/png" in html
    mtime = (run.path / "steps" / "method-samples.json").stat().st_mtime_ns
    run2 = run_diff(cfg, tmp_path / "r")  # same config: reused, not recomputed
    assert (run2.path / "steps" / "method-samples.json").stat().st_mtime_ns == mtime
    # results.json lost: the reused method's entry comes back from its step (later methods read it for signals)
    (run.path / "results.json").unlink()
    run3 = run_diff(cfg, tmp_path / "r")
    assert (run3.path / "steps" / "method-samples.json").stat().st_mtime_ns == mtime
    again = read_json(run3.path / "results.json")["methods"]["samples"]
    assert again["status"] == "ok" and again["headline"] == entry["headline"] and again["summary"] == entry["summary"]
    assert 'id="samples"' in (run3.path / "report.html").read_text()


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


def test_noise_floor_is_recorded_and_differences_near_it_are_flagged(tiny_model_dir, tiny_adapter_dir, tmp_path):
    from lmdiff.diff import write_report
    from lmdiff.io import write_json

    cfg = validate(DiffRunConfig, {
        "base": {"model": str(tiny_model_dir), "dtype": "float32"},
        "finetuned": {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir), "dtype": "float32"},
        "methods": ["kl"], "method": {"kl": {"corpus": "generic", "max_texts": 3, "max_tokens": 12}}})
    run = run_diff(cfg, tmp_path / "r")
    res = read_json(run.results_path)
    num = res["numerics"]
    assert num["dtype"] == res["pair"]["dtypes"]["finetuned"] == "float32"
    assert num["dtype_reason"] == "asked for float32"
    nf = num["noise_floor"]
    assert nf["n_texts"] == 8 and nf["n_tokens"] > 8 and nf["dtype"] == "float32"
    assert 0 <= nf["mean_abs_logprob_delta"] <= nf["max_abs_logprob_delta"] <= num["score_tolerance"] <= 1e-3
    assert nf["mean_kl"] < 1e-6
    md = (run.path / "report.md").read_text()
    assert "Numerics: float32" in md and "within 10x" not in md  # the adapter's KL is far above the floor
    marker = (run.path / "steps" / "numerics-noise-floor.json").stat().st_mtime_ns
    run = run_diff(cfg, tmp_path / "r")  # resumed: the floor is not measured again
    assert (run.path / "steps" / "numerics-noise-floor.json").stat().st_mtime_ns == marker
    # a floor within 10x of the mean KL: a warning in the overview and in the kl section
    mean_kl = res["methods"]["kl"]["headline"]["mean_kl"]
    res["numerics"]["noise_floor"]["mean_kl"] = mean_kl / 5
    write_json(run.results_path, res)
    write_report(run)
    md = (run.path / "report.md").read_text()
    overview, kl_section = md.split("KL: where")[0], md.split("KL: where")[1]
    assert "kl: mean_kl = " in overview and "within 10x of the numerical noise floor" in overview
    assert "**WARN**: mean_kl = " in kl_section


def test_default_method_set_adapts_to_the_pair(tiny_model_dir, tiny_adapter_dir, tmp_path):
    from transformers import AutoTokenizer

    from lmdiff.diff import DEFAULT_BLACK_BOX, DEFAULT_WHITE_BOX, default_methods, method_order
    from lmdiff.models.pair import ModelPair
    from tests.helpers import build_tiny_model

    methods, why = default_methods(ModelPair(str(tiny_model_dir), str(tiny_adapter_dir)))
    assert methods == list(DEFAULT_WHITE_BOX) and "share a tokenizer" in why
    other = build_tiny_model(tmp_path / "other")
    tok = AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["<extra_token_for_test>"])
    tok.save_pretrained(other)
    methods, why = default_methods(ModelPair(str(tiny_model_dir), str(other)))
    assert methods == list(DEFAULT_BLACK_BOX) and "tokenizers differ" in why
    # readouts first, follow-up after them, the validator last, whatever order they are asked in
    assert method_order(["behavior", "followup", "kl"]) == ["kl", "followup", "behavior"]


def test_default_set_sizes_methods_for_the_budget_and_user_settings_win(tiny_model_dir):
    from lmdiff.diff import method_configs

    cfg = _cfg(tiny_model_dir, {"model": str(tiny_model_dir)}, method={})
    assert method_configs(cfg, ["kl"], default_set=True)["kl"].max_texts == 40
    assert method_configs(cfg, ["kl"])["kl"].max_texts == 200  # asked for by name: the method's own defaults
    cfg.method["kl"] = {"max_texts": 7}
    assert method_configs(cfg, ["kl"], default_set=True)["kl"].max_texts == 7


def test_a_stage1_method_reruns_when_the_tokens_it_reads_changed(tiny_model_dir, tiny_adapter_dir, tmp_path):
    """Regression: followup's step key held only its config, the pair, the prompts and the seed, so a run whose
    readouts since pointed at other tokens reused a follow-up of the old ones."""
    from lmdiff.io import write_json

    cfg = validate(DiffRunConfig, {
        "base": {"model": str(tiny_model_dir)}, "finetuned": {"model": str(tiny_model_dir),
                                                              "adapter": str(tiny_adapter_dir)},
        "methods": ["followup"], "prompts": {"limit": 4}, "compute": {"threads": 1},
        "method": {"followup": {"max_new_tokens": 8, "prompts_per_signal": 6, "n_discovery": 2,
                                "screen_prompts": 0, "embedder": "hashing"}},
    })
    run = run_diff(cfg, tmp_path / "r")
    marker = run.path / "steps" / "method-followup.json"
    assert read_json(marker)["summary"]["upstream"] == {}
    assert run.results()["methods"]["followup"]["headline"]["signals"] == []
    # a readout of this run directory now points at ' Rome'
    res = read_json(run.path / "results.json")
    res["methods"]["diff_mining"] = {"status": "ok", "headline": {"top_tokens": [" Rome"]}}
    write_json(run.path / "results.json", res)
    run2 = run_diff(cfg, tmp_path / "r")
    assert run2.results()["methods"]["followup"]["headline"]["signals"] == ["Rome"]
    assert read_json(marker)["summary"]["upstream"] == {"diff_mining.top_tokens": [" Rome"]}
    mtime = marker.stat().st_mtime_ns
    run_diff(cfg, tmp_path / "r")  # unchanged: reused
    assert marker.stat().st_mtime_ns == mtime
