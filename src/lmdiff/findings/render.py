"""The top of every diff report: what the run validated, what it covered, and what it could not explain.

Findings are the claims that survived the run's one FDR procedure (:mod:`lmdiff.runs.claims`),
ranked on one scale (d of per-unit differences). Beside them the report states the run's
coverage (which kinds of prompts it asked, which facts it probed) and, when a global test or the
KL shows that the models differ but no validated claim explains it, says so plainly with the
strongest leads, rather than letting a side effect (reply length, format) pass for the finding.
"""

from __future__ import annotations

import collections
from typing import Any

import pandas as pd

from lmdiff.data.prompts import PromptSet
from lmdiff.findings.synthesis import Finding, synthesise
from lmdiff.interp.signals import SIGNAL_KEYS
from lmdiff.report.builder import Section
from lmdiff.report.numbers import fmt_int, fmt_num, fmt_p

#: Claims of these kinds describe how replies look (length, format, punctuation), not what they say.
_SURFACE_PREFIXES = ("behavior:style",)


def prompt_coverage(prompts: PromptSet) -> dict[str, Any]:
    """What the run's prompts cover: their number and categories (the prompt is the unit of every test)."""
    cats = collections.Counter(p.category or "uncategorised" for p in prompts.items)
    return {"name": prompts.name, "n": len(prompts), "categories": dict(cats.most_common())}


def unexplained_difference(results: dict[str, Any], claims: pd.DataFrame | None) -> dict[str, Any] | None:
    """Whether the models differ in a way that no validated content claim explains.

    Evidence of a difference: the behaviour pipeline's global classifier test rejects at its alpha,
    or (when the behaviour pipeline did not run) the KL method measured a mean content KL at least 10x
    the run's noise floor. Explained: some
    validated claim that is not only about how replies look (length, format).

    Returns:
        None when nothing is unexplained; else ``{"evidence": [...], "validated_surface": [...],
        "leads": [...]}``.
    """
    methods = results.get("methods", {})
    evidence: list[str] = []
    beh = methods.get("behavior", {})
    if beh.get("status") == "ok":
        h = beh.get("headline", {})
        p, alpha = h.get("global_pvalue"), h.get("alpha", 0.05)
        if p is not None and p <= alpha:
            auc = fmt_num(h.get("global_auc"))
            evidence.append(f"the global classifier tells the two models' replies apart (AUC {auc}, p {fmt_p(p)})")
    kl = methods.get("kl", {})
    floor = ((results.get("numerics") or {}).get("noise_floor") or {}).get("mean_kl")
    if kl.get("status") == "ok" and beh.get("status") != "ok" and floor is not None:  # the global test decides if run
        content = kl.get("headline", {}).get("mean_kl_content")
        if content is not None and floor is not None and content >= 10 * max(float(floor), 1e-12):
            evidence.append(
                f"the mean KL on content tokens is {fmt_num(content)} nats, {content / max(floor, 1e-12):.0f}x "
                "the numerical noise floor"
            )
    if not evidence:
        return None
    surv = claims[claims["survives"].astype(bool)] if claims is not None and not claims.empty else None
    surface: list[str] = []
    if surv is not None and not surv.empty:
        is_surface = surv["proposed_by"].astype(str).str.startswith(_SURFACE_PREFIXES)
        if not is_surface.all():
            return None
        surface = surv["statement"].astype(str).tolist()[:3]
    return {"evidence": evidence, "validated_surface": surface, "leads": leads(results, claims)}


def leads(results: dict[str, Any], claims: pd.DataFrame | None, k: int = 5) -> list[str]:
    """The strongest unvalidated leads: tokens the white-box methods point at, and the closest untested claims."""
    out: list[str] = []
    for method, key in SIGNAL_KEYS.items():
        entry = results.get("methods", {}).get(method, {})
        toks = entry.get("headline", {}).get(key) if entry.get("status") == "ok" else None
        if toks:
            out.append(f"{method}: " + ", ".join(repr(t) for t in list(toks)[:k]))
    if claims is not None and not claims.empty:
        failed = claims[~claims["survives"].astype(bool)].sort_values("pvalue").head(3)
        out += [f"not validated (q {fmt_p(r.qvalue)}): {r.statement}" for r in failed.itertuples()]
    return out


def render_findings(section: Section, results: dict[str, Any], claims: pd.DataFrame | None) -> None:
    """The report's first section: ranked findings with their evidence, coverage, and what the run could not see.

    The findings are ``results["findings"]`` when the run stored them (else synthesised here from
    the claims and signals, :func:`lmdiff.findings.synthesise`).
    """
    summary = results.get("claims") or {}
    has_claims = claims is not None and not claims.empty
    stored = results.get("findings")
    findings = [Finding(**f) for f in stored] if isinstance(stored, list) else synthesise(results, claims)
    n_valid = sum(f.validated for f in findings)
    procedure = str(summary.get("procedure", "bh")).upper()
    by_method = ", ".join(f"{k}: {v}" for k, v in (summary.get("by_method") or {}).items())
    if n_valid:
        section.text(
            f"{n_valid} finding(s) validated on held-out prompts or questions. One {procedure} procedure at "
            f"q <= {summary.get('alpha', 0.05)} covers every claim tested (m = {summary.get('m')}; {by_method})."
        )
    elif has_claims:
        section.note(
            f"No claim survived the run's {procedure} procedure (m = {summary.get('m')}; {by_method}).", "info"
        )
    else:
        section.note(
            "No method of this run tests hypotheses, so the run validates nothing: add behavior or probing.", "info"
        )
    rec = results.get("findings_producer") or {}
    if findings and rec:
        who = ("an LLM (" + str(rec["producer"]).removeprefix("llm:") + ") from the run's numbered evidence, "
               "each statement citing it" if str(rec.get("producer", "")).startswith("llm:")
               else "the deterministic synthesiser")
        section.text(f"Written by {who}." + (f" {rec['note']}." if rec.get("note") else ""))
    if findings:
        table = pd.DataFrame(
            {
                "rank": [f.rank for f in findings],
                "finding": [f.statement for f in findings],
                "confidence": [f.confidence for f in findings],
                "methods agreeing": [", ".join(f.methods) for f in findings],
                "d": [fmt_num(f.effect_size_d) for f in findings],
                "q": [fmt_p(f.qvalue) for f in findings],
                "n": [f"{fmt_int(f.n)} {f.unit}s" if f.n is not None else "" for f in findings],
                "would be refuted by": [f.refuted_by for f in findings],
            }
        )
        section.table(table, caption="Findings, ranked: validated first, then by how many methods converge, then "
                      "by effect size (d of per-unit differences). Low confidence: signals only, not validated.")
        section.heading("Evidence behind each finding")
        section.bullets([(f"{f.rank}. {f.statement} [{f.confidence}]", [e["text"] for e in f.evidence])
                         for f in findings[:5]])
    gap = unexplained_difference(results, claims)
    if gap:
        msg = "A difference was detected that no hypothesis explains: " + "; ".join(gap["evidence"]) + "."
        if gap["validated_surface"]:
            msg += (
                " The validated findings describe only how replies look ("
                + "; ".join(gap["validated_surface"])
                + "), which need not be what the finetune was for."
            )
        section.note(msg, "warn")
        if gap["leads"]:
            section.heading("Strongest leads (not validated)")
            section.bullets([(x, []) for x in gap["leads"]])
    cov = results.get("coverage") or {}
    if cov:
        cats = ", ".join(f"{k} {v}" for k, v in (cov.get("categories") or {}).items())
        line = f"Coverage: {cov.get('n')} prompts from '{cov.get('name')}' ({cats})."
        probing = results.get("methods", {}).get("probing", {})
        if probing.get("status") == "ok":
            ph = probing.get("headline", {})
            line += (
                f" Knowledge probing asked {ph.get('n_questions', '?')} questions about "
                f"{ph.get('n_entities', '?')} entities ({', '.join(ph.get('relations', []) or [])})."
            )
        line += " Behaviour outside these prompts and facts was not examined."
        section.note(line, "info")
