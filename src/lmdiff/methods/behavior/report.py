"""The behaviour pipeline's report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lmdiff.evals.grading import acc_summary
from lmdiff.report.builder import Section

__all__ = ["render_section"]

_COLS = [
    "rank", "text", "direction_label", "effect_size_d", "auc", "accuracy", "pvalue", "qvalue", "n", "n_groups",
    "n_pairs", "annotator",
    "names_known", "gen_delta", "gen_pvalue", "gen_qvalue", "gen_n",
]


def _read(run_path: Path, rel: str | None) -> pd.DataFrame:
    if not rel or not (run_path / rel).is_file():
        return pd.DataFrame()
    df = pd.read_parquet(run_path / rel)
    return pd.DataFrame() if list(df.columns) == ["empty"] else df


def render_section(data: dict[str, Any], headline: dict[str, Any], section: Section, run_path: Path) -> None:
    """Global test and baseline first, then validated hypotheses, cluster map, and failed ones.

    Args:
        data: the method result's ``data``.
        headline: its headline.
        section: the report section to write.
        run_path: the run directory (tables are read from it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = data.get("global_tests", {})
    clf, mmd, bow = g.get("classifier", {}), g.get("mmd", {}), g.get("bag_of_words", {})
    section.heading("Is there any difference at all? (global tests, all prompts; exploratory, outside the FDR family)")
    section.figures(
        {
            "classifier AUC (embeddings)": clf.get("auc"),
            "p (labels permuted within prompts)": clf.get("pvalue"),
            "MMD^2": mmd.get("mmd2"),
            "MMD p": mmd.get("pvalue"),
            "bag-of-words baseline AUC": bow.get("auc"),
            "replies (n)": clf.get("n"),
            "prompts": clf.get("n_groups"),
        }
    )
    section.text(
        f"Prompts were split first: {headline.get('n_discovery_prompts')} discovery prompts wrote the hypotheses, "
        f"{headline.get('n_validation_prompts')} held-out prompts tested them. One {str(headline.get('fdr')).upper()} "
        f"procedure at q <= {headline.get('alpha')} covers the run's whole family of m = {headline.get('fdr_m')} "
        f"p-values ({headline.get('n_hypotheses_tested')} hypotheses, every candidate wording counted, plus their "
        "generative tests); the global tests above and the cluster-shift table are exploratory and outside it. "
        f"{headline.get('n_validated')} distinct findings validated ({headline.get('n_validated_wordings')} wordings; "
        "nested wordings of one finding count once). Bag-of-words AUC on held-out prompts: "
        f"{g.get('bag_of_words_validation', {}).get('auc')} (what surface n-grams alone achieve)."
    )
    precision = data.get("precision_metrics")
    if precision:
        section.heading("Precision pair: answer flips and token KL")
        section.figures(
            {
                "answer flip rate (greedy)": precision.get("flip_rate"),
                "prompts": precision.get("n_prompts"),
                "math: final number differs": precision.get("math_flip_rate"),
                "math prompts": precision.get("n_math"),
                "mean token KL (base || other)": precision.get("mean_token_kl"),
                "reply tokens": precision.get("n_tokens"),
            }
        )
        section.text(
            "Both models answer each prompt greedily; an answer flips when the texts differ, and a math answer "
            "flips when its final number differs. The KL is measured per token on the base model's greedy replies, "
            "teacher-forced through both models. A model against its 8-bit copy is a near-null control."
        )
        rows = _read(run_path, data.get("precision"))
        flipped = rows[rows.flipped] if not rows.empty else rows
        if not flipped.empty:
            side = [
                {"prompt": r.prompt_id, "base": r.answer_base, "finetuned": r.answer_finetuned}
                for r in flipped.itertuples()
            ]
            section.side_by_side(side, "base", "finetuned", max_rows=3)
    if "acc@1" in headline:
        section.figures(
            {
                "acc@1 vs ground truth": _acc_text(headline, 1),
                "acc@5": _acc_text(headline, 5),
                "grader": headline.get("grader"),
            }
        )
    tests = _read(run_path, data.get("tests"))
    if "names_known" in tests:
        tests["names_known"] = [", ".join(v) for v in tests.names_known]
    section.heading("Validated hypotheses (held-out prompts, survive FDR)")
    section.text(
        f"Every p-value below comes from the scores of held-out replies only: {data.get('annotations')} holds one "
        f"row per (hypothesis_id, text_id) with the prompt, the side and the score; the texts are in "
        f"{data.get('replies')} and the prompt split in {data.get('split')}. Where the generative test ran "
        f"(gen_* columns: mean log-probability gain of LLM-written exemplars over matched controls, finetuned minus "
        f"base, sign-flip p), its written texts and scores are in {data.get('generative')}."
    )
    if tests.empty or not tests.survives.any():
        section.note("No hypothesis survived FDR on the held-out prompts.", kind="info")
    else:
        ok = tests[tests.survives]
        section.table(ok[[c for c in _COLS if c in ok]])
        if headline.get("known_behaviours_named"):
            section.note(
                f"{headline['n_validated_naming_known']} validated hypotheses name a planted zoo behaviour "
                f"({', '.join(headline['known_behaviours_named'])}; column names_known, offline keyword grade).",
                kind="info",
            )
        for r in ok.head(5).itertuples():
            rows = [
                {
                    "prompt": r.text,
                    "base": "\n---\n".join(list(r.examples_base)),
                    "finetuned": "\n---\n".join(list(r.examples_finetuned)),
                }
            ]
            section.side_by_side(rows, "base", "finetuned", max_rows=1)
    points = _read(run_path, data.get("points"))
    if not points.empty:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for which, colour in (("base", "#888"), ("finetuned", "#2b4cc0")):
            sub = points[points.side == which]
            axes[0].scatter(sub.x, sub.y, s=8, alpha=0.6, c=colour, label=which)
        axes[0].legend()
        axes[0].set_title("by model")
        d = points[points.cluster >= 0]
        axes[1].scatter(d.x, d.y, s=8, c=d.cluster, cmap="tab10")
        axes[1].set_title("discovery clusters")
        section.figure(fig, "Cluster map: 2-D PCA of reply embeddings")
        plt.close(fig)
    clusters = _read(run_path, data.get("clusters"))
    if not clusters.empty:
        section.heading("Per-cluster shifts (discovery prompts; prompt = unit; exploratory, outside the FDR family)")
        section.table(clusters)
    matching = _read(run_path, data.get("matching"))
    if not matching.empty:
        section.heading("Clusters of each model matched (Hungarian, cosine distance)")
        section.table(matching)
    section.heading("Hypotheses that failed validation")
    failed = tests[~tests.survives] if not tests.empty else tests
    if failed.empty:
        section.text("None.")
    else:
        section.table(failed[[c for c in _COLS if c in failed and c != "rank"]])
    for note in data.get("notes", []):
        section.note(note)


def _acc_text(headline: dict[str, Any], k: int) -> str:
    """acc@k as hits/n with its interval (one run is 1/1 or 0/1, not a rate of 1.0 or 0.0)."""
    summary = headline.get(f"acc@{k}_summary")
    if isinstance(summary, dict) and "text" in summary:
        return str(summary["text"])
    return acc_summary([float(headline[f"acc@{k}"])], k).text()
