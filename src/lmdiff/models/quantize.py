"""Quantized copies of a model: bitsandbytes on GPU, optimum-quanto on CPU.

Measured on real text (DESIGN.md): quanto int8 KL 0.004 vs fp32, bitsandbytes nf4 0.57;
``torch.ao.quantization.quantize_dynamic`` is badly wrong (KL 1.76) and is never used.

A pair of one model at two precisions is a near-null control of the behaviour pipeline;
:func:`precision_metrics` adds what such a pair is about: the answer flip rate (greedy answers,
and for math prompts the final number) and the mean token KL on the replies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from lmdiff.errors import ConfigError

if TYPE_CHECKING:
    pass


def quantization_kwargs(mode: str, device: torch.device) -> dict[str, Any]:
    """``from_pretrained`` kwargs for a quantized load (GPU: bitsandbytes); empty on CPU."""
    if device.type != "cuda":
        return {}
    try:
        from transformers import BitsAndBytesConfig
    except ImportError as err:  # pragma: no cover - transformers always has it
        raise ConfigError("bitsandbytes quantization needs transformers' BitsAndBytesConfig.") from err
    if mode == "int8":
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}  # type: ignore[no-untyped-call]
    return {
        "quantization_config": BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    }


def quantize_after_load(model: torch.nn.Module, mode: str, device: torch.device) -> torch.nn.Module:
    """On CPU, quantize the weights of a loaded model with optimum-quanto."""
    if device.type == "cuda":
        return model
    try:
        from optimum.quanto import freeze, qint4, qint8, quantize
    except ImportError:
        raise ConfigError(
            f"A {mode} model on CPU needs optimum-quanto, which is not installed.",
            hint="pip install 'lmdiff[quant]'",
        ) from None
    quantize(model, weights=qint8 if mode == "int8" else qint4)
    freeze(model)
    if mode == "int4":
        _outside_inference_mode(model)
    return model


def _outside_inference_mode(model: torch.nn.Module) -> None:
    """Run each quanto module's forward with inference mode off (gradients still off).

    quanto's packed int4 weights fail inside ``torch.inference_mode`` ("Cannot set
    version_counter for inference tensor"), which lmdiff's forward passes use.
    """
    for module in model.modules():
        if type(module).__module__.startswith("optimum.quanto"):
            module.forward = _no_inference_mode(module.forward)


def _no_inference_mode(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode(False), torch.no_grad():
            return fn(*args, **kwargs)

    return wrapped


# --------------------------------------------------------------------------- precision pairs
