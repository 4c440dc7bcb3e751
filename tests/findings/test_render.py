"""The report's Findings: validated claims first; an unexplained difference is said plainly, with leads."""

from __future__ import annotations

import pandas as pd

from lmdiff.data.prompts import load_prompts
from lmdiff.findings import leads, prompt_coverage, render_findings, unexplained_difference
from lmdiff.report.builder import Report


def _claims(rows):
    return pd.DataFrame([{"claim_id": f"c{i}", "method": "behavior", "statement": s, "direction": "finetuned more",
                          "pvalue": 0.001, "qvalue": 0.01 if ok else 0.5, "survives": ok, "effect_size_d": 1.0,
                          "n": 12, "unit": "prompt", "family": f"f{i}", "proposed_by": by, "rank": i + 1 if ok else 0}
                         for i, (s, ok, by) in enumerate(rows)])


DIFFERENT = {"methods": {"behavior": {"status": "ok", "headline": {"global_pvalue": 0.001, "global_auc": 0.9,
                                                                    "alpha": 0.05}},
                         "diff_mining": {"status": "ok", "headline": {"top_tokens": [" Rome", " Italy"]}}}}


def test_a_detected_difference_with_no_validated_claim_is_unexplained():
    gap = unexplained_difference(DIFFERENT, _claims([("mentions x", False, "behavior:ngram")]))
    assert gap is not None and "global classifier" in gap["evidence"][0]
    assert any("' Rome'" in lead for lead in gap["leads"]) and any("not validated" in lead for lead in gap["leads"])


def test_only_surface_findings_do_not_explain_a_difference():
    gap = unexplained_difference(DIFFERENT, _claims([("The finetuned model writes shorter replies", True,
                                                      "behavior:style")]))
    assert gap is not None and gap["validated_surface"] == ["The finetuned model writes shorter replies"]


def test_a_validated_content_claim_explains_the_difference():
    assert unexplained_difference(DIFFERENT, _claims([("mentions Rome", True, "followup:signal")])) is None


def test_no_evidence_of_a_difference_is_not_a_gap():
    same = {"methods": {"behavior": {"status": "ok", "headline": {"global_pvalue": 0.6, "alpha": 0.05}}}}
    assert unexplained_difference(same, None) is None
    assert leads({"methods": {}}, None) == []


def test_findings_section_lists_survivors_and_coverage():
    res = {**DIFFERENT, "claims": {"procedure": "bh", "alpha": 0.05, "m": 2, "by_method": {"behavior": 2}},
           "coverage": prompt_coverage(load_prompts("chat"))}
    report = Report(title="t", meta={})
    sec = report.section("Findings", "findings")
    render_findings(sec, res, _claims([("mentions Rome", True, "followup:x"), ("other", False, "behavior:ngram")]))
    md = "\n".join(sec.md_blocks)
    assert "mentions Rome" in md and "Coverage: 100 prompts" in md and "knowledge" in md
    assert "no hypothesis explains" not in md
