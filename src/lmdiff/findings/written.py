"""Findings written by an LLM from the run's numbered evidence, each citing what it rests on.

With an LLM configured (the ``findings_writer`` role), the writer sees the same evidence the
deterministic synthesiser uses, numbered ``E1``, ``E2``, ...; each statement it writes must cite
evidence ids that exist. A statement citing none is dropped. Validation, methods and confidence are
not the writer's to claim: they follow from the cited evidence by the synthesiser's rules (validated
when a cited claim survived the run's FDR procedure; high confidence when, in addition, another
method's evidence is cited). When the writer fails or cites nothing usable, the deterministic
findings stand, and the run records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from lmdiff.findings.synthesis import Finding, synthesise
from lmdiff.report.numbers import fmt_num, fmt_p

__all__ = ["EvidenceItem", "evidence_catalogue", "findings_for_run", "written_findings"]


@dataclass(frozen=True)
class EvidenceItem:
    """One numbered piece of evidence the writer may cite."""

    id: str
    method: str
    text: str
    validated_claim: bool = False
    claim: dict[str, Any] | None = None


def evidence_catalogue(results: dict[str, Any], claims: pd.DataFrame | None,
                       deterministic: list[Finding]) -> list[EvidenceItem]:
    """Every claim (best wording per family) and every signal item the synthesiser found, numbered."""
    items: list[EvidenceItem] = []
    seen: set[str] = set()
    if claims is not None and not claims.empty:
        best = claims.sort_values("pvalue").drop_duplicates("family")
        for r in best.itertuples():
            ok = bool(r.survives)
            text = (f"[{r.method}] {r.statement} ({'validated' if ok else 'not validated'}: d "
                    f"{fmt_num(r.effect_size_d)}, q {fmt_p(r.qvalue)}, n {r.n} {r.unit}s)")
            claim = {"statement": str(r.statement), "effect_size_d": _num(r.effect_size_d), "qvalue": _num(r.qvalue),
                     "n": int(r.n) if not pd.isna(r.n) else None, "unit": str(r.unit), "direction": str(r.direction)}
            items.append(EvidenceItem(f"E{len(items) + 1}", str(r.method), text, ok, claim))
            seen.add(str(r.statement))
    for f in deterministic:
        for e in f.evidence:
            if e["kind"] == "claim" or e["text"] in seen:
                continue
            seen.add(e["text"])
            items.append(EvidenceItem(f"E{len(items) + 1}", e["method"], f"[{e['method']}] {e['text']}"))
    return items


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if v != v else v


def written_findings(results: dict[str, Any], claims: pd.DataFrame | None, writer: Any,
                     max_findings: int = 10) -> tuple[list[Finding], dict[str, Any]]:
    """The writer's findings (or the deterministic ones) and a record of what happened.

    Args:
        results: the run's results.json.
        claims: the run's finalised claims, or None.
        writer: a bound ``findings_writer`` role (:func:`lmdiff.llm.roles.resolve_role`).
        max_findings: how many findings to ask for and keep.

    Returns:
        ``(findings, record)``; ``record`` has ``producer`` and, when the writer's output was not
        used or partly dropped, ``note``.
    """
    base = synthesise(results, claims, max_findings=max_findings)
    items = evidence_catalogue(results, claims, synthesise(results, claims, max_findings=50))
    if not items:
        return base, {"producer": "offline:deterministic_synthesis", "note": "no evidence to write from"}
    by_id = {i.id: i for i in items}
    res = writer({"evidence": "\n".join(f"{i.id}. {i.text}" for i in items), "n": max_findings})
    if not res.valid or res.value is None:
        return base, {"producer": "offline:deterministic_synthesis",
                      "note": f"the findings writer failed ({res.error}); deterministic findings kept"}
    out: list[Finding] = []
    dropped = 0
    for wf in res.value.findings[:max_findings]:
        cited = [by_id[c.strip()] for c in wf.evidence if c.strip() in by_id]
        if not cited:
            dropped += 1
            continue
        valid = [c for c in cited if c.validated_claim]
        methods = list(dict.fromkeys([*(c.method for c in valid), *(c.method for c in cited)]))
        lead = valid[0].claim if valid and valid[0].claim else {}
        out.append(Finding(
            rank=len(out) + 1, statement=wf.statement.strip(), validated=bool(valid),
            confidence="high" if valid and len(methods) >= 2 else "medium" if valid else "low",
            methods=methods, evidence=[{"method": c.method, "kind": "cited", "text": f"{c.id}: {c.text}"}
                                       for c in cited],
            words=[], refuted_by=wf.refuted_by.strip() or "not stated by the writer",
            source="llm:" + ",".join(c.id for c in cited),
            direction=-1 if lead.get("direction") == "finetuned less" else 1,
            effect_size_d=lead.get("effect_size_d"), qvalue=lead.get("qvalue"), n=lead.get("n"),
            unit=lead.get("unit"),
        ))
    if not out:
        return base, {"producer": "offline:deterministic_synthesis",
                      "note": "no written finding cited existing evidence; deterministic findings kept"}
    out.sort(key=lambda f: (not f.validated, f.rank))
    for i, f in enumerate(out):
        f.rank = i + 1
    record: dict[str, Any] = {"producer": str(res.producer)}
    if dropped:
        record["note"] = f"{dropped} written finding(s) cited no existing evidence and were dropped"
    return out, record


def findings_for_run(results: dict[str, Any], claims: pd.DataFrame | None) -> tuple[list[Finding], dict[str, Any]]:
    """The run's findings: written by the LLM ``findings_writer`` when one is configured, else deterministic."""
    from lmdiff.llm.roles import resolve_role

    try:
        writer = resolve_role("findings_writer", None)
    except Exception as err:  # an unusable LLM configuration: the deterministic synthesiser, with the reason
        return synthesise(results, claims), {"producer": "offline:deterministic_synthesis",
                                             "note": f"LLM not usable ({type(err).__name__})"}
    if writer is None:
        return synthesise(results, claims), {"producer": "offline:deterministic_synthesis"}
    return written_findings(results, claims, writer)
