"""``pca``: principal components of single tokens' activation differences h_ft - h_base at one layer."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from lmdiff.dictionaries.examples import unit_stats
from lmdiff.interp.directions import difference_covariance
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.dictionaries.config import PCAConfig
from lmdiff.methods.dictionaries.readouts import (
    STEERING_FILE,
    UNITS_FILE,
    open_dictionary_store,
    relevance_headline,
    skipped_result,
    steer_units,
    top_example_note,
    unit_rows,
    zero_difference,
)
from lmdiff.methods.dictionaries.report import relevance_figures, render_steering, render_units
from lmdiff.methods.dictionaries.writer import reply_pairs, writer_columns, writer_contrast, writer_headline
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run


@register_method
class PCAMethod(DiffMethod[PCAConfig]):
    """PCA of per-token activation differences, read out by lens, examples and steering."""

    name = "pca"
    title = "PCA of activation differences"
    description = "principal components of per-token ft-base differences: lens, max/min examples, steering"
    Config = PCAConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {"n_texts": 64, "n_tokens": 64, "steering": False}
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True

    def run(self, ctx: MethodContext[PCAConfig]) -> MethodResult:
        """Streamed covariance of the differences, its eigenvectors, and their readouts."""
        cfg = ctx.config
        sc = open_dictionary_store(ctx)
        if zero_difference(sc):
            return skipped_result(sc, "components")
        store, layer, ft = sc.store, sc.layer, ctx.pair.finetuned
        cov = difference_covariance(store, layer, min_position=cfg.min_position)
        mean_diff = sc.mean_diff
        shift = float(mean_diff @ mean_diff)
        if not cfg.centre:  # second moment E[d d^T] = covariance + mean mean^T (up to n/(n-1))
            cov = cov + np.outer(mean_diff, mean_diff)
        lam, vecs = np.linalg.eigh(cov)
        order = np.argsort(lam)[::-1]
        lam, vecs = np.clip(lam[order], 0, None), vecs[:, order]
        total = float(lam.sum()) or 1.0
        n = min(cfg.n_components, len(lam))
        comps = vecs[:, :n].T.copy()  # [n, D]
        for i in range(n):  # orient each component so the mean difference projects positively
            if comps[i] @ mean_diff < 0:
                comps[i] = -comps[i]
        centre = torch.as_tensor(mean_diff if cfg.centre else np.zeros_like(mean_diff), dtype=torch.float32)
        comp_t = torch.as_tensor(comps, dtype=torch.float32)

        def score(rows: np.ndarray) -> torch.Tensor:
            return (torch.as_tensor(rows[:, 0]) - centre) @ comp_t.T

        seed = ctx.run_config.seed
        pairs = reply_pairs(sc.corpus, store.n_sequences, n, seed) if cfg.writer_contrast else None
        st = unit_stats(store, layer, "diff", score, n, n_top=cfg.n_examples, min_position=cfg.min_position,
                        signed=True, sequences=pairs.sequences if pairs else None)
        units = list(range(min(cfg.n_units, n)))
        writer, n_prompts = writer_contrast(st.sequence_energy, pairs, np.ones(n), sc.mean_square,
                                            np.ones(n, dtype=bool), seed=seed)
        ratio = lam / total
        extra = {i: {"explained": float(ratio[i]), **writer_columns(writer, i)} for i in units}
        gt = ctx.pair.ground_truth
        rows = unit_rows(ft, sc, units, comps, st, cfg, gt, extra)
        samples, search = steer_units(ctx, sc, units, comps)
        art = ctx.artifact_dir
        write_json(art / UNITS_FILE, rows)
        write_json(art / STEERING_FILE, {"layer": layer, "samples": samples, "search": search})
        write_parquet(art / "explained_variance.parquet",
                      pd.DataFrame({"component": np.arange(len(lam)), "explained": ratio,
                                    "cumulative": np.cumsum(ratio)}))
        np.save(art / "components.npy", comps)
        rel = relevance_headline(ft, sc, rows, cfg, gt)
        headline: dict[str, Any] = {
            "layer": layer, "n_tokens": st.n_tokens,
            "n_massive_excluded": len(store.massive_rows(layer)), "n_texts": store.n_sequences,
            "explained": [float(x) for x in ratio[:n]],
            "explained_top5": float(ratio[:5].sum()),
            "components_for_half": int(np.searchsorted(np.cumsum(ratio), 0.5) + 1),
            "total_variance": total,
            "centred": cfg.centre,
            "mean_shift_share": shift / (shift + float(np.trace(cov)) - (0.0 if cfg.centre else shift) or 1.0),
            "shift_cosine_first": float(abs(comps[0] @ mean_diff) / (np.linalg.norm(mean_diff) or 1.0)),
            **writer_headline(writer, n_prompts, units),
            **rel,
        }
        if samples:
            headline["steering_alpha"] = samples[0]["alpha"]
        what = "variance" if cfg.centre else "squared norm (uncentred; the mean shift is " + \
            f"{headline['mean_shift_share']:.0%} of it, cosine {headline['shift_cosine_first']:.2f} with component 1)"
        summary = (f"{st.n_tokens} tokens ({sc.corpus.name}), layer {layer}: the first component explains "
                   f"{ratio[0]:.0%} of the difference's {what} (first five {ratio[:5].sum():.0%}); its lens: "
                   f"{', '.join(repr(t) for t in rows[0][cfg.lens_readout][:6])}{top_example_note(rows)}.")

        def rel_path(name: str) -> str:
            return str((art / name).relative_to(ctx.run.path))

        return MethodResult(
            headline=headline, summary=summary,
            data={"units_file": rel_path(UNITS_FILE), "steering_file": rel_path(STEERING_FILE),
                  "explained_file": rel_path("explained_variance.parquet"), "corpus": sc.corpus.describe()},
            artifacts=[rel_path(n) for n in (UNITS_FILE, STEERING_FILE, "explained_variance.parquet",
                                             "components.npy")],
            corpus=sc.corpus.name,
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Explained-variance curve, the components' lens and examples, steering."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = result.headline
        section.text(result.summary)
        if h.get("skipped"):
            return
        section.figures({"layer": h["layer"], "tokens": h["n_tokens"], "first five components": h["explained_top5"],
                         "components for half the variance": h["components_for_half"], **relevance_figures(h)})
        ev = pd.read_parquet(run.path / result.data["explained_file"]).head(50)
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.bar(ev["component"], ev["explained"], label="per component")
        ax.plot(ev["component"], ev["cumulative"], color="k", label="cumulative")
        ax.set_xlabel("component")
        ax.set_ylabel("share of variance")
        ax.legend(fontsize=7)
        section.figure(fig, caption="explained variance of ft - base differences")
        cols = ("explained", "writer_excess", "writer_q") if h.get("writer_prompts") else ("explained",)
        render_units(section, run, result, "Components: lens and max/min-activating tokens", "component", cols)
        if h.get("writer_prompts"):
            section.note(f"writer_excess: how much more of the mean squared difference the component carries in the "
                         f"finetune's own replies than in the base's replies to the same {h['writer_prompts']} "
                         "prompts; q: one-sided sign-flip over prompts, BH over the kept components.")
        render_steering(section, run, result, "component")
