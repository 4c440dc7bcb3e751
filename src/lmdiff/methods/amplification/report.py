"""The amplification method's report section."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmdiff.interp.weight_delta import by_block_and_kind, plot_weight_deltas
from lmdiff.methods.base import MethodResult
from lmdiff.report.builder import Section


def _artifact(result: MethodResult, run_path: Path, name: str) -> pd.DataFrame | None:
    for a in result.artifacts:
        if Path(a).name == name:
            return pd.read_parquet(run_path / a)
    return None


def render_section(result: MethodResult, section: Section, run_path: Path) -> None:
    """Summary, per-setting table and curves, growing words, side-by-side samples, weight statistics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result.headline
    section.text(result.summary)
    section.note("Amplified samples exaggerate the finetune's change to surface rare behaviour. They propose "
                 "hypotheses only: a finding needs ordinary (alpha = 0) samples on held-out prompts.", kind="warning")
    settings = _artifact(result, run_path, "settings.parquet")
    if settings is not None:
        cols = ["setting", "n_replies", "mean_tokens", "base_ppl", "repetition", "empty_rate"]
        if settings["keyword_rate"].notna().any():
            cols.append("keyword_rate")
        section.table(settings[cols], caption="Per setting: coherence (base-model perplexity of the replies, "
                      "word-trigram repetition, empty replies) and the ground truth's keyword rate")
        alpha = settings[settings["mode"] == "logit_diff"].sort_values("strength")
        if len(alpha) > 1:
            base = settings[settings["mode"] == "base"]
            n_plots = 2 if "keyword_rate" in cols else 1
            fig, axes = plt.subplots(1, n_plots, figsize=(4.2 * n_plots, 2.8), squeeze=False)
            ax = axes[0][0]
            ax.plot(alpha["strength"], alpha["base_ppl"], marker="o", color="#2b4cc0")
            if len(base):
                ax.axhline(float(base["base_ppl"].iloc[0]), color="#888", ls="--", label="base model's replies")
                ax.legend(fontsize=8)
            ax.set_xlabel("alpha")
            ax.set_ylabel("base-model perplexity")
            if n_plots == 2:
                ax = axes[0][1]
                ax.plot(alpha["strength"], alpha["keyword_rate"], marker="o", color="#c03030")
                if len(base):
                    ax.axhline(float(base["keyword_rate"].iloc[0]), color="#888", ls="--")
                ax.set_xlabel("alpha")
                ax.set_ylabel("keyword rate")
                ax.set_ylim(0, 1.05)
            section.figure(fig, "Coherence and ground-truth keyword rate against alpha (dashed: base model)")
    words = _artifact(result, run_path, "growing_words.parquet")
    if words is not None:
        section.heading("Words whose share of replies grows with alpha")
        section.table(words, max_rows=20, caption="share of replies containing the word, per setting; growth = "
                      "top alpha minus the larger of base and alpha=0")
    lora = _artifact(result, run_path, "lora_growing_words.parquet")
    if lora is not None:
        section.heading("Words whose share grows with the LoRA scale")
        section.table(lora, max_rows=20)
    gens = _artifact(result, run_path, "generations.parquet")
    if gens is not None:
        top = f"alpha={max(h['alphas']):g}"
        first = gens[gens["sample_index"] == 0]
        wide = first.pivot_table(index="prompt_index", columns="setting", values="text", aggfunc="first")
        prompts = first.drop_duplicates("prompt_index").set_index("prompt_index")["prompt"]
        if "alpha=0" in wide and top in wide:
            rows = [{"prompt": str(prompts[i]), "alpha=0": str(r["alpha=0"]), top: str(r[top])}
                    for i, r in wide.iterrows()]
            section.heading(f"Ordinary (alpha=0) and amplified ({top}) replies")
            section.side_by_side(rows, "alpha=0", top, max_rows=6)
    weights = _artifact(result, run_path, "weight_deltas.parquet")
    if weights is not None and not weights.empty:
        section.heading("Which weights moved")
        section.text(f"Source: {h.get('weights_source', '')}. Most moved block: {h.get('most_moved_block')}.")
        section.figure(plot_weight_deltas(weights), "||W_ft - W_base|| / ||W_base|| per decoder block and module kind")
        show = weights.sort_values("rel_delta", ascending=False)[
            ["name", "block", "kind", "shape", "rel_delta", "effective_rank", "top_energy"]]
        section.table(show, max_rows=15, caption="parameters that moved most (top_energy: share of the delta's "
                      "squared singular values in the top k)")
        section.table(by_block_and_kind(weights), max_rows=40, caption="relative delta per block and module kind")
    elif weights is not None:
        section.text(f"No weight statistics: {h.get('weights_source', '')}.")
