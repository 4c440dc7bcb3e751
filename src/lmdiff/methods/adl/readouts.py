"""Per-layer readouts of the mean differences: logit lens, lens delta, patchscope, and their token relevance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmdiff.interp.lens import lens_delta_tokens, lens_tokens
from lmdiff.interp.patchscope import patchscope
from lmdiff.interp.relevance import token_relevance
from lmdiff.methods.adl.config import ADLConfig

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

READOUTS = ("lens", "lens_delta")


def relevance_row(layer: int, position: int, readout: str, tokens: Sequence[str],
                  gt: dict[str, Any] | None) -> dict[str, Any]:
    """One relevance row: the share of ``tokens`` related to the ground truth (None without one)."""
    rel = token_relevance([t for t in tokens if t], gt)
    return {"layer": layer, "position": position, "readout": readout,
            **({"share": rel["share"], "relevant": ", ".join(rel["relevant"])} if rel
               else {"share": None, "relevant": ""})}


def layer_readouts(
    ft: LanguageModel, layer: int, means: dict[str, Any], cfg: ADLConfig, gt: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Logit lens (of the difference and of the two means) and patchscope of one layer, with relevance rows.

    Lens rows carry ``readout``: ``lens`` (the difference vector through the finetuned model's
    final norm and head; ``value`` = probability) or ``lens_delta`` (lens of the mean finetuned
    minus lens of the mean base activation; ``value`` = log-probability gain).

    Returns:
        (lens rows, relevance rows, patchscope rows).
    """
    rows, relevance, patch_rows = [], [], []
    for p in range(cfg.k):
        v = means["diff"][p]
        norm_v = float(np.linalg.norm(v))
        if norm_v == 0:
            continue
        up, down = lens_delta_tokens(ft, means["ft"][p], means["base"][p], cfg.top_k)
        readouts = [
            ("lens", "+", lens_tokens(ft, v, cfg.top_k)),
            ("lens", "-", lens_tokens(ft, -v, cfg.top_k)),
            ("lens_delta", "+", up),
            ("lens_delta", "-", down),
        ]
        for readout, sign, toks in readouts:
            rows += [{"layer": layer, "readout": readout, "position": p, "sign": sign, "rank": rank, "token": t,
                      "value": val} for rank, (t, val) in enumerate(toks)]
            if sign == "+":
                relevance.append(relevance_row(layer, p, readout, [t for t, _ in toks], gt))
        unit = torch.as_tensor(v / norm_v, dtype=torch.float32)
        for sign, s in (("+", 1.0), ("-", -1.0)):
            for entry in patchscope(ft, layer, s * unit * means["norm_ft"], cfg.patchscope_scales,
                                    top=cfg.patchscope_top, keep=cfg.top_k):
                patch_rows.append({"layer": layer, "position": p, "sign": sign, "scale": entry["scale"],
                                   "mass": entry["mass"], "tokens": " | ".join(ft.token_strings(entry["tokens"]))})
        best = max((r for r in patch_rows if r["position"] == p and r["sign"] == "+"),
                   key=lambda r: r["mass"], default=None)
        if best is not None:
            relevance.append(relevance_row(layer, p, f"patchscope@{best['scale']}", best["tokens"].split(" | "), gt))
    return rows, relevance, patch_rows
