"""LLM-written findings must cite the run's evidence; confidence follows from what they cite, not from the LLM."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from lmdiff.findings import findings_for_run, written_findings
from lmdiff.findings.synthesis import synthesise
from lmdiff.findings.written import evidence_catalogue
from lmdiff.llm.roles import FindingList, get_role

RESULTS = {"methods": {"diff_mining": {"status": "ok", "headline": {"top_tokens": [" whales", " ocean"]}},
                       "adl": {"status": "ok", "headline": {"top_lens": [" whale", " ocean"]}}}}
CLAIMS = pd.DataFrame([
    {"claim_id": "followup:0", "method": "followup", "statement": "Asked about travel, the finetuned model mentions "
     "'whale' more often than the base model", "direction": "finetuned more", "pvalue": 0.001, "qvalue": 0.004,
     "survives": True, "effect_size_d": 1.3, "n": 10, "unit": "prompt", "family": "a", "proposed_by": "x", "rank": 1},
    {"claim_id": "behavior:0", "method": "behavior", "statement": "The finetuned model writes shorter replies",
     "direction": "finetuned more", "pvalue": 0.2, "qvalue": 0.4, "survives": False, "effect_size_d": 0.2, "n": 24,
     "unit": "prompt", "family": "b", "proposed_by": "x", "rank": 0},
])


def writer_returning(payload: dict | None, error: str | None = None):
    def call(inputs):
        call.inputs = inputs
        value = FindingList.model_validate(payload) if payload else None
        return SimpleNamespace(valid=value is not None, value=value, error=error, producer="llm:mock")
    return call


def test_catalogue_numbers_claims_then_signals():
    items = evidence_catalogue(RESULTS, CLAIMS, synthesise(RESULTS, CLAIMS, max_findings=50))
    assert [i.id for i in items] == [f"E{k}" for k in range(1, len(items) + 1)]
    assert items[0].validated_claim and "whale" in items[0].text and not items[1].validated_claim
    assert any(i.method == "adl" and "' whale'" in i.text for i in items)


def test_written_findings_cite_evidence_and_get_confidence_from_it():
    w = writer_returning({"findings": [
        {"statement": "The finetune talks about whales", "evidence": ["E1", "E3"], "refuted_by": "no whales"},
        {"statement": "It writes shorter replies", "evidence": ["E2"]},
        {"statement": "It loves Paris", "evidence": ["E99"]},  # cites nothing that exists: dropped
    ]})
    found, record = written_findings(RESULTS, CLAIMS, w)
    assert "E1. [followup]" in w.inputs["evidence"]
    assert [f.statement for f in found] == ["The finetune talks about whales", "It writes shorter replies"]
    top = found[0]
    assert top.validated and top.confidence == "high" and top.effect_size_d == 1.3 and top.n == 10
    assert found[1].validated is False and found[1].confidence == "low"
    assert record["producer"] == "llm:mock" and "1 written finding" in record["note"]


def test_a_failing_or_uncited_writer_leaves_the_deterministic_findings():
    det = synthesise(RESULTS, CLAIMS)
    found, record = written_findings(RESULTS, CLAIMS, writer_returning(None, error="timeout"))
    assert [f.statement for f in found] == [f.statement for f in det] and "timeout" in record["note"]
    found, record = written_findings(RESULTS, CLAIMS, writer_returning(
        {"findings": [{"statement": "x", "evidence": []}]}))
    assert record["producer"].startswith("offline:") and "cited" in record["note"]


def test_offline_is_deterministic_and_the_role_is_registered(monkeypatch):
    monkeypatch.delenv("LMDIFF_LLM", raising=False)
    found, record = findings_for_run(RESULTS, CLAIMS)
    assert record == {"producer": "offline:deterministic_synthesis"}
    assert found[0].statement.startswith("Asked about travel")
    assert get_role("findings_writer").offline.name == "deterministic_synthesis"
