"""``ModelPair``: the base model and its finetune, loaded as cheaply as possible.

When the finetune is a LoRA adapter over the base, the pair loads the weights once and
switches the adapter off for the base side and on for the finetuned side. Two full models
are loaded together, or one at a time when memory is short (``load="one_at_a_time"``, or
``"auto"`` when both would not fit comfortably in RAM).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

from lmdiff.errors import IncompatiblePairError
from lmdiff.models.device import dtype_choice, resolve_device
from lmdiff.models.lm import LanguageModel
from lmdiff.models.loading import (
    attach_adapter,
    check_adapter_dir,
    load_base_model,
    load_model,
    load_tokenizer,
    local_weights_dir,
)
from lmdiff.models.spec import ModelSpec

log = logging.getLogger(__name__)

LoadPolicy = Literal["auto", "together", "one_at_a_time"]
Side = Literal["base", "finetuned"]


@dataclass(frozen=True)
class TokenizerCheck:
    """Whether the two sides tokenize text identically."""

    shared: bool
    reason: str


class ModelPair:
    """A base model and a finetuned model, with one copy of shared weights."""

    def __init__(
        self,
        base: ModelSpec | str,
        finetuned: ModelSpec | str,
        load: LoadPolicy = "auto",
    ) -> None:
        self.base_spec = ModelSpec.parse(base)
        self.finetuned_spec = ModelSpec.parse(finetuned)
        for spec in (self.base_spec, self.finetuned_spec):
            if spec.adapter:
                check_adapter_dir(spec.adapter)
        self.load_policy: LoadPolicy = load
        self._models: dict[Side, LanguageModel] = {}
        self._shared: LanguageModel | None = None
        self._fp: tuple[dict[str, Any], dict[str, Any]] | None = None

    # -------------------------------------------------------------- structure
    @property
    def shares_weights(self) -> bool:
        """True when the finetune is a LoRA adapter over exactly the base weights."""
        b, f = self.base_spec, self.finetuned_spec
        return bool(f.adapter) and not b.adapter and b.weights_key() == f.weights_key()

    @property
    def is_self_pair(self) -> bool:
        """True when both sides are the same model (a null control)."""
        return (
            self.base_spec.base_spec() == self.finetuned_spec.base_spec()
            and self.base_spec.adapter == self.finetuned_spec.adapter
        )

    @property
    def ground_truth(self) -> dict[str, Any] | None:
        """What is known about the finetune (organisms carry this)."""
        return self.finetuned_spec.ground_truth

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the pair for run manifests (with the dtype each side resolves to)."""
        return {
            "base": self._fingerprints()[0],
            "finetuned": self._fingerprints()[1],
            "shares_weights": self.shares_weights,
            "load_policy": self.effective_policy(),
            "dtypes": {"base": _dtype_name(self.base_spec), "finetuned": _dtype_name(self.finetuned_spec)},
        }

    def _fingerprints(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Both specs' fingerprints (adapter hashes computed once per pair)."""
        if self._fp is None:
            self._fp = (self.base_spec.fingerprint(), self.finetuned_spec.fingerprint())
        return self._fp

    def effective_policy(self) -> Literal["shared", "same", "together", "one_at_a_time"]:
        """How the pair actually holds its models ("same": a self-pair uses one loaded model)."""
        if self.shares_weights:
            return "shared"
        if self.is_self_pair:
            return "same"
        if self.load_policy != "auto":
            return self.load_policy
        return "together" if _fits_twice(self.base_spec) else "one_at_a_time"

    # ---------------------------------------------------------------- access
    @property
    def base(self) -> LanguageModel:
        """The base side (loaded on first use)."""
        return self.side("base")

    @property
    def finetuned(self) -> LanguageModel:
        """The finetuned side (loaded on first use)."""
        return self.side("finetuned")

    def side(self, which: Side) -> LanguageModel:
        """Return one side, loading it (and, one-at-a-time, unloading the other) as needed."""
        if which in self._models:
            return self._models[which]
        policy = self.effective_policy()
        if policy == "shared":
            self._load_shared()
        elif policy == "same":
            lm = load_model(self.base_spec)
            self._models["base"] = lm
            self._models["finetuned"] = LanguageModel(lm.model, lm.tokenizer, self.finetuned_spec)
        else:
            if policy == "one_at_a_time":
                self.unload()
            spec = self.base_spec if which == "base" else self.finetuned_spec
            self._models[which] = load_model(spec)
        return self._models[which]

    def sides(self) -> Iterator[tuple[Side, LanguageModel]]:
        """Yield ("base", lm) then ("finetuned", lm); one-at-a-time pairs swap between them."""
        for which in ("base", "finetuned"):
            yield which, self.side(which)

    def both_resident(self) -> bool:
        """Whether both sides can be used at the same time (needed e.g. for per-token KL)."""
        return self.effective_policy() != "one_at_a_time"

    def unload(self) -> None:
        """Free both sides."""
        self._models.clear()
        self._shared = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _load_shared(self) -> None:
        spec = self.finetuned_spec
        tokenizer = load_tokenizer(spec.base_spec())
        model = attach_adapter(load_base_model(spec.base_spec()), str(spec.adapter))

        def base_ctx() -> contextlib.AbstractContextManager[Any]:
            ctx: contextlib.AbstractContextManager[Any] = model.disable_adapter()
            return ctx

        self._models["base"] = LanguageModel(model, tokenizer, self.base_spec, activate=base_ctx)
        self._models["finetuned"] = LanguageModel(model, tokenizer, self.finetuned_spec)

    # ------------------------------------------------------------- tokenizers
    def tokenizer_check(self) -> TokenizerCheck:
        """Compare the two tokenizers (vocabulary and special tokens)."""
        if self.shares_weights or self.is_self_pair:
            return TokenizerCheck(True, "both sides use the same tokenizer")
        tb = self.side_tokenizer("base")
        tf = self.side_tokenizer("finetuned")
        if _vocab_hash(tb) != _vocab_hash(tf):
            return TokenizerCheck(
                False, f"vocabularies differ ({len(tb.get_vocab())} vs {len(tf.get_vocab())} tokens)"
            )
        if (tb.bos_token, tb.eos_token) != (tf.bos_token, tf.eos_token):
            return TokenizerCheck(False, "special tokens differ")
        return TokenizerCheck(True, "identical vocabularies and special tokens")

    def side_tokenizer(self, which: Side) -> Any:
        """The tokenizer of one side, without loading its weights if not loaded already."""
        if which in self._models:
            return self._models[which].tokenizer
        return load_tokenizer(self.base_spec if which == "base" else self.finetuned_spec)

    def require_shared_tokenizer(self, method: str) -> None:
        """Raise a clear error if ``method`` (which compares tokens) cannot run on this pair."""
        check = self.tokenizer_check()
        if not check.shared:
            raise IncompatiblePairError(
                f"Method '{method}' compares the two models token by token, but their tokenizers differ "
                f"({check.reason}).",
                hint="black-box methods (samples, behavior) work across tokenizers",
            )


def _dtype_name(spec: ModelSpec) -> str:
    """The dtype ``spec`` loads in on this machine (``auto`` resolved; see models.device.dtype_choice)."""
    return dtype_choice(spec.dtype, resolve_device(spec.device)).name


def _vocab_hash(tokenizer: Any) -> str:
    items = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(repr(items).encode()).hexdigest()


def _fits_twice(spec: ModelSpec) -> bool:
    """Rough check that two copies of this model fit in 60% of available memory."""
    try:

        src = local_weights_dir(spec)
        from pathlib import Path

        size = sum(p.stat().st_size for p in Path(src).glob("*.safetensors"))
    except Exception:
        return True
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        import os

        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return 2 * size < 0.6 * avail
