"""Weight-space statistics of a finetune: which blocks and modules moved, and how low-rank the change is.

For every weight matrix the finetune shares with its base: the Frobenius norm of the delta
``W_ft - W_base``, relative to ``||W_base||``, and the delta's singular values (the top few, the
effective rank and the share of the energy ``sum s_i^2`` in the top k). Full finetunes are compared
parameter by parameter (:func:`full_delta_stats`); a LoRA adapter's delta is ``scaling * B @ A``,
whose spectrum comes from an r x r matrix without forming the product (:func:`lora_delta_stats`).
One-dimensional parameters (norms, biases) get norms but no spectrum.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lmdiff.models.architecture import block_index, module_kind

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WEIGHT_COLUMNS = (
    "name", "block", "kind", "shape", "base_norm", "delta_norm", "rel_delta",
    "effective_rank", "top_energy", "top_singular", "source",
)
"""Columns of the per-parameter table, in order (``block`` is -1 outside the decoder blocks)."""


def spectrum_stats(singular: np.ndarray, top_k: int) -> dict[str, Any]:
    """Effective rank (exp of the entropy of s / sum s), share of sum s^2 in the top ``top_k``, the top values."""
    s = np.sort(np.clip(np.asarray(singular, dtype=np.float64), 0.0, None))[::-1]
    total = float(s.sum())
    if total <= 0:
        return {"effective_rank": 0.0, "top_energy": float("nan"), "top_singular": [0.0] * min(top_k, len(s))}
    p = s[s > 0] / total
    energy = s**2
    return {
        "effective_rank": float(math.exp(-float((p * np.log(p)).sum()))),
        "top_energy": float(energy[:top_k].sum() / energy.sum()),
        "top_singular": [float(x) for x in s[:top_k]],
    }


def _singular_values(delta: torch.Tensor) -> np.ndarray:
    """Singular values of a matrix from the eigenvalues of its smaller Gram matrix (in float64)."""
    d = delta.double()
    eig = torch.linalg.eigvalsh(d.T @ d if d.shape[0] >= d.shape[1] else d @ d.T)
    out: np.ndarray = np.sqrt(np.clip(eig.cpu().numpy(), 0.0, None))
    return out


def _row(name: str, base_w: torch.Tensor, delta_norm: float, singular: np.ndarray | None, top_k: int,
         source: str) -> dict[str, Any]:
    base_norm = float(base_w.float().norm())
    block = block_index(name)
    spec = spectrum_stats(singular, top_k) if singular is not None else {
        "effective_rank": float("nan"), "top_energy": float("nan"), "top_singular": []}
    return {
        "name": name, "block": -1 if block is None else block, "kind": module_kind(name),
        "shape": "x".join(str(n) for n in base_w.shape), "base_norm": base_norm, "delta_norm": delta_norm,
        "rel_delta": delta_norm / base_norm if base_norm > 0 else float("nan"), **spec, "source": source,
    }


def full_delta_stats(base: nn.Module, finetuned: nn.Module, *, top_k: int = 8, spectrum: bool = True) -> pd.DataFrame:
    """One row per parameter present in both models with the same shape (see :data:`WEIGHT_COLUMNS`).

    Parameters that are not floating point (quantized storage) or differ in shape are left out.
    """
    ft_params = dict(finetuned.named_parameters())
    rows = []
    with torch.no_grad():
        for name, wb in base.named_parameters():
            wf = ft_params.get(name)
            if wf is None or wf.shape != wb.shape or not (wb.is_floating_point() and wf.is_floating_point()):
                continue
            delta = wf.detach().float().to(wb.device) - wb.detach().float()
            sv = _singular_values(delta) if spectrum and delta.dim() == 2 else None
            rows.append(_row(name, wb.detach(), float(delta.norm()), sv, top_k, "full"))
    return pd.DataFrame(rows, columns=list(WEIGHT_COLUMNS))


def lora_delta_stats(model: nn.Module, *, top_k: int = 8) -> pd.DataFrame:
    """One row per LoRA layer and adapter: the merged delta ``scaling * B @ A`` against the layer's base weight."""
    from peft.tuners.lora import LoraLayer

    rows = []
    with torch.no_grad():
        for mod_name, mod in model.named_modules():
            if not isinstance(mod, LoraLayer):
                continue
            layer: Any = mod  # PEFT's LoraLayer attributes are untyped
            base_w = layer.get_base_layer().weight
            for adapter, lin_a in layer.lora_A.items():
                a = lin_a.weight.detach().double()  # r x in
                b = layer.lora_B[adapter].weight.detach().double()  # out x r
                scaling = float(layer.scaling[adapter])
                _, rb = torch.linalg.qr(b)
                _, ra = torch.linalg.qr(a.T)
                sv = torch.linalg.svdvals(rb @ ra.T).cpu().numpy() * abs(scaling)
                name = mod_name.removeprefix("base_model.model.") + ".weight"
                rows.append(_row(name, base_w.detach(), float(np.sqrt((sv**2).sum())), sv, top_k, "lora"))
    return pd.DataFrame(rows, columns=list(WEIGHT_COLUMNS))


def by_block_and_kind(df: pd.DataFrame) -> pd.DataFrame:
    """Relative delta norm per (block, kind): sqrt(sum ||dW||^2) / sqrt(sum ||W||^2) over the group's parameters."""
    if df.empty:
        return pd.DataFrame(columns=["block", "kind", "rel_delta", "delta_norm", "n_params"])
    g = df.assign(d2=df["delta_norm"] ** 2, b2=df["base_norm"] ** 2).groupby(["block", "kind"], as_index=False)
    out = g.agg(d2=("d2", "sum"), b2=("b2", "sum"), n_params=("name", "size"))
    out["delta_norm"] = np.sqrt(out["d2"])
    out["rel_delta"] = np.where(out["b2"] > 0, out["delta_norm"] / np.sqrt(out["b2"].clip(lower=1e-300)), np.nan)
    return out[["block", "kind", "rel_delta", "delta_norm", "n_params"]].sort_values(["block", "kind"])


def top_moved_block(df: pd.DataFrame) -> int | None:
    """The decoder block with the largest relative delta over all its parameters (None when no block is listed)."""
    blocks = by_block_and_kind(df[df["block"] >= 0])
    if blocks.empty:
        return None
    per = blocks.assign(d2=blocks["delta_norm"] ** 2).groupby("block")["d2"].sum()
    base = df[df["block"] >= 0].assign(b2=df["base_norm"] ** 2).groupby("block")["b2"].sum()
    return int((np.sqrt(per) / np.sqrt(base.clip(lower=1e-300))).idxmax())


def plot_weight_deltas(df: pd.DataFrame) -> Figure:
    """A figure of which blocks moved: relative delta norm per block, one line per module kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = by_block_and_kind(df[df["block"] >= 0])
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for kind, sub in grouped.groupby("kind"):
        ax.plot(sub["block"], sub["rel_delta"], marker="o", ms=3, label=str(kind))
    ax.set_xlabel("decoder block")
    ax.set_ylabel("||W_ft - W_base|| / ||W_base||")
    if not grouped.empty:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
