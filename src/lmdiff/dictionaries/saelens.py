"""SAEs in SAELens' on-disk format (``cfg.json`` + ``sae_weights.safetensors``), both directions.

Saving: a trained one-sided BatchTopK dictionary is written as SAELens writes a BatchTopK SAE for
inference, a ``jumprelu`` SAE: ``W_enc`` [D, L], ``W_dec`` [L, D], ``b_enc`` [L], ``b_dec`` [D]
and ``threshold`` [L], with ``apply_b_dec_to_input`` true and ``normalize_activations`` "none".
The input scale and the decoder norms are folded into the weights, so the saved SAE reads raw
activations (or raw differences, for an SAE on ft - base) and has unit-norm decoder rows:
``SAE.load_from_disk(path)`` in sae_lens gives the same codes and reconstructions as lmdiff.

Loading: ``jumprelu``, ``standard`` (ReLU), ``topk`` and ``batchtopk`` SAEs saved by SAELens (v6
format, or older ones with the same weight names) load as an :class:`ExternalSAE`, which encodes
as the architecture says. SAELens itself is not needed for either direction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from lmdiff.dictionaries.modules import BatchTopK
from lmdiff.dictionaries.train import TrainedDictionary
from lmdiff.errors import ConfigError
from lmdiff.io import atomic_path, read_json, write_json

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
ARCHITECTURES = ("jumprelu", "standard", "topk", "batchtopk")


def saelens_tensors(td: TrainedDictionary) -> dict[str, torch.Tensor]:
    """The SAELens jumprelu weights of a one-sided dictionary, with input scale and decoder norms folded in."""
    m = td.model
    if m.n_sides != 1:
        raise ValueError("only one-sided dictionaries (SAEs) have a SAELens format; a crosscoder has two decoders")
    s = float(td.scales[0])
    with torch.no_grad():
        norms = m.decoder_norms()[:, 0].clamp_min(1e-12)  # [L]
        w_enc = m.W_enc[0] * norms[None, :] / s  # [D, L]
        b_enc = m.b_enc * norms
        w_dec = m.W_dec[:, 0, :] / norms[:, None] * s  # [L, D]
        b_dec = m.b_dec[0] * s
        thr = torch.full_like(b_enc, float(m.threshold))
    return {"W_enc": w_enc.contiguous(), "b_enc": b_enc.contiguous(), "W_dec": w_dec.contiguous(),
            "b_dec": b_dec.contiguous(), "threshold": thr.contiguous()}


def save_saelens(td: TrainedDictionary, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``td`` (one-sided) as a SAELens jumprelu SAE into directory ``path``; returns ``path``."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.float() for k, v in saelens_tensors(td).items()}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    d_in, d_sae = tensors["W_enc"].shape
    meta = {"sae_lens_version": "6.0.0", "sae_lens_training_version": None, "model_name": None, "hook_name": None,
            "hook_head_index": None, "prepend_bos": True, "dataset_path": None, "context_size": None,
            "model_class_name": "HookedTransformer", "model_from_pretrained_kwargs": {}, "neuronpedia_id": None,
            **(metadata or {})}
    write_json(out / CFG_FILE, {"architecture": "jumprelu", "d_in": int(d_in), "d_sae": int(d_sae),
                                "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
                                "normalize_activations": "none", "reshape_activations": "none", "metadata": meta})
    return out


class ExternalSAE(BatchTopK):
    """An SAE trained elsewhere (SAELens format), encoding as its architecture says."""

    jump: torch.Tensor

    def __init__(self, d_in: int, n_latents: int, architecture: str, *, k: int = 0,
                 apply_b_dec_to_input: bool = True) -> None:
        super().__init__(d_in, n_latents, 1)
        self.architecture, self.k_per_token, self.apply_b_dec = architecture, int(k), apply_b_dec_to_input
        self.register_buffer("jump", torch.zeros(n_latents))

    def preacts(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations [B, L]; the decoder bias is subtracted from the input only if the SAE says so."""
        xin = x - self.b_dec if self.apply_b_dec else x
        return torch.einsum("bsd,sdl->bl", xin, self.W_enc) + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes [B, L] of inputs [B, 1, D] by the SAE's own rule (JumpReLU, ReLU or per-token TopK)."""
        pre = self.preacts(x)
        if self.architecture == "jumprelu":
            return pre.relu() * (pre > self.jump)
        if self.architecture == "topk":
            vals, idx = torch.topk(pre, min(self.k_per_token, pre.shape[1]), dim=1)
            return torch.zeros_like(pre).scatter(1, idx, vals.relu())
        return pre.relu()


def load_saelens(path: str | Path) -> TrainedDictionary:
    """Load a SAELens SAE directory (``cfg.json`` + ``sae_weights.safetensors``) as a one-sided dictionary.

    Raises:
        ConfigError: the directory lacks the files, or the SAE's architecture or normalisation is one
            lmdiff cannot apply.
    """
    p = Path(path)
    if not (p / CFG_FILE).exists() or not (p / WEIGHTS_FILE).exists():
        raise ConfigError(f"'{p}' is not a SAELens SAE directory (it needs {CFG_FILE} and {WEIGHTS_FILE}).")
    cfg = read_json(p / CFG_FILE)
    arch = str(cfg.get("architecture", "standard"))
    if arch not in ARCHITECTURES:
        raise ConfigError(f"SAE architecture '{arch}' in '{p}' is not supported (known: {', '.join(ARCHITECTURES)}).")
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise ConfigError(f"the SAE in '{p}' normalises its inputs ({cfg['normalize_activations']}); save it with the "
                          "normalisation folded into its weights.")
    t = {k: v.float() for k, v in load_file(str(p / WEIGHTS_FILE)).items()}
    w_enc, w_dec = t["W_enc"], t["W_dec"]
    d_in, d_sae = int(w_enc.shape[0]), int(w_enc.shape[1])
    if arch == "batchtopk":  # a training checkpoint: its global threshold acts per latent at inference
        arch = "jumprelu"
        t["threshold"] = torch.full((d_sae,), float(t.get("topk_threshold", torch.tensor(0.0))))
    k = int(cfg.get("k", 0) or 0)
    sae = ExternalSAE(d_in, d_sae, arch, k=k, apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)))
    with torch.no_grad():
        sae.W_enc.copy_(w_enc[None])
        sae.W_dec.copy_(w_dec[:, None, :])
        sae.b_enc.copy_(t.get("b_enc", torch.zeros(d_sae)))
        sae.b_dec.copy_(t.get("b_dec", torch.zeros(d_in))[None])
        if "threshold" in t:
            sae.jump.copy_(t["threshold"])
        sae.threshold.fill_(0.0)
    return TrainedDictionary(sae.eval(), np.ones(1), pd.DataFrame())
