"""BatchTopK dictionaries: one module for an SAE (one side) and a crosscoder (two sides).

Shapes: an input batch is [B, S, D] (S sides: 1 for an SAE, 2 for a base/finetuned crosscoder);
``W_enc`` [S, D, L], ``b_enc`` [L], ``W_dec`` [L, S, D], ``b_dec`` [S, D]. Encoding reads every
side: ``pre = sum_s (x_s - b_dec_s) @ W_enc_s + b_enc``; each side has its own decoder.

Sparsity is BatchTopK: of the batch's B x L scores ``relu(pre_j) * sum_s ||W_dec[j, s]||`` the
top ``k * B`` are kept (k active latents per token on average). Scoring with the decoder norms
makes the choice independent of how a latent splits its scale between encoder and decoder, and
lets a crosscoder's decoder norms carry which side a latent writes to. Outside training, a
latent is active when its score exceeds a threshold (an exponential average of the smallest
kept score during training), so a token's code does not depend on its batch (SAELens saves
BatchTopK SAEs the same way, as JumpReLU).

Dead latents (not active for ``dead_tokens`` tokens) get an auxiliary loss (AuxK): their top
``k_aux`` pre-activations per token must reconstruct the main reconstruction's residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Forward:
    """One forward pass: reconstruction [B, S, D], latent activations [B, L] and pre-activations [B, L]."""

    recon: torch.Tensor
    acts: torch.Tensor
    pre: torch.Tensor


class BatchTopK(nn.Module):
    """A BatchTopK dictionary over ``n_sides`` activation sides (1: SAE, 2: crosscoder)."""

    threshold: torch.Tensor

    def __init__(self, d_in: int, n_latents: int, n_sides: int = 1, *, seed: int = 0) -> None:
        super().__init__()
        self.d_in, self.n_latents, self.n_sides = int(d_in), int(n_latents), int(n_sides)
        gen = torch.Generator().manual_seed(seed)
        dec = torch.randn(n_latents, n_sides, d_in, generator=gen)
        dec = dec / dec.flatten(1).norm(dim=1)[:, None, None]  # each latent's decoder has unit norm over sides
        self.W_dec = nn.Parameter(dec)
        self.W_enc = nn.Parameter(dec.permute(1, 2, 0).clone())  # tied initialisation
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.b_dec = nn.Parameter(torch.zeros(n_sides, d_in))
        self.register_buffer("threshold", torch.tensor(-1.0, dtype=torch.float64))

    # ------------------------------------------------------------------ parts
    def decoder_norms(self) -> torch.Tensor:
        """Decoder norm of each latent on each side [L, S]."""
        norms: torch.Tensor = self.W_dec.norm(dim=-1)
        return norms

    def preacts(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations [B, L] of inputs [B, S, D]."""
        return torch.einsum("bsd,sdl->bl", x - self.b_dec, self.W_enc) + self.b_enc

    def select(self, pre: torch.Tensor, k: float) -> torch.Tensor:
        """BatchTopK: activations [B, L] keeping the batch's top ``k * B`` decoder-norm-weighted scores."""
        acts = pre.relu()
        score = acts * self.decoder_norms().sum(1)
        n_keep = max(1, min(round(k * pre.shape[0]), score.numel()))
        flat = score.flatten()
        idx = torch.topk(flat, n_keep, sorted=False).indices
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask[idx] = True
        return acts * mask.view_as(acts)

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """Reconstruction [B, S, D] of activations [B, L]."""
        return torch.einsum("bl,lsd->bsd", acts, self.W_dec) + self.b_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations [B, L] of inputs [B, S, D] with the learnt threshold (batch-independent)."""
        pre = self.preacts(x)
        acts = pre.relu()
        thr = float(self.threshold)
        if thr < 0:  # nothing ever fired in training (e.g. all-zero inputs): no latent is active
            return torch.zeros_like(acts)
        score = acts * self.decoder_norms().sum(1)
        return acts * (score > thr)

    def forward_train(self, x: torch.Tensor, k: float) -> Forward:
        """A training pass with BatchTopK selection at ``k``; updates the inference threshold."""
        pre = self.preacts(x)
        acts = self.select(pre, k)
        with torch.no_grad():
            score = acts * self.decoder_norms().sum(1)
            pos = score[score > 0]
            if pos.numel():
                m = pos.min().to(torch.float64)
                thr = self.threshold
                self.threshold.copy_(m if thr < 0 else 0.99 * thr + 0.01 * m)
        return Forward(self.decode(acts), acts, pre)

    def aux_loss(self, x: torch.Tensor, fwd: Forward, dead: torch.Tensor, k_aux: int) -> torch.Tensor:
        """AuxK: how badly the dead latents' top ``k_aux`` activations reconstruct the residual (normalised)."""
        n_dead = int(dead.sum())
        if n_dead == 0 or k_aux <= 0:
            return x.new_zeros(())
        resid = (x - fwd.recon).detach()
        pre = fwd.pre.masked_fill(~dead, float("-inf"))
        vals, idx = torch.topk(pre, min(k_aux, n_dead), dim=1)
        acts = torch.zeros_like(fwd.pre).scatter(1, idx, vals.relu())
        approx = torch.einsum("bl,lsd->bsd", acts, self.W_dec)
        denom = (resid - resid.mean(0)).pow(2).sum().clamp_min(1e-12)
        return (approx - resid).pow(2).sum() / denom


def make_dictionary(d_in: int, n_latents: int, n_sides: int, seed: int, b_dec: torch.Tensor | None = None) -> BatchTopK:
    """A fresh dictionary; ``b_dec`` [S, D] initialises the decoder bias (e.g. the data's mean)."""
    model = BatchTopK(d_in, n_latents, n_sides, seed=seed)
    if b_dec is not None:
        with torch.no_grad():
            model.b_dec.copy_(b_dec)
    return model
