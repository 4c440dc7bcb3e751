"""Per-layer readouts of the mean differences: logit lens, lens delta, patchscope, and their token relevance.

Every relevance share comes with a null: the same readout of random directions with the mean
difference's norm (``null_share``), so a share is read against what an unrelated direction scores.
"""

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
                  gt: dict[str, Any] | None, null_tokens: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """One relevance row: the share of ``tokens`` related to the ground truth (None without one).

    ``null_tokens``: the same readout's tokens for random directions of matched norm; their mean
    share is the row's ``null_share`` (None without them or without a ground truth).
    """
    rel = token_relevance([t for t in tokens if t], gt)
    # a null readout that names no token (e.g. patchscope finds nothing stable) names nothing relevant: share 0
    nulls = [r["share"] if r else 0.0 for r in (token_relevance([t for t in ts if t], gt) for ts in null_tokens)]
    return {"layer": layer, "position": position, "readout": readout,
            **({"share": rel["share"], "relevant": ", ".join(rel["relevant"])} if rel
               else {"share": None, "relevant": ""}),
            "null_share": float(np.mean(nulls)) if rel and nulls else None}


def null_vectors(d: int, norm: float, n: int, seed: int) -> list[np.ndarray]:
    """``n`` isotropic random vectors [D] of length ``norm`` (seeded): the relevance null's directions."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        z = rng.standard_normal(d)
        out.append(z * (norm / np.linalg.norm(z)))
    return out


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
        nulls = null_vectors(v.shape[0], norm_v, cfg.null_directions if gt else 0, seed=1000 * layer + p)
        null_toks = {
            "lens": [[t for t, _ in lens_tokens(ft, r, cfg.top_k)] for r in nulls],
            "lens_delta": [[t for t, _ in lens_delta_tokens(ft, means["base"][p] + r, means["base"][p],
                                                             cfg.top_k)[0]] for r in nulls],
        }
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
                relevance.append(relevance_row(layer, p, readout, [t for t, _ in toks], gt, null_toks[readout]))
        unit = torch.as_tensor(v / norm_v, dtype=torch.float32)
        for sign, s in (("+", 1.0), ("-", -1.0)):
            for entry in patchscope(ft, layer, s * unit * means["norm_ft"], cfg.patchscope_scales,
                                    top=cfg.patchscope_top, keep=cfg.top_k):
                patch_rows.append({"layer": layer, "position": p, "sign": sign, "scale": entry["scale"],
                                   "mass": entry["mass"], "tokens": " | ".join(ft.token_strings(entry["tokens"]))})
        best = max((r for r in patch_rows if r["position"] == p and r["sign"] == "+"),
                   key=lambda r: r["mass"], default=None)
        if best is not None:
            null_patch = [ft.token_strings(e["tokens"]) for r in nulls[:1] for e in patchscope(
                ft, layer, torch.as_tensor(r / norm_v, dtype=torch.float32) * means["norm_ft"], [best["scale"]],
                top=cfg.patchscope_top, keep=cfg.top_k)]
            relevance.append(relevance_row(layer, p, f"patchscope@{best['scale']}", best["tokens"].split(" | "), gt,
                                           null_patch))
    return rows, relevance, patch_rows
