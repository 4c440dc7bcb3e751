"""Where a transformers causal LM keeps its internals: decoder blocks, final norm, embeddings, head.

One table maps each supported architecture family to the attribute paths of its modules (the
names nnterp standardises as ``layers``, ``ln_final``, ``embed_tokens`` and ``lm_head``), so
that every white-box method finds them the same way for every model (blocks, final norm,
embeddings, head):

* llama-like: ``model.layers``, ``model.norm``, ``model.embed_tokens``, ``lm_head``;
* phi: ``model.layers``, ``model.final_layernorm``, ``model.embed_tokens``, ``lm_head``;
* gpt2: ``transformer.h``, ``transformer.ln_f``, ``transformer.wte``, ``lm_head``;
* gpt-neox: ``gpt_neox.layers``, ``gpt_neox.final_layer_norm``, ``gpt_neox.embed_in``, ``embed_out``
  (``lm_head`` in recent transformers);
* opt: ``model.decoder.layers``, ``model.decoder.final_layer_norm``, ``model.decoder.embed_tokens``,
  ``lm_head``.

"llama-like" covers Llama, Mistral, Qwen2/Qwen3, Gemma/Gemma2, Phi-3 and OLMo, which share
the Llama layout. A model that matches no row is refused with a :class:`ConfigError` naming its
class. The paths are looked up under any PEFT wrapper (``get_base_model``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from lmdiff.errors import ConfigError


@dataclass(frozen=True)
class LayoutSpec:
    """Attribute paths (dotted, from the causal-LM module) of one architecture family.

    Attributes:
        family: a short name for messages.
        layers: the ModuleList of decoder blocks.
        final_norm: the norm applied to the last block's output before the head.
        embeddings: the input token embedding.
        unembed: candidate paths of the output head (the first that exists is used).
    """

    family: str
    layers: str
    final_norm: str
    embeddings: str
    unembed: tuple[str, ...] = ("lm_head",)


#: Known layouts, tried in order; the first whose blocks and final norm both resolve is used.
LAYOUTS: tuple[LayoutSpec, ...] = (
    LayoutSpec("llama-like", "model.layers", "model.norm", "model.embed_tokens"),
    LayoutSpec("phi", "model.layers", "model.final_layernorm", "model.embed_tokens"),
    LayoutSpec("gpt2", "transformer.h", "transformer.ln_f", "transformer.wte"),
    LayoutSpec("gpt-neox", "gpt_neox.layers", "gpt_neox.final_layer_norm", "gpt_neox.embed_in",
               ("embed_out", "lm_head")),
    LayoutSpec("opt", "model.decoder.layers", "model.decoder.final_layer_norm", "model.decoder.embed_tokens"),
)


@dataclass(frozen=True)
class Architecture:
    """The resolved internals of one loaded causal LM.

    Attributes:
        family: the matching :class:`LayoutSpec`'s family.
        layers: the decoder blocks, in order.
        final_norm: the norm before the head.
        embeddings: the input embedding.
        unembed: the output head.
    """

    family: str
    layers: nn.ModuleList
    final_norm: nn.Module
    embeddings: nn.Module
    unembed: nn.Module


def _get(root: nn.Module, path: str) -> nn.Module | None:
    obj: object = root
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, nn.Module) else None


def _hf_embeddings(core: nn.Module, getter: str) -> nn.Module | None:
    """The model's own ``get_input_embeddings`` / ``get_output_embeddings`` (None when absent)."""
    fn = getattr(core, getter, None)
    found = fn() if callable(fn) else None
    return found if isinstance(found, nn.Module) else None


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under any PEFT wrapper."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def resolve_architecture(model: nn.Module) -> Architecture:
    """Find the blocks, final norm, embeddings and head of ``model`` from the :data:`LAYOUTS` table.

    Args:
        model: a transformers causal LM, optionally inside a PEFT wrapper.

    Returns:
        The resolved :class:`Architecture`.

    Raises:
        ConfigError: when no known layout matches (the message names the model class).
    """
    core = unwrap(model)
    for spec in LAYOUTS:
        layers = _get(core, spec.layers)
        norm = _get(core, spec.final_norm)
        if not isinstance(layers, nn.ModuleList) or norm is None:
            continue
        head = next((m for m in (_get(core, p) for p in spec.unembed) if m is not None), None)
        head = head if head is not None else _hf_embeddings(core, "get_output_embeddings")
        embed = _get(core, spec.embeddings) or _hf_embeddings(core, "get_input_embeddings")
        if head is None or embed is None:
            continue
        return Architecture(spec.family, layers, norm, embed, head)
    raise ConfigError(
        f"lmdiff does not know where {type(core).__name__} keeps its decoder blocks and final norm.",
        hint="known layouts: " + "; ".join(f"{s.family} ({s.layers}, {s.final_norm})" for s in LAYOUTS)
        + " (add a row to lmdiff.models.architecture.LAYOUTS)",
    )


def call_in_float32(module: nn.Module, x: torch.Tensor, fallback_dtype: torch.dtype) -> torch.Tensor:
    """Run ``module`` on ``x`` with its parameters, buffers and ``x`` cast to float32 (the module is untouched).

    Args:
        module: a norm or linear head.
        x: its input.
        fallback_dtype: the input dtype used when the module's weights are not plain floating-point
            tensors (a quantized layer), which then runs as it is, its output cast to float32.

    Returns:
        The output in float32.
    """
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    if any(not t.is_floating_point() or type(t) not in (torch.Tensor, nn.Parameter) for t in tensors.values()):
        out: torch.Tensor = module(x.to(fallback_dtype))
        return out.float()
    as_f32 = {k: t.float() for k, t in tensors.items()}
    out32: torch.Tensor = functional_call(module, as_f32, (x.float(),))
    return out32.float()


_BLOCK_RE = re.compile(r"\.(\d+)\.")
_KIND_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("attention", ("attn", "attention")),
    ("mlp", ("mlp", "ffn", "feed_forward")),
    ("embedding", ("embed", "wte", "wpe")),
    ("head", ("lm_head", "embed_out")),
    ("norm", ("norm", "ln_")),
)
MODULE_KINDS = ("attention", "mlp", "embedding", "head", "norm", "other")
"""What :func:`module_kind` can answer."""


def block_index(name: str) -> int | None:
    """The decoder block a parameter or module belongs to, from its dotted name (``model.layers.3.mlp`` -> 3)."""
    m = _BLOCK_RE.search(name + ".")
    return int(m.group(1)) if m else None


def module_kind(name: str) -> str:
    """The kind of a parameter or module from its dotted name: one of :data:`MODULE_KINDS`.

    Inside a block, a path through ``attn``/``attention`` is attention and one through ``mlp``/``ffn`` is
    the MLP (Llama, GPT-2, GPT-NeoX, OPT and Phi names all fit); norms inside blocks are ``norm``.
    """
    parts = name.lower().split(".")
    leaf_first = [p for p in parts if p not in ("weight", "bias", "base_layer")]
    for kind, keys in (_KIND_PARTS[4], _KIND_PARTS[3]):  # a norm or head module anywhere decides first
        if leaf_first and any(k in leaf_first[-1] for k in keys):
            return kind
    for kind, keys in _KIND_PARTS:
        if any(k in p for p in parts for k in keys):
            return kind
    return "other"
