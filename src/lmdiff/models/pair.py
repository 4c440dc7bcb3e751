"""``ModelPair``: the base model and its finetune, loaded as cheaply as possible.

When the finetune is a LoRA adapter over the base, the pair loads the weights once and
switches the adapter off for the base side and on for the finetuned side. Two full models
are loaded together, or one at a time when memory is short (``load="one_at_a_time"``, or
``"auto"`` when both would not fit comfortably in RAM).

Either side may be a remote endpoint (``openai-compatible:URL#MODEL``, ``inspect:PROVIDER/MODEL``): it is
text only, reached through :meth:`ModelPair.text_side`; :meth:`ModelPair.side` (weights, logits, hidden
states) refuses it with a one-sentence reason, and :meth:`ModelPair.white_box_unavailable` gives that
reason to the methods that would need it.
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
from lmdiff.models.remote import open_remote
from lmdiff.models.spec import ModelSpec
from lmdiff.models.text import TextModel

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
            if spec.adapter and not spec.is_remote:
                check_adapter_dir(spec.adapter)
        self.load_policy: LoadPolicy = load
        self._models: dict[Side, LanguageModel] = {}
        self._remote: dict[Side, TextModel] = {}
        self._shared: LanguageModel | None = None
        self._fp: tuple[dict[str, Any], dict[str, Any]] | None = None

    # -------------------------------------------------------------- structure
    @property
    def shares_weights(self) -> bool:
        """True when the finetune is a LoRA adapter over exactly the base weights."""
        b, f = self.base_spec, self.finetuned_spec
        return bool(f.adapter) and not b.adapter and b.weights_key() == f.weights_key()

    @property
    def remote_sides(self) -> list[Side]:
        """The sides served by a remote endpoint (text only)."""
        sides: tuple[tuple[Side, ModelSpec], ...] = (("base", self.base_spec), ("finetuned", self.finetuned_spec))
        return [side for side, spec in sides if spec.is_remote]

    def white_box_unavailable(self) -> str | None:
        """Why weights, logits and tokens cannot be read on this pair (a side is remote), or None."""
        remote = self.remote_sides
        if not remote:
            return None
        which = "both models are" if len(remote) == 2 else f"the {remote[0]} model is"
        return f"{which} a remote endpoint (text only: no weights, logits or tokenizer here)"

    def scoring_unavailable(self) -> str | None:
        """Why replies cannot be scored under both models (a remote side cannot say), or None."""
        for side in self.remote_sides:
            why = getattr(self.text_side(side), "score_unavailable", lambda: None)()
            if why:
                return f"the {side} model cannot score given text: {why}"
        return None

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
        out: dict[str, Any] = {
            "base": self._fingerprints()[0],
            "finetuned": self._fingerprints()[1],
            "shares_weights": self.shares_weights,
            "load_policy": self.effective_policy(),
            "dtypes": {"base": _dtype_name(self.base_spec), "finetuned": _dtype_name(self.finetuned_spec)},
        }
        if self.remote_sides:
            out["remote"] = list(self.remote_sides)
        return out

    def cache_key(self) -> dict[str, Any]:
        """What a resumable step's key holds of the pair: :meth:`describe` without adapter paths.

        An adapter whose weights' hash identifies it is keyed by that hash alone, so that a moved checkout
        or a fresh install (an organism's adapter lives inside the installed package) reuses a run instead
        of recomputing it.
        """
        out = self.describe()
        for side in ("base", "finetuned"):
            fp = out[side]
            if fp.get("adapter_sha256"):
                out[side] = {k: v for k, v in fp.items() if k != "adapter"}
        return out

    def _fingerprints(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Both specs' fingerprints (adapter hashes computed once per pair)."""
        if self._fp is None:
            self._fp = (self.base_spec.fingerprint(), self.finetuned_spec.fingerprint())
        return self._fp

    def effective_policy(self) -> Literal["shared", "same", "together", "one_at_a_time"]:
        """How the pair actually holds its models ("same": a self-pair uses one loaded model).

        A pair with a remote side holds at most one model here: "together" (or "same" for one endpoint twice).
        """
        if self.remote_sides:
            return "same" if self.is_self_pair else "together"
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
        """Return one side, loading it (and, one-at-a-time, unloading the other) as needed.

        Raises:
            IncompatiblePairError: the side is a remote endpoint (use :meth:`text_side`).
        """
        spec = self.base_spec if which == "base" else self.finetuned_spec
        if spec.is_remote:
            raise IncompatiblePairError(
                f"The {which} model {spec.display_name} is a remote endpoint: it has no weights, logits or "
                "tokenizer here.",
                hint="black-box methods (samples, behavior, probing) work with endpoints",
            )
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

    def text_side(self, which: Side) -> TextModel:
        """One side as a text model: the loaded model, or the remote endpoint's client (nothing loaded for it)."""
        spec = self.base_spec if which == "base" else self.finetuned_spec
        if not spec.is_remote:
            return self.side(which)
        if which not in self._remote:
            other: Side = "finetuned" if which == "base" else "base"
            if self.is_self_pair and other in self._remote:
                self._remote[which] = self._remote[other]  # one endpoint, one client (and one usage record)
            else:
                self._remote[which] = open_remote(spec)
        return self._remote[which]

    def text_sides(self) -> Iterator[tuple[Side, TextModel]]:
        """Yield ("base", model) then ("finetuned", model) as text models (remote sides included)."""
        for which in ("base", "finetuned"):
            yield which, self.text_side(which)

    def remote_records(self) -> dict[str, Any]:
        """For each remote side that was used: its endpoint, what it supports and its usage (no secrets)."""
        out: dict[str, Any] = {}
        for which, model in self._remote.items():
            record = getattr(model, "record", None)
            if record is not None:
                out[which] = record()
        return out

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
        """Compare the two tokenizers (vocabulary and special tokens); a remote side has none here."""
        remote = self.white_box_unavailable()
        if remote is not None:
            return TokenizerCheck(False, remote)
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
        """The tokenizer of one side, without loading its weights if not loaded already (not of a remote side)."""
        if (self.base_spec if which == "base" else self.finetuned_spec).is_remote:
            self.side(which)  # raises: a remote side has no tokenizer here
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
    if spec.is_remote:
        return "remote"
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
