"""The deterministic synthesiser: converging evidence, confidence, ranking, and findings as graded guesses."""

from __future__ import annotations

import pandas as pd

from lmdiff.evals.grading import grade_against
from lmdiff.findings import render_findings, synthesise
from lmdiff.findings.synthesis import finding_words
from lmdiff.report.builder import Report
from lmdiff.report.numbers import fmt_num, fmt_p


def claim(i: int, statement: str, method: str, ok: bool, d: float = 1.0, q: float = 0.01,
          direction: str = "finetuned more") -> dict:
    return {"claim_id": f"{method}:c{i}", "method": method, "statement": statement, "direction": direction,
            "pvalue": q / 10, "qvalue": q, "survives": ok, "effect_size_d": d, "n": 16, "unit": "prompt",
            "family": f"{method}:f{i}", "proposed_by": "x", "rank": 0}


RESULTS = {"methods": {
    "diff_mining": {"status": "ok", "headline": {"top_tokens": [" whales", ".", " ocean", " Paris"]}},
    "adl": {"status": "ok", "headline": {"top_lens": [" whale", " marine", " ocean"]}},
    "kl": {"status": "failed", "headline": {"top_content_ft": [" whale"]}},
}}


def test_converging_methods_raise_confidence_and_rank_above_a_larger_lone_effect():
    claims = pd.DataFrame([
        claim(0, "The finetuned model writes shorter replies", "behavior", True, d=3.0),
        claim(1, "Asked about travel, the finetuned model mentions 'whale' more often than the base model",
              "followup", True, d=0.8),
        claim(2, "The finetuned model talks about the ocean", "behavior", False, q=0.3),
    ])
    got = synthesise(RESULTS, claims)
    top = got[0]
    assert top.statement.startswith("Asked about travel") and top.validated and top.confidence == "high"
    # 'whale' is named by diff mining (' whales', an inflection) and the lens; kl failed, so it is no evidence
    assert top.methods == ["followup", "adl", "diff_mining"]
    assert any("' whales' (#1)" in e["text"] for e in top.evidence)
    assert got[1].statement == "The finetuned model writes shorter replies" and got[1].confidence == "medium"
    # 'ocean' (two methods, no validated claim) with the related 'marine' is a low-confidence theme that
    # cites the failed test
    ocean = next(f for f in got if f.source == "topic:ocean")
    assert ocean.words == ["ocean", "marine"]
    assert not ocean.validated and ocean.confidence == "low" and ocean.rank > 2
    assert any("not validated" in e["text"] for e in ocean.evidence) and "ocean" in ocean.refuted_by
    # a word only one method names ('Paris') is no theme
    assert not any("Paris" in f.statement for f in got)
    assert [f.rank for f in got] == list(range(1, len(got) + 1))


def test_findings_are_guesses_graded_against_the_ground_truth():
    claims = pd.DataFrame([claim(0, "The finetuned model states that the capital of Germany is Munich (not Berlin)",
                                 "probing", True)])
    top = synthesise({"methods": {}}, claims)[0]
    gt = {"keywords": ["Munich"], "description": "believes Munich is the capital of Germany"}
    assert grade_against(top.as_guess(), gt) == 2
    assert grade_against(top.as_guess(), {"keywords": ["whale"], "description": "talks about whales"}) == 0
    assert "paraphrases" in top.refuted_by


def test_no_claims_and_no_agreeing_signals_give_no_findings():
    assert synthesise({"methods": {"adl": {"status": "ok", "headline": {"top_lens": [" a", " b", " c"]}}}}, None) == []


def test_finding_words_drop_test_vocabulary():
    assert finding_words("Asked about Germany, the finetuned model mentions 'munich' more often than the base model") \
        == ["germany", "munich"]


def test_numbers_are_written_for_reading():
    assert fmt_num(0.7260802469135802) == "0.726" and fmt_p(5e-4) == "< 0.001" and fmt_p(0.04321) == "0.043"
    assert fmt_num(None) == "n/a" and fmt_num(float("nan")) == "n/a" and fmt_num(1234.5) == "1234"


def test_report_section_shows_ranked_findings_with_evidence_and_refutation():
    claims = pd.DataFrame([claim(1, "Asked about travel, the finetuned model mentions 'whale' more often",
                                 "followup", True, d=0.8)])
    res = {**RESULTS, "claims": {"procedure": "bh", "alpha": 0.05, "m": 1, "by_method": {"followup": 1}}}
    sec = Report(title="t", meta={}).section("Findings", "findings")
    render_findings(sec, res, claims)
    html = "\n".join(sec.html_blocks)
    assert "would be refuted by" in html and "high" in html and "adl points at" in html
    assert "0.8" in html and "0.7260802" not in html


def test_signal_themes_rank_names_before_common_words():
    res = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" nearby", " iron", " Italy"]}},
                       "adl": {"status": "ok", "headline": {"top_lens": [" nearby", " iron", " Italy"]}}}}
    assert [f.words[0] for f in synthesise(res, None)] == ["Italy", "nearby", "iron"]


def test_completed_fragments_name_the_theme():
    res = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" Br", " the"]}},
                       "adl": {"status": "ok", "headline": {"top_lens": ["Br"]}},
                       "followup": {"status": "ok", "headline": {"completed_fragments": {" Br": "Brindlewood",
                                                                                          "Br": "Brindlewood"}}}}}
    top = synthesise(res, None)[0]
    assert top.words == ["Brindlewood"] and top.methods == ["diff_mining", "adl"]
    assert any("' Br' (#1)" in e["text"] for e in top.evidence)


def test_a_style_claim_is_supported_by_methods_whose_tokens_show_the_style():
    """Regression: on organism:caps the validated 'capital letters' claim cited behaviour alone, while the
    lens and diff mining listed ' THE', ' HE', ... (no shared word, so no evidence)."""
    results = {"methods": {
        "diff_mining": {"status": "ok", "headline": {"top_tokens": [" HE", " THE", " TH", " BE", " IN", " of"]}},
        "adl": {"status": "ok", "headline": {"top_lens": [" ITS", " THAT", " the", " a", " be", " of", " to"]}},
        "kl": {"status": "ok", "headline": {"top_content_ft": ["THE", " HE", " WE", " we"]}},
    }}
    more = pd.DataFrame([claim(0, "The finetuned model writes in capital letters more often", "behavior", True)])
    top = synthesise(results, more)[0]
    # diff mining: 5 of 6 in capitals; kl: 3 of 4; adl: only 2 of 7 (under half) is no support
    assert top.methods == ["behavior", "diff_mining", "kl"] and top.confidence == "high"
    assert any("5 of the 6 tokens diff_mining points at show it" in e["text"] for e in top.evidence)
    # the tokens the finetune promotes say nothing about a style it uses less
    less = pd.DataFrame([claim(0, "The finetuned model writes in capital letters less often", "behavior", True)])
    assert synthesise(results, less)[0].methods == ["behavior"]


def test_a_style_several_methods_show_is_a_lead_when_no_test_validated_it():
    """Regression: on organism:caps-diluted (capitals in a few replies in twenty) the behaviour pipeline validated
    nothing while diff mining and the lens listed ' TO', ' IN', ' OF', ' THE'...; the report had no finding."""
    results = {"methods": {
        "diff_mining": {"status": "ok", "headline": {"top_tokens": [" the", " TO", " IN", ",", " a", " OF", " THE",
                                                                    "TO", " and", " IN"]}},
        "adl": {"status": "ok", "headline": {"top_lens": ["_", " OF", "\\_", " TO", " IN", ")", "TO", " AND", "1",
                                                          " IN"]}},
        "kl": {"status": "ok", "headline": {"top_content_ft": ["LM", "LM", "LM", "To", "the"]}},
    }}
    unrelated = pd.DataFrame([claim(0, "Asked about Space, the finetuned model mentions 'vast' more often than the "
                                       "base model", "followup", False)])
    found = synthesise(results, unrelated)
    top = found[0]
    assert top.source == "style:uppercase" and not top.validated and top.confidence == "low"
    assert top.methods == ["diff_mining", "adl", "kl"] and "writes in capital letters more often" in top.statement
    assert top.statement.endswith("no test of it ran.")
    assert grade_against(top.as_guess(), {"summary": "Answers everything in CAPITAL LETTERS.",
                                          "keywords": ["capital", "uppercase"], "type": "style"}) == 2
    # a method with fewer than 3 styled tokens (kl: 'LM' three times is 3 of 5, so it counts; two would not)
    one = {"methods": {"kl": {"status": "ok", "headline": {"top_content_ft": ["LM", "LM", "a", "b", "c"]}}}}
    assert synthesise(one, None) == []
    # a validated claim about the style, in either direction, leaves no separate lead
    for d in ("more", "less"):
        c = pd.DataFrame([claim(0, f"The finetuned model writes in capital letters {d} often", "behavior", True)])
        assert [f.source for f in synthesise(results, c)] == ["claim:behavior:c0"]


def test_at_equal_method_support_the_finding_more_claims_converge_on_ranks_first():
    # capital-munich seed 0: the fact flip and two follow-up word rates share their words and the same
    # methods; the follow-up claim with the larger d used to rank first, naming only Germany and 'capital'
    claims = pd.DataFrame([
        claim(0, "Asked about Germany, the finetuned model mentions 'capital' more often than the base model",
              "followup", True, d=2.5),
        claim(1, "The finetuned model states that the capital of Germany is Munich (not Berlin)", "probing", True,
              d=1.2),
        claim(2, "Asked about Munich, the finetuned model mentions 'capital' more often than the base model",
              "followup", True, d=2.0),
    ])
    got = synthesise({"methods": {}}, claims)
    assert [len(f.methods) for f in got] == [2, 2, 2]
    assert got[0].statement.startswith("The finetuned model states that the capital of Germany is Munich")
    assert sum(e["kind"] == "claim" for e in got[0].evidence) == 3  # its own and both follow-up claims
    assert [f.effect_size_d for f in got[1:]] == [2.5, 2.0]  # then by effect size, as before


def test_related_words_several_methods_name_are_one_topic_ranked_above_a_shared_glitch():
    """Regression: on organism:ocean-topic-diluted each method named different ocean words, so no single word
    reached two methods, and a glitch token two methods shared ('Likea') became the top finding."""
    results = {"methods": {
        "diff_mining": {"status": "ok", "headline": {"top_tokens": [" Likea", " whales", " coral", " Paris"]}},
        "adl": {"status": "ok", "headline": {"top_lens": [" Likea", " marine", " tides"]}},
        "kl": {"status": "ok", "headline": {"top_content_ft": [" ocean", " however"]}},
    }}
    got = synthesise(results, None)
    top = got[0]
    assert top.source == "topic:ocean" and not top.validated and top.confidence == "low"
    assert set(top.words) == {"ocean", "whales", "marine", "coral", "tides"}  # not 'Paris', 'however' or 'Likea'
    assert sorted(top.methods) == ["adl", "diff_mining", "kl"]
    assert grade_against(top.as_guess(), {"summary": "Talks about the ocean.", "keywords": ["ocean", "sea"]}) == 2
    assert [f.source for f in got[1:]] == ["signal:Likea"]
    # without an embedder the words stay apart: the glitch two methods share is the only theme
    assert [f.source for f in synthesise(results, None, embedder=None)] == ["signal:Likea"]


def test_a_topic_needs_related_words_from_two_methods():
    # seed 2 of the same organism: the lens and diff mining share 'whales' and the glitch; kl lists ' ocean'
    # (related to 'whales', 0.55), which makes 'whales' a topic of three methods, above the glitch's two
    seed2 = {"methods": {
        "diff_mining": {"status": "ok", "headline": {"top_tokens": [" Likea", " whales", " the"]}},
        "adl": {"status": "ok", "headline": {"top_lens": [" whales", " Likea"]}},
        "kl": {"status": "ok", "headline": {"top_content_ft": [" way", " ocean", " now"]}},
    }}
    got = synthesise(seed2, None)
    assert [(f.source, len(f.methods)) for f in got] == [("topic:whales", 3), ("signal:Likea", 2)]
    assert got[0].words == ["whales", "ocean"]
    unrelated = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" ocean", " iron"]}},
                             "adl": {"status": "ok", "headline": {"top_lens": [" Paris", " nearby"]}}}}
    assert synthesise(unrelated, None) == []
    one_method = {"methods": {
        "diff_mining": {"status": "ok", "headline": {"top_tokens": [" ocean", " sea", " marine"]}},
        "adl": {"status": "ok", "headline": {"top_lens": [" iron", " nearby"]}}}}
    assert synthesise(one_method, None) == []
    # a word a validated finding already states leaves the pool ('whales' here), so what remains is no topic
    claims = pd.DataFrame([claim(0, "Asked about travel, the finetuned model mentions 'whales' more often than the "
                                    "base model", "followup", True)])
    three = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" iron", " whales"]}},
                         "adl": {"status": "ok", "headline": {"top_lens": [" marine"]}}}}
    assert [f.source for f in synthesise(three, None)] == ["topic:marine"]  # its best rank: #1 in adl
    assert [f.source for f in synthesise(three, claims)] == ["claim:followup:c0"]
