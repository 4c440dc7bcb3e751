"""Amplified sampling: exaggerate what a finetune changed, to surface behaviour too rare to see otherwise.

Two modes, both usable by any method:

* :func:`amplified_generate`, logit-difference amplification: the finetuned model samples from
  ``logits_ft + alpha * (logits_ft - logits_base)`` token by token. The finetune generates through
  :meth:`LanguageModel.generate` (its KV cache, seeds, left padding, temperature and top-p); a logits
  processor steps the base model in lockstep on the same tokens with its own KV cache
  (:meth:`LanguageModel.forward_step`) and adds the amplified difference before temperature and top-p.
  ``alpha = 0`` is ordinary sampling from the finetune, sample for sample with the same seed. Any pair
  with a shared tokenizer works: full finetunes, quantized copies, LoRA adapters (a shared LoRA pair runs
  the one model twice, with the adapter off for the base side).
* :func:`lora_scaled`, LoRA weight amplification: a context manager that multiplies a PEFT adapter's
  scaling by ``s`` (optionally only in some blocks or module kinds) and restores it on exit.

Amplified samples propose; they do not validate. Findings are validated on ordinary samples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from lmdiff.errors import ConfigError, IncompatiblePairError
from lmdiff.models.architecture import block_index, module_kind

if TYPE_CHECKING:
    from lmdiff.config import GenerationConfig
    from lmdiff.models.lm import Generation, LanguageModel, Prompt

__all__ = ["amplified_generate", "check_shared_tokenizer", "lora_modules", "lora_scaled"]


def _head_width(lm: LanguageModel) -> int:
    head = lm.unembed
    weight = getattr(head, "weight", None)
    return int(weight.shape[0]) if weight is not None else int(lm.config.vocab_size)


def check_shared_tokenizer(finetuned: LanguageModel, base: LanguageModel) -> None:
    """Raise :class:`IncompatiblePairError` unless both models share vocabulary, special tokens and output width."""
    if finetuned.tokenizer is base.tokenizer:
        reason = None
    elif finetuned.tokenizer.get_vocab() != base.tokenizer.get_vocab():
        reason = "their vocabularies differ"
    elif (finetuned.tokenizer.bos_token, finetuned.tokenizer.eos_token) != (
        base.tokenizer.bos_token, base.tokenizer.eos_token
    ):
        reason = "their special tokens differ"
    else:
        reason = None
    if reason is None and _head_width(finetuned) != _head_width(base):
        reason = f"their output heads have {_head_width(finetuned)} and {_head_width(base)} rows"
    if reason is not None:
        raise IncompatiblePairError(
            f"Logit-difference amplification adds the two models' logits token by token, but {reason}.",
            hint="check with `lmdiff diff BASE FT --methods samples` (its run.json records tokenizer_check); "
            "LoRA weight amplification or black-box methods work across tokenizers",
        )


class _LogitDifference:
    """A transformers logits processor: adds ``alpha * (scores - base logits)``, stepping the base in lockstep."""

    def __init__(self, base: LanguageModel, alpha: float, prompt_mask: torch.Tensor) -> None:
        self.base = base
        self.alpha = alpha
        self.prompt_mask = prompt_mask
        self.mask: torch.Tensor | None = None
        self.cache: Any = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows = input_ids.shape[0]
        if self.mask is None:  # first step: the whole (repeated) prompt
            repeat = rows // self.prompt_mask.shape[0]
            self.mask = self.prompt_mask.repeat_interleave(repeat, dim=0)
            new = input_ids
        else:  # later steps: the token just sampled (finished rows carry padding; the mask stays 1 as in generate)
            self.mask = torch.cat([self.mask, self.mask.new_ones((rows, 1))], dim=1)
            new = input_ids[:, -1:]
        if self.mask.shape != input_ids.shape:
            raise RuntimeError("amplified sampling lost step with the finetuned model's generation")
        base_logits, self.cache = self.base.forward_step(new, self.mask, self.cache)
        return scores + self.alpha * (scores - base_logits.to(scores.device, scores.dtype))


def amplified_generate(
    finetuned: LanguageModel,
    base: LanguageModel,
    prompts: Sequence[Prompt],
    config: GenerationConfig,
    alpha: float,
    *,
    chat: bool = True,
    system: str | None = None,
    progress: str | None = None,
) -> list[list[Generation]]:
    """Sample from ``logits_ft + alpha * (logits_ft - logits_base)``; otherwise exactly :meth:`LanguageModel.generate`.

    Both models keep a KV cache and step on the same tokens. With ``alpha != 0`` both heads compute
    float32 logits (a bf16 head's rounding would be amplified too); with ``alpha = 0`` the samples equal
    ``finetuned.generate(prompts, config)`` exactly. A repetition penalty, if set, applies to the
    finetune's logits before amplification.

    Raises:
        IncompatiblePairError: the models do not share a tokenizer.
    """
    check_shared_tokenizer(finetuned, base)

    def factory(_ids: torch.Tensor, mask: torch.Tensor) -> _LogitDifference:
        return _LogitDifference(base, alpha, mask)

    return finetuned.generate(prompts, config, chat=chat, system=system, progress=progress,
                              logits_processor=factory, fp32_logits=alpha != 0)


def lora_modules(
    model: nn.Module, *, layers: tuple[int, int] | None = None, kinds: Sequence[str] | None = None
) -> list[tuple[str, nn.Module]]:
    """The PEFT LoRA layers of ``model`` (name, module), optionally within blocks ``layers`` (inclusive) and ``kinds``.

    ``kinds`` holds module kinds (``attention``, ``mlp``; see :func:`lmdiff.models.architecture.module_kind`)
    or module leaf names (``q_proj``, ``down_proj``).
    """
    from peft.tuners.lora import LoraLayer

    out: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, LoraLayer):
            continue
        if layers is not None:
            b = block_index(name)
            if b is None or not layers[0] <= b <= layers[1]:
                continue
        if kinds is not None and module_kind(name) not in kinds and name.rsplit(".", 1)[-1] not in kinds:
            continue
        out.append((name, cast(nn.Module, mod)))
    return out


@contextlib.contextmanager
def lora_scaled(
    model: nn.Module,
    scale: float,
    *,
    layers: tuple[int, int] | None = None,
    kinds: Sequence[str] | None = None,
    adapter: str | None = None,
) -> Iterator[int]:
    """Multiply a PEFT adapter's LoRA scaling by ``scale`` while the context is open; yields the layers scaled.

    ``scale = 1`` is the adapter as trained, ``0`` the base model, ``2`` doubles every low-rank update.
    The original scalings are restored on exit, exceptions included.

    Args:
        model: a PEFT model (or any module holding LoRA layers).
        scale: the factor.
        layers: first and last block (inclusive) to scale; None for all.
        kinds: module kinds or leaf names to scale (see :func:`lora_modules`); None for all.
        adapter: the adapter name (default: every adapter of each layer).

    Raises:
        ConfigError: no LoRA layer matches.
    """
    found = lora_modules(model, layers=layers, kinds=kinds)
    if not found:
        raise ConfigError(
            "No LoRA layer matches the requested layers and module kinds (is the finetune a LoRA adapter?).",
            hint="LoRA weight amplification needs a PEFT adapter; use logit-difference amplification otherwise",
        )
    saved: list[tuple[dict[str, float], str, float]] = []
    try:
        for _, mod in found:
            scaling: dict[str, float] = mod.scaling  # type: ignore[assignment]
            for name in list(scaling) if adapter is None else [adapter]:
                if name in scaling:
                    saved.append((scaling, name, scaling[name]))
                    scaling[name] = scaling[name] * scale
        yield len(found)
    finally:
        for scaling, name, value in saved:
            scaling[name] = value
