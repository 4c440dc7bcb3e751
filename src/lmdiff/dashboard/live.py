"""The dashboard's live tools on a loaded pair, as plain functions over lmdiff's own primitives.

* :func:`chat_turn`: one turn of a side-by-side chat (same seed and sampling settings on both sides,
  optionally wrapped in an organism's trigger).
* :func:`typed_text_kl`: per-token KL on any text (:func:`lmdiff.interp.logprobs.token_kl`) with both
  models' top next tokens at each position.
* :func:`steer_compare`: unsteered vs steered samples along a saved direction
  (:func:`lmdiff.interp.hooks.steer`, scaled as ADL steers).
* :func:`amplify_compare`: base, finetuned and amplified samples (:func:`lmdiff.amplify.amplified_generate`
  with the finetune's LoRA scaling under :func:`lmdiff.amplify.lora_scaled`).

Each takes an optional ``progress(share, message)`` callback, called between its steps.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from lmdiff.amplify import amplified_generate, lora_scaled
from lmdiff.config import GenerationConfig
from lmdiff.dashboard.runs import Direction
from lmdiff.errors import ConfigError, LmdiffError
from lmdiff.interp.hooks import steer
from lmdiff.interp.logprobs import token_kl
from lmdiff.models.pair import ModelPair
from lmdiff.models.spec import ModelSpec
from lmdiff.organisms.trigger import apply_trigger

Progress = Callable[[float, str], None]

#: The longest text the KL tool scores (tokens).
MAX_KL_TOKENS = 512


def _noop(_share: float, _msg: str) -> None:
    return None


@dataclass
class LoadedPair:
    """A loaded pair with a lock: one live tool at a time drives its models (hooks and LoRA scaling are global)."""

    pair: ModelPair
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        """``base vs finetuned``."""
        return f"{self.pair.base_spec.display_name} vs {self.pair.finetuned_spec.display_name}"


def load_pair(base: str | dict[str, Any], finetuned: str | dict[str, Any]) -> LoadedPair:
    """Load both sides of a pair (a spec dict from a run's config.yaml, or any model name lmdiff accepts)."""
    pair = ModelPair(ModelSpec.parse(base), ModelSpec.parse(finetuned))
    if not pair.both_resident():
        raise LmdiffError("This pair is too large to hold both models in memory here, which the live tools need.")
    pair.base  # noqa: B018  (loads the side)
    pair.finetuned  # noqa: B018
    return LoadedPair(pair)


@dataclass(frozen=True)
class Sampling:
    """Sampling settings shared by both sides of a comparison."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 64
    seed: int = 0
    system: str | None = None

    def config(self) -> GenerationConfig:
        """The generation config both sides use."""
        return GenerationConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                                seed=self.seed, system_prompt=self.system, n=1, batch_size=8)


def trigger_template(ground_truth: dict[str, Any] | None) -> str | None:
    """An organism's trigger template (``{question}`` marks the user's text), or None when it has none."""
    t = (ground_truth or {}).get("trigger")
    return str(t) if t and "{question}" in str(t) else None


def chat_turn(pair: ModelPair, history: Sequence[dict[str, str]], message: str, sampling: Sampling,
              trigger: str | None = None, progress: Progress = _noop) -> dict[str, str]:
    """One chat turn on both sides: each side sees the shared user turns and its own earlier replies.

    Args:
        pair: the loaded pair.
        history: earlier turns, each ``{"user": ..., "base": ..., "finetuned": ...}``.
        message: the new user message.
        sampling: the settings both sides use (same seed).
        trigger: a trigger template to wrap the message in (organisms with a backdoor).
        progress: called between the two sides.

    Returns:
        ``{"user": the message as sent, "base": reply, "finetuned": reply}``.
    """
    if not message.strip():
        raise LmdiffError("Type a message first.")
    sent = apply_trigger(message, trigger) if trigger else message
    out = {"user": sent}
    cfg = sampling.config()
    for i, (side, lm) in enumerate(pair.sides()):
        progress(i / 2, f"{side} model is answering")
        msgs: list[dict[str, str]] = []
        for turn in history:
            msgs += [{"role": "user", "content": turn["user"]}, {"role": "assistant", "content": turn[side]}]
        msgs.append({"role": "user", "content": sent})
        out[side] = lm.generate([msgs], cfg)[0][0].text
    progress(1.0, "done")
    return out


def typed_text_kl(pair: ModelPair, text: str, k: int = 3, progress: Progress = _noop) -> pd.DataFrame:
    """Per-token KL(finetuned || base) on ``text`` with each model's ``k`` most likely next tokens.

    Returns:
        One row per token: ``pos``, ``token_str``, ``kl``, ``kl_rev``, ``top_ft``, ``top_base`` (the top tokens
        as ``'tok' p`` strings) and ``hover`` (a tooltip naming both).
    """
    if not text.strip():
        raise LmdiffError("Type some text first.")
    lm = pair.base
    ids = lm.encode(text)
    if len(ids) > MAX_KL_TOKENS:
        raise LmdiffError(f"The text has {len(ids)} tokens; the KL tool scores at most {MAX_KL_TOKENS}.")
    progress(0.1, "per-token KL")
    df = token_kl(pair, text, reverse=True)
    progress(0.6, "top next tokens")
    tops: dict[str, list[str]] = {}
    for side, model in (("ft", pair.finetuned), ("base", pair.base)):
        lp = model.next_token_logprobs([ids], batch_size=1)[0]
        p, idx = lp.exp().topk(k, dim=-1)
        tops[side] = [", ".join(f"{t!r} {float(q):.2f}" for t, q in zip(model.token_strings(row.tolist()), prob,
                                                                       strict=True))
                      for row, prob in zip(idx, p, strict=True)]
    df = df.reset_index(drop=True)
    n = min(len(df), len(tops["ft"]))
    df = df.iloc[:n].copy()
    df["top_ft"] = tops["ft"][:n]
    df["top_base"] = tops["base"][:n]
    df["hover"] = [f"after {t!r}: KL {kl:.4f} nats\nfinetuned next: {f}\nbase next: {b}"
                   for t, kl, f, b in zip(df["token_str"], df["kl"], df["top_ft"], df["top_base"], strict=True)]
    progress(1.0, "done")
    return df


def steer_compare(pair: ModelPair, direction: Direction, strength: float, prompts: Sequence[str],
                  sampling: Sampling, progress: Progress = _noop) -> pd.DataFrame:
    """Unsteered vs steered samples of the finetuned model with ``strength`` x the direction added at its layer.

    The vector added is the unit direction times the finetune's typical norm at that layer (as ADL steers),
    so a strength of 1 adds a vector as long as a typical activation. Both columns use the same seed.
    """
    lm = pair.finetuned
    if not 0 <= direction.layer < lm.n_layers:
        raise ConfigError(f"The direction is for layer {direction.layer}, but the model has {lm.n_layers} layers.")
    if direction.vector.shape[-1] != lm.d_model:
        raise ConfigError(f"The direction has {direction.vector.shape[-1]} dimensions, the model {lm.d_model}.")
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise LmdiffError("Give at least one prompt.")
    cfg = sampling.config()
    progress(0.0, "unsteered samples")
    plain = lm.generate(prompts, cfg)
    progress(0.5, "steered samples")
    vec = torch.as_tensor(direction.scaled(strength))
    with steer(lm, direction.layer, vec, 1.0):
        steered = lm.generate(prompts, cfg)
    progress(1.0, "done")
    return pd.DataFrame({"prompt": prompts, "unsteered": [g[0].text for g in plain],
                         "steered": [g[0].text for g in steered]})


def amplify_compare(pair: ModelPair, prompts: Sequence[str], alpha: float, lora_scale: float, sampling: Sampling,
                    progress: Progress = _noop) -> pd.DataFrame:
    """Base, finetuned and amplified samples for each prompt (same seed and settings in every column).

    Amplified: sampled from ``logits_ft + alpha * (logits_ft - logits_base)`` while the finetune's LoRA scaling
    is multiplied by ``lora_scale`` (1 leaves it as trained; other values need a LoRA finetune).
    """
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise LmdiffError("Give at least one prompt.")
    cfg = sampling.config()
    progress(0.0, "base samples")
    base = pair.base.generate(prompts, cfg)
    progress(1 / 3, "finetuned samples")
    ft = pair.finetuned.generate(prompts, cfg)
    progress(2 / 3, "amplified samples")
    scaled = (lora_scaled(pair.finetuned.model, lora_scale) if lora_scale != 1.0
              else contextlib.nullcontext())
    with scaled:
        amp = amplified_generate(pair.finetuned, pair.base, prompts, cfg, alpha)
    progress(1.0, "done")
    return pd.DataFrame({"prompt": prompts, "base": [g[0].text for g in base],
                         "finetuned": [g[0].text for g in ft],
                         f"amplified (alpha {alpha:g}, LoRA x{lora_scale:g})": [g[0].text for g in amp]})
