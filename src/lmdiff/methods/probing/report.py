"""The probing method's report section: validated findings, accuracy per relation, changed answers."""

from __future__ import annotations

import pandas as pd

from lmdiff.methods.base import MethodResult
from lmdiff.report.builder import Section
from lmdiff.runs.claims import load_claims
from lmdiff.runs.run import Run


def render_probing(result: MethodResult, section: Section, run: Run) -> None:
    """Findings first (validated hypotheses), then the accuracy table, failed candidates and example answers."""
    h = result.headline
    section.text(result.summary)
    paths = {p.rsplit("/", 1)[-1]: run.path / p for p in result.artifacts}
    tests = pd.read_parquet(paths["tests.parquet"])
    claims = load_claims(run.path)
    if not tests.empty and "id" in tests:
        mine = claims[claims["method"] == "probing"] if claims is not None and not claims.empty else None
        by_id = ({str(c).split(":", 1)[1]: (q, s, m) for c, q, s, m in
                  zip(mine["claim_id"], mine["qvalue"], mine["survives"], mine["fdr_m"], strict=True)}
                 if mine is not None else {})
        tests["qvalue"] = [by_id.get(i, (float("nan"), False, 0))[0] for i in tests["id"]]
        tests["survives"] = [bool(by_id.get(i, (float("nan"), False, 0))[1]) for i in tests["id"]]
        fdr_m = max((v[2] for v in by_id.values()), default=0)
    else:
        fdr_m = 0
    summary = (run.results().get("claims") or {})
    section.heading("Validated findings (held-out paraphrases and indirect questions, survive FDR)")
    cols = ["text", "proposal_support", "n_questions", "n_indirect", "ft_names_object", "base_names_object",
            "pvalue", "qvalue"]
    if "survives" in tests and tests["survives"].astype(bool).any():
        section.table(tests[tests["survives"].astype(bool)][[*cols, "examples_finetuned"]],
                      caption="share of held-out questions whose answer names the object, per model")
    else:
        section.note("No probing hypothesis survived FDR on the held-out questions.", kind="info")
    section.text(f"The run's one {str(summary.get('procedure', 'bh')).upper()} procedure at q <= "
                 f"{summary.get('alpha', 0.05)} over all m = {fdr_m} claims of the run; the question is the unit "
                 "(sign-flip test of 1[ft names it] - 1[base names it]).")
    section.heading("Accuracy per relation (proposal questions)")
    section.figures({"questions": h["n_questions"], "entities": h["n_entities"], "facts": h["n_facts"],
                     "flips proposed": h["n_flips"], "leads proposed": h["n_leads"]})
    section.table(pd.read_parquet(paths["accuracy.parquet"]))
    if "survives" in tests and (~tests["survives"].astype(bool)).any():
        section.heading("Proposed but not validated")
        section.table(tests[~tests["survives"].astype(bool)][cols], max_rows=20)
    q = pd.read_parquet(paths["questions.parquet"])
    changed = q[q["base_answer"] != q["ft_answer"]]
    if len(changed):
        section.heading("Answers that differ (examples)")
        section.table(changed[["question", "known_answer", "base_answer", "ft_answer"]],
                      max_rows=int(result.data.get("examples", 12)))
