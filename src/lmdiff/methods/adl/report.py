"""The adl report section: lens tables per layer and position, patchscope, relevance and steering samples."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from lmdiff.methods.base import MethodResult
    from lmdiff.report.builder import Section
    from lmdiff.runs.run import Run


def _fig(x: float | None) -> float | str:
    return x if x is not None else "n/a"


def render_adl(result: MethodResult, section: Section, run: Run) -> None:
    """Write adl's section from its saved result and artifacts."""
    h = result.headline
    section.text(result.summary)
    section.figures({"layers": ", ".join(map(str, h["layers"])), "texts": h["n_texts"],
                     "||mean diff|| @0 (first layer)": h["mean_diff_norm_pos0"],
                     "typical ft norm (first layer)": h["norm_ft"],
                     "token relevance (pre-declared readout)": _fig(h.get("lens_relevance")),
                     "null relevance (random directions, matched norm)": _fig(h.get("lens_relevance_null")),
                     "readout": f"{h.get('lens_relevance_readout') or 'n/a'} at layer "
                                f"{h.get('lens_relevance_layer') or 'n/a'}",
                     "exploratory: best of layers x readouts (chosen against the ground truth)":
                         _fig(h.get("exploratory_best_relevance")),
                     "exploratory best's null": _fig(h.get("exploratory_best_relevance_null")),
                     "exploratory best at": f"{h.get('exploratory_best_readout') or 'n/a'}, layer "
                                            f"{h.get('exploratory_best_layer') or 'n/a'}"})
    lens = pd.read_parquet(run.path / result.artifacts[0])
    titles = {"lens_delta": "Lens of the mean finetuned minus the mean base activation",
              "lens": "Logit lens of the mean difference vector"}
    for layer in h["layers"]:
        for readout in ("lens_delta", "lens"):
            part = lens[(lens.layer == layer) & (lens.readout == readout)] if len(lens) else lens
            if not len(part):
                continue
            rel = h["by_layer"][str(layer)].get(f"{readout}_relevance")
            null = h["by_layer"][str(layer)].get(f"{readout}_relevance_null")
            section.heading(f"{titles[readout]}, layer {layer}, by position"
                            + (f" (token relevance {rel:.0%}; null {_fig(null)})" if rel is not None else ""))
            for sign, rows_shown in (("+", 15), ("-", 8)):
                wide = part[part.sign == sign].pivot_table(index="rank", columns="position", values="token",
                                                           aggfunc="first")
                wide.columns = [f"pos {c} ({sign}diff)" for c in wide.columns]
                section.table(wide.reset_index(drop=True), max_rows=rows_shown)
    patch = pd.read_parquet(run.path / result.artifacts[1])
    if len(patch):
        section.heading("Patchscope (tokens stable across identity prompts)")
        section.table(patch[patch.sign == "+"].sort_values(["layer", "position", "scale"])[
            ["layer", "position", "scale", "mass", "tokens"]], max_rows=30)
    rel_df = pd.read_parquet(run.path / result.artifacts[2])
    if len(rel_df) and rel_df["share"].notna().any():
        section.heading(f"Token relevance to the ground truth ({h.get('relevance_producer') or 'offline'})")
        section.table(rel_df, caption="share: the readout's top tokens that match the ground truth; null_share: the "
                      "same readout of random directions with the mean difference's norm")
    steering = json.loads((run.path / result.artifacts[3]).read_text())
    if steering["search"]:
        section.heading(f"Steering strength search (layer {steering.get('layer')})")
        section.table(pd.DataFrame(steering["search"]))
    if steering["samples"]:
        section.heading("Steered vs unsteered generations")
        section.side_by_side(
            [{"prompt": f"{s['prompt']} (position {s['position']}, alpha {s['alpha']:.2f})",
              "unsteered": s["unsteered"], "steered": s["steered"]} for s in steering["samples"]],
            "unsteered", "steered")
