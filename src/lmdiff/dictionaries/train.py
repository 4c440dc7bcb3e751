"""Training a BatchTopK dictionary on a streamed store: Adam, k annealing, AuxK, atomic checkpoints, metrics.

:func:`train_dictionary` trains on batches of an :class:`~lmdiff.dictionaries.stream.ActivationStream`,
saves a checkpoint (model, optimiser, step, dead-latent counters, metrics so far) atomically every
``checkpoint_every`` steps and resumes from it when called again with the same settings: the
stream restarts at the checkpoint's step, so a killed run ends identical to an uninterrupted one.

Inputs are normalised by one scalar per side (so that a row's mean squared norm is D); the scale
is estimated on the stream's first tokens and kept with the dictionary. Per step it logs the
loss, reconstruction MSE, fraction of variance explained (FVE), L0, dead latents and k; the
metrics go to ``metrics.parquet`` and ``training.png``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file

from lmdiff.activations.store import MASSIVE_FACTOR
from lmdiff.dictionaries.modules import BatchTopK, make_dictionary
from lmdiff.dictionaries.stream import ActivationStream
from lmdiff.io import atomic_path, read_json, sha256_json, write_json, write_parquet
from lmdiff.progress import progress_bar

log = logging.getLogger(__name__)


class TrainSettings(BaseModel):
    """How a dictionary is trained (CPU defaults: minutes on a 135M model; see the README for GPU settings)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    n_latents: int = Field(1024, ge=1, description="dictionary size")
    k: float = Field(32, gt=0, description="target active latents per token (BatchTopK, on average)")
    k_start: float | None = Field(None, gt=0, description="k at step 0, annealed linearly to k (default 4k)")
    k_anneal: float = Field(0.3, ge=0, le=1, description="share of training over which k anneals")
    train_tokens: int = Field(150_000, ge=1, description="training tokens (several epochs if the store is smaller)")
    batch_size: int = Field(512, ge=1)
    lr: float = Field(2e-3, gt=0)
    lr_decay: float = Field(0.2, ge=0, le=1, description="share of training at the end over which lr decays to 0")
    aux_coef: float = Field(1 / 32, ge=0, description="weight of the AuxK loss on dead latents")
    delta_coef: float = Field(0.0, ge=0, description=(
        "crosscoders only: weight of a delta loss, the squared error of the reconstructed difference between the "
        "sides (r_ft - r_base against x_ft - x_base), in the units of the reconstruction loss: the error's "
        "antisymmetric part then weighs 1 + 2 * delta_coef times its shared part. A narrow finetune changes "
        "activations by a few percent of their variance, which a plain crosscoder leaves in its error; this term "
        "makes it spend latents on the change (after the delta loss of Delta-Crosscoder, arXiv 2603.04426)"))
    dead_tokens: int = Field(50_000, ge=1, description="a latent inactive for this many tokens is dead")
    buffer_tokens: int = Field(65_536, ge=1, description="stored tokens shuffled together (memory bound)")
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    min_position: int = Field(1, ge=0, description="skip earlier positions (0 is the attention sink)")
    seed: int = 0
    device: str = Field("auto", description="where training runs: auto (cuda when available), cpu, cuda, cuda:N")

    def torch_device(self) -> torch.device:
        """The training device."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def lr_at(self, step: int) -> float:
        """The learning-rate factor at ``step``: 1, then linearly to 0 over the last ``lr_decay`` share."""
        start = (1 - self.lr_decay) * self.steps
        if step < start or self.lr_decay == 0:
            return 1.0
        return max(0.0, (self.steps - step) / max(self.steps - start, 1))

    @property
    def steps(self) -> int:
        """Optimiser steps."""
        return max(1, self.train_tokens // self.batch_size)

    def k_at(self, step: int) -> float:
        """The k at ``step``: from ``k_start`` (default 4k) linearly down to ``k`` over the first ``k_anneal`` share."""
        k0 = self.k_start if self.k_start is not None else 4 * self.k
        span = self.k_anneal * self.steps
        if span <= 0 or step >= span:
            return self.k
        return k0 + (self.k - k0) * step / span


@dataclass
class TrainedDictionary:
    """A trained dictionary with its input scales [S] and training metrics."""

    model: BatchTopK
    scales: np.ndarray
    metrics: pd.DataFrame
    resumed_from: int = 0
    #: Seconds spent waiting for batches (store reads, shuffling) and in optimiser steps, this call.
    timing: dict[str, float] | None = None

    def encode_raw(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Latent activations [N, L] of raw (unnormalised) rows [N, S, D]."""
        t = torch.as_tensor(np.asarray(x), dtype=torch.float32) / torch.as_tensor(self.scales, dtype=torch.float32)[
            None, :, None]
        with torch.no_grad():
            return self.model.encode(t)

    def directions(self) -> np.ndarray:
        """Decoder directions in raw units [L, S, D] (the decoder rows times each side's scale)."""
        w = self.model.W_dec.detach().numpy().astype(np.float64)
        out: np.ndarray = w * self.scales[None, :, None]
        return out


MetricsHook = Callable[[int, dict[str, float]], None]


def _unexplained(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Squared error over the batch's total variance (1 - variance explained)."""
    return (x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)


def _side_difference(x: torch.Tensor) -> torch.Tensor:
    """Finetuned minus base rows [B, D] of a paired batch [B, 2, D]."""
    return x[:, 1] - x[:, 0]


def _batch_metrics(x: torch.Tensor, recon: torch.Tensor, acts: torch.Tensor) -> dict[str, float]:
    err = (x - recon).pow(2).sum()
    out = {"mse": float(err / x[..., 0].numel() / x.shape[-1]), "fve": float(1 - _unexplained(x, recon)),
           "l0": float((acts > 0).sum(1).float().mean())}
    if x.shape[1] == 2:  # a crosscoder: how much of the difference between the sides it explains
        out["delta_fve"] = float(1 - _unexplained(_side_difference(x), _side_difference(recon)))
    return out


def metrics_figure(metrics: pd.DataFrame, title: str = "") -> Any:
    """A matplotlib figure of the training curves (reconstruction MSE, FVE, L0 and k, dead latents)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax, cols, name in zip(axes, (["mse"], ["fve", "delta_fve"], ["l0", "k"], ["dead"]),
                              ("reconstruction MSE", "variance explained", "L0 (and k)", "dead latents"), strict=True):
        for c in cols:
            if c in metrics:
                ax.plot(metrics["step"], metrics[c], label=c)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if len(cols) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_metrics(metrics: pd.DataFrame, path: Path, title: str = "") -> None:
    """The training curves as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = metrics_figure(metrics, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def estimate_scales(stream: ActivationStream, n_tokens: int = 8192) -> np.ndarray:
    """One scale per side such that (row / scale) has mean squared norm D, from the stream's first tokens."""
    x = stream.sample(n_tokens).astype(np.float64)
    ms = (x**2).sum(-1).mean(0)  # [S]
    out: np.ndarray = np.sqrt(np.maximum(ms, 1e-12) / x.shape[-1])
    return out


def save_dictionary(td: TrainedDictionary, path: Path, meta: dict[str, Any]) -> None:
    """Write ``dictionary.safetensors`` and ``dictionary.json`` (lmdiff's own format) under ``path``."""
    m = td.model
    tensors = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    tensors["scales"] = torch.as_tensor(td.scales, dtype=torch.float64)
    with atomic_path(path / "dictionary.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(path / "dictionary.json", {"d_in": m.d_in, "n_latents": m.n_latents, "n_sides": m.n_sides, **meta})


def load_dictionary(path: Path) -> TrainedDictionary:
    """Inverse of :func:`save_dictionary` (metrics from ``metrics.parquet`` when present)."""
    meta = read_json(path / "dictionary.json")
    t = load_file(str(path / "dictionary.safetensors"))
    model = BatchTopK(meta["d_in"], meta["n_latents"], meta["n_sides"])
    scales = t.pop("scales").numpy()
    model.load_state_dict(t)
    mp = path / "metrics.parquet"
    return TrainedDictionary(model, scales, pd.read_parquet(mp) if mp.exists() else pd.DataFrame())


def train_dictionary(
    stream: ActivationStream, settings: TrainSettings, out_dir: str | Path, *, label: str = "dictionary",
    on_step: MetricsHook | None = None, progress: bool = True,
) -> TrainedDictionary:
    """Train (or resume, or load when finished) a BatchTopK dictionary on ``stream`` into ``out_dir``.

    Args:
        stream: shuffled batches; its view sets the sides (paired: a crosscoder).
        settings: the training settings.
        out_dir: where the checkpoint, the final dictionary, metrics.parquet and training.png go.
        label: the progress bar's and the plot's title.
        on_step: called after each step with (step, metrics) (a test may raise here to simulate a kill).
        progress: show a progress bar.

    Returns:
        The trained dictionary.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = sha256_json({"settings": settings.model_dump(mode="json", exclude={"device"}), "view": stream.view,
                       "control": stream.control,
                       "layer": stream.layer, "store": str(stream.store.meta.get("key_hash")),
                       "buffer": stream.buffer_tokens, "min_position": stream.min_position,
                       "massive_factor": MASSIVE_FACTOR})
    if (out / "dictionary.json").exists() and read_json(out / "dictionary.json").get("train_key") == key:
        return load_dictionary(out)
    torch.manual_seed(settings.seed)
    ckpt_path = out / "checkpoint.pt"
    start, rows = 0, []
    scales = estimate_scales(stream)
    s_t = torch.as_tensor(scales, dtype=torch.float32)[None, :, None]
    first = torch.as_tensor(stream.sample(4096)) / s_t
    model = make_dictionary(stream.d_model, settings.n_latents, stream.n_sides, settings.seed, first.mean(0))
    dev = settings.torch_device()
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, settings.lr_at)
    since_fired = torch.zeros(settings.n_latents, dtype=torch.long)
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=True, map_location="cpu")  # tensors and plain values only
        if ck.get("train_key") == key:
            model.load_state_dict(ck["model"])
            since_fired = ck["since_fired"]
            opt.load_state_dict(ck["optim"])
            sched.load_state_dict(ck["sched"])
            start, rows, scales = int(ck["step"]), list(ck["metrics"]), ck["scales"].numpy()
            s_t = torch.as_tensor(scales, dtype=torch.float32)[None, :, None]
            log.info("%s: resuming at step %d of %d", label, start, settings.steps)
    steps = settings.steps
    since_fired, s_t = since_fired.to(dev), s_t.to(dev)
    k_aux = max(1, stream.d_model // 2)
    read_s = step_s = 0.0

    def checkpoint(step: int) -> None:
        with atomic_path(ckpt_path) as tmp:
            torch.save({"train_key": key, "model": model.state_dict(), "optim": opt.state_dict(),
                        "sched": sched.state_dict(), "step": step, "since_fired": since_fired.cpu(), "metrics": rows,
                        "scales": torch.as_tensor(np.asarray(scales, dtype=np.float64))}, tmp)

    with progress_bar(label if progress else "", steps if progress else 0) as advance:
        advance(start)
        batches = stream.batches(start, steps)
        while True:
            t0 = time.perf_counter()
            nxt = next(batches, None)
            t1 = time.perf_counter()
            read_s += t1 - t0
            if nxt is None:
                break
            step, batch = nxt
            x = torch.as_tensor(batch).to(dev, non_blocking=True) / s_t
            k = settings.k_at(step)
            fwd = model.forward_train(x, k)
            mse_loss = (x - fwd.recon).pow(2).sum(-1).sum(-1).mean() / x.shape[-1]
            dead = since_fired * settings.batch_size >= settings.dead_tokens
            aux = model.aux_loss(x, fwd, dead, k_aux)
            loss = mse_loss + settings.aux_coef * aux
            if settings.delta_coef > 0 and stream.n_sides == 2:  # in the units of mse_loss (per token, over D)
                delta_err = _side_difference(x) - _side_difference(fwd.recon)
                loss = loss + settings.delta_coef * delta_err.pow(2).sum(-1).mean() / x.shape[-1]
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            with torch.no_grad():
                fired = (fwd.acts > 0).any(0)
                since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + 1)
            step_s += time.perf_counter() - t1
            m = {"step": step, "loss": float(loss.detach()), "aux": float(aux.detach()), "k": float(k),
                 **_batch_metrics(x, fwd.recon.detach(), fwd.acts.detach()),
                 "dead": int((since_fired * settings.batch_size >= settings.dead_tokens).sum())}
            rows.append(m)
            advance(1)
            if (step + 1) % settings.checkpoint_every == 0 or step + 1 == steps:
                checkpoint(step + 1)
            if on_step is not None:
                on_step(step + 1, m)
    metrics = pd.DataFrame(rows)
    td = TrainedDictionary(model.cpu().eval(), np.asarray(scales, dtype=np.float64), metrics, resumed_from=start,
                           timing={"read_s": read_s, "step_s": step_s})
    write_parquet(out / "metrics.parquet", metrics)
    plot_metrics(metrics, out / "training.png", label)
    save_dictionary(td, out, {"train_key": key, "view": stream.view, "control": stream.control,
                              "layer": stream.layer, "settings": settings.model_dump(mode="json")})
    return td
