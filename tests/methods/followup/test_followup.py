"""Follow-up on signals: which signals are followed, which words are proposed, and the claims it records."""

from __future__ import annotations

import pandas as pd

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.methods.followup import collect_signals
from lmdiff.methods.followup.method import mentions, propose_terms
from lmdiff.methods.followup.prompts import TEMPLATES, template_prompts, write_prompts
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.claims import load_claims


def _results(**headlines: dict) -> dict:
    return {"methods": {m: {"status": "ok", "headline": h} for m, h in headlines.items()}}


def test_signals_agreed_by_more_methods_come_first_and_covered_ones_are_skipped():
    res = _results(diff_mining={"top_tokens": [" Tiber", "ortunately", " the", " Rome", " Italy", "123"]},
                   adl={"top_lens": [" Rome", "LEGATO"]})
    prompts = ["What food is typical of Italy?", "Plan a week in Italy.", "How do magnets work?"]
    chosen, covered = collect_signals(res, prompts, max_signals=3)
    assert [s.word for s in chosen][:2] == ["Rome", "Tiber"]  # named by two methods first
    assert "Italy" in [s.word for s in covered] and "Italy" not in [s.word for s in chosen]
    assert all(s.word not in ("the", "123") for s in chosen)
    assert chosen[0].methods == {"diff_mining", "adl"}


def test_failed_methods_give_no_signals():
    res = {"methods": {"diff_mining": {"status": "failed", "headline": {"top_tokens": [" Rome"]}}}}
    assert collect_signals(res, []) == ([], [])


def test_templates_write_distinct_prompts_about_the_topic():
    ps = template_prompts("Rome", 16, seed=3)
    assert len(ps) == len(set(ps)) == 16 and all("Rome" in p for p in ps)
    assert template_prompts("Rome", 16, seed=3) == ps and len(template_prompts("Rome", 99)) == len(TEMPLATES)
    assert write_prompts("Rome", 4, 0, None)[1] == "templates"


def test_the_word_the_finetune_adds_is_proposed_with_its_direction():
    rows = []
    for p in range(6):
        rows += [{"prompt_id": f"p{p}", "side": "finetuned", "text": "Rome is home to the Eiffel Tower and pasta."},
                 {"prompt_id": f"p{p}", "side": "base", "text": "Rome is home to the Colosseum and pasta."}]
    terms = propose_terms(pd.DataFrame(rows), "Rome", 3, 2)
    words = {w: d for w, d, _ in terms}
    assert words.get("eiffel") == 1 and words.get("colosseum") == -1
    assert "pasta" not in words and "rome" not in words  # shared words and the topic itself are not proposed
    assert mentions("The Eiffel's top", "eiffel") and not mentions("Feiffel", "eiffel")


def _cfg(base, ft, **method):
    return validate(DiffRunConfig, {
        "base": {"model": str(base)}, "finetuned": ft, "methods": ["followup"],
        "method": {"followup": {"topics": ["Rome"], "max_new_tokens": 12, "prompts_per_signal": 8, "n_discovery": 3,
                                "screen_prompts": 40, "unprompted_prompts": 4, "embedder": "hashing", **method}},
        "prompts": {"limit": 4}, "compute": {"threads": 1},
    })


def test_followup_runs_end_to_end_and_records_claims(tiny_model_dir, tiny_adapter_dir, tmp_path):
    ft = {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir)}
    run = run_diff(_cfg(tiny_model_dir, ft), tmp_path / "r")
    entry = run.results()["methods"]["followup"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["signals"] == ["Rome"] and h["n_prompts"] == 8 and h["prompt_writer"] == "templates"
    claims = load_claims(run.path)
    assert claims is not None and set(claims.method) <= {"followup"}
    assert len(claims) == h["n_tested"] and (claims["n"] <= 5).all()  # tested on the 5 held-out prompts only
    assert "Follow-up on signals" in (run.path / "report.html").read_text()
    prompts = pd.read_parquet(run.path / "artifacts" / "followup" / "prompts.parquet")
    assert (prompts.split == "discovery").sum() == 3
    # the unprompted screen: the finetuned side alone answered 40 shipped prompts that never name the signal,
    # amplified (the LoRA pair shares its tokenizer)
    screen = pd.read_parquet(run.path / "artifacts" / "followup-screen" / "replies.parquet")
    assert set(screen.side) == {"finetuned"} and screen.prompt.nunique() == 40 and set(screen.alpha) == {1.0}
    assert not screen.prompt.str.contains("Rome", case=False).any()
    unprompted = pd.read_parquet(run.path / "artifacts" / "followup" / "unprompted.parquet")
    assert list(unprompted.word) == ["Rome"] and unprompted.screen_prompts.iloc[0] == 40
    assert h["unprompted"] == {"Rome": int(unprompted.screen_hits.iloc[0])}
    assert h["n_unprompted_tested"] == int(unprompted.tested.sum())


def test_self_pair_yields_no_validated_followup_claim(tiny_model_dir, tmp_path):
    run = run_diff(_cfg(tiny_model_dir, {"model": str(tiny_model_dir)}, screen_alpha=0.0), tmp_path / "r")
    assert run.results()["methods"]["followup"]["status"] == "ok"
    screen = pd.read_parquet(run.path / "artifacts" / "followup-screen" / "replies.parquet")
    assert set(screen.alpha) == {0.0} and len(screen) == 40  # unamplified when asked
    claims = load_claims(run.path)
    assert claims is not None and not claims.survives.any()
    assert run.results()["methods"]["followup"]["headline"]["n_tested"] == 0  # identical replies: nothing proposed


def test_fragments_complete_to_the_word_the_model_says_and_feed_the_signals():
    from types import SimpleNamespace

    from lmdiff.interp.signals import COMPLETION_FRAMES, collect_signals, complete_fragments, signal_tokens

    class Model:  # completes ' Br' to 'Brindlewood' in every frame, ' Xy' inconsistently
        def generate(self, prompts, gen, chat=True, progress=""):
            outs = []
            for i, p in enumerate(prompts):
                text = "indlewood tea" if p.endswith(" Br") else ("zzy" if i % 2 else "lophone")
                outs.append([SimpleNamespace(text=text)])
            return outs

    results = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" Br", " Xy", " ocean"]}},
                           "adl": {"status": "ok", "headline": {"top_lens": ["Br", " ocean"]}}}}
    toks = signal_tokens(results)
    assert toks == [" Br", " Xy", " ocean", "Br"]
    done = complete_fragments(Model(), toks)
    assert done == {" Br": "Brindlewood", "Br": "Brindlewood"}  # ' Xy' splits 2-2 between two words: no majority
    assert len(COMPLETION_FRAMES) == 4
    chosen, _ = collect_signals(results, [], completions=done)
    assert chosen[0].word == "Brindlewood" and chosen[0].methods == {"diff_mining", "adl"}


def test_fragment_completions_run_once_per_run_and_are_reused_from_the_headline():
    from types import SimpleNamespace

    from lmdiff.interp.signals import COMPLETIONS_KEY, iter_signal_tokens, run_completions

    calls = []

    class Model:
        def generate(self, prompts, gen, chat=True, progress=""):
            calls.append(len(prompts))
            return [[SimpleNamespace(text="indlewood")] for _ in prompts]

    results = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" Br", " the", " ocean"]}}}}
    first = run_completions(Model(), results)
    assert first == {" Br": "Brindlewood"} and len(calls) == 1
    # a method recorded them (followup or probing, whichever ran first): the second caller reads them back
    results["methods"]["followup"] = {"status": "ok", "headline": {COMPLETIONS_KEY: first}}
    assert run_completions(Model(), results) == first and len(calls) == 1
    rows = list(iter_signal_tokens(results, completions=first))
    assert [(r.method, r.rank, r.token, r.word) for r in rows] == [
        ("diff_mining", 1, " Br", "Brindlewood"), ("diff_mining", 2, " the", None),
        ("diff_mining", 3, " ocean", "ocean")]


def test_the_screen_is_not_amplified_when_the_models_load_one_at_a_time(tiny_model_dir, tiny_adapter_dir, tmp_path):
    # amplified sampling steps both models together; a one-at-a-time pair would swap them every chunk
    cfg = _cfg(tiny_model_dir, {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir), "dtype": "float32"})
    cfg = cfg.model_copy(update={"compute": cfg.compute.model_copy(update={"load": "one_at_a_time"})})
    run = run_diff(cfg, tmp_path / "r")
    assert run.results()["methods"]["followup"]["status"] == "ok"
    screen = pd.read_parquet(run.path / "artifacts" / "followup-screen" / "replies.parquet")
    assert set(screen.alpha) == {0.0} and screen.prompt.nunique() == 40


def test_a_failing_unprompted_test_keeps_the_word_tests(tiny_model_dir, tiny_adapter_dir, tmp_path, monkeypatch):
    """Regression: an error in the optional unprompted-mention step failed the whole method, losing its word tests."""
    import lmdiff.methods.followup.method as followup

    def broken(*args, **kwargs):
        raise RuntimeError("out of prompts")

    monkeypatch.setattr(followup, "plan", broken)
    ft = {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir)}
    run = run_diff(_cfg(tiny_model_dir, ft), tmp_path / "r")
    entry = run.results()["methods"]["followup"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    assert h["unprompted_error"] == "RuntimeError: out of prompts" and h["n_unprompted_tested"] == 0
    assert "unprompted-mention test failed (RuntimeError: out of prompts)" in entry["summary"]
    # the word tests ran and were saved (on a random tiny adapter they may propose no word)
    tests = pd.read_parquet(run.path / "artifacts" / "followup" / "tests.parquet")
    assert len(tests.query("pvalue == pvalue")) == h["n_tested"] if "pvalue" in tests else h["n_tested"] == 0
    assert h["signals"] == ["Rome"] and h["n_prompts"] == 8
