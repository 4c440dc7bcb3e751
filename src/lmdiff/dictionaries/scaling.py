r"""A crosscoder's latents: decoder-norm tags and latent scaling on both decoder sides.

**Tags.** ``rel_norm = ||d_ft|| / (||d_base|| + ||d_ft||)`` (decoder norms in the trained,
normalised units): near 1 the latent writes only to the finetuned side, near 0 only to the base
side. ``finetuned-only`` >= ``hi``, ``base-only`` <= 1 - ``hi``, ``shared`` within 0.1 of 0.5,
``mixed`` otherwise, ``dead`` when it never fires.

**Latent scaling.** A decoder norm can be small on one side although that side holds the concept:
L1 training shrinks it when another latent or the error term carries it. Latent scaling asks the
data instead. For latent j with activation f_j and a direction u (its decoder on one side), and
side s, the least-squares scale

    beta_s = sum_x f_j(x) u . y_s(x) / (||u||^2 sum_x f_j(x)^2)

is fitted for two targets y_s: the **error** eps_s + f_j d_j^s (what the rest of the dictionary
leaves unexplained when j is removed) and the **reconstruction** r_s - f_j d_j^s - b_dec^s (what
the other latents already write along u). For a latent whose own side (the larger decoder norm)
is o and other side is t, ``nu_eps = beta^eps_t / beta^eps_o`` and ``nu_r = beta^r_t / beta^eps_o``
(both over the latent's full scale on its own side, about 1; the own side's beta^r is near 0 for
any latent, as the other latents do not write its direction): a genuinely side-specific latent
has both near 0; a large ratio says the other model holds the concept too (in its error: the
decoder norm shrank; in its reconstruction: other latents carry it). Both are computed with the
own side's decoder, so base-only latents are scored by the same rule as finetuned-only ones.
All sums are over the store's tokens, chunk by chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lmdiff.activations import ActivationStore
from lmdiff.dictionaries.stream import read_view
from lmdiff.dictionaries.train import TrainedDictionary

TAGS = ("finetuned-only", "base-only", "shared", "mixed", "dead")


def norm_tags(td: TrainedDictionary, frequency: np.ndarray, hi: float = 0.9) -> pd.DataFrame:
    """Per latent: decoder norms on each side, ``rel_norm`` and its tag (see the module doc)."""
    n = td.model.decoder_norms().detach().numpy().astype(np.float64)  # [L, 2]
    rel = n[:, 1] / np.maximum(n.sum(1), 1e-12)
    tag = np.where(rel >= hi, "finetuned-only", np.where(rel <= 1 - hi, "base-only",
                   np.where(np.abs(rel - 0.5) <= 0.1, "shared", "mixed")))
    tag = np.where(np.asarray(frequency) > 0, tag, "dead")
    return pd.DataFrame({"latent": np.arange(len(rel)), "norm_base": n[:, 0], "norm_ft": n[:, 1],
                         "rel_norm": rel, "tag": tag, "frequency": frequency})


def latent_scaling(
    store: ActivationStore, layer: int, td: TrainedDictionary, latents: np.ndarray, *, min_position: int = 1,
    chunk_tokens: int = 8192,
) -> pd.DataFrame:
    """Betas of ``latents`` for both targets and sides with their own side's decoder, and the ratios nu.

    Returns:
        One row per latent: ``own`` side, ``beta_eps_base``, ``beta_eps_ft``, ``beta_r_base``,
        ``beta_r_ft``, ``nu_eps``, ``nu_r`` (other side over own side; NaN when the latent never fires).
    """
    m = td.model
    lat = torch.as_tensor(np.array(latents, dtype=np.int64))
    if len(lat) == 0:
        return pd.DataFrame(columns=["latent", "own", "beta_eps_base", "beta_eps_ft", "beta_r_base", "beta_r_ft",
                                     "nu_eps", "nu_r"])
    with torch.no_grad():
        dec = m.W_dec[lat]  # [J, 2, D]
        own = dec.norm(dim=-1).argmax(1)  # [J] 0 base, 1 ft
        u = dec[torch.arange(len(lat)), own]  # [J, D]
        u_dot_d = torch.einsum("jd,jsd->js", u, dec)  # [J, 2]
        scales = torch.as_tensor(td.scales, dtype=torch.float32)[None, :, None]
        num_eps = torch.zeros(len(lat), 2, dtype=torch.float64)
        num_r = torch.zeros(len(lat), 2, dtype=torch.float64)
        den = torch.zeros(len(lat), dtype=torch.float64)
        for start in range(0, store.n_tokens, chunk_tokens):
            stop = min(start + chunk_tokens, store.n_tokens)
            keep = store.kept_mask(layer, start, stop, min_position)
            if not keep.any():
                continue
            x = torch.as_tensor(read_view(store, layer, "paired", start, stop)[keep]) / scales
            f_all = m.encode(x)
            recon = m.decode(f_all)
            f = f_all[:, lat]  # [N, J]
            err_proj = torch.einsum("nsd,jd->njs", x - recon, u)
            rec_proj = torch.einsum("nsd,jd->njs", recon - m.b_dec, u)
            f2 = f.pow(2)
            num_eps += (torch.einsum("nj,njs->js", f, err_proj) + f2.sum(0)[:, None] * u_dot_d).double()
            num_r += (torch.einsum("nj,njs->js", f, rec_proj) - f2.sum(0)[:, None] * u_dot_d).double()
            den += f2.sum(0).double()
        denom = (den * u.pow(2).sum(1).double()).clamp_min(1e-30)
        b_eps = (num_eps / denom[:, None]).numpy()
        b_r = (num_r / denom[:, None]).numpy()
    own_np = own.numpy()
    other = 1 - own_np
    idx = np.arange(len(lat))
    fired = den.numpy() > 0

    own_scale = b_eps[idx, own_np]  # the latent's full scale on its own side (about 1 for a live latent)
    ok = fired & (np.abs(own_scale) > 1e-6)

    def ratio(b: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.where(ok, b[idx, other] / np.where(ok, own_scale, 1.0), np.nan)
        return out

    return pd.DataFrame({"latent": lat.numpy(), "own": np.where(own_np == 1, "finetuned", "base"),
                         "beta_eps_base": b_eps[:, 0], "beta_eps_ft": b_eps[:, 1],
                         "beta_r_base": b_r[:, 0], "beta_r_ft": b_r[:, 1],
                         "nu_eps": ratio(b_eps), "nu_r": ratio(b_r)})
