"""Turning a :class:`ModelSpec` into a loaded :class:`LanguageModel`.

Weights are only ever read from safetensors (``use_safetensors=True``); ``trust_remote_code``
is passed through from the spec and is off by default. A hub id is first looked up in the
local Hugging Face cache; the hub is only contacted when it is not there and offline mode
(``HF_HUB_OFFLINE=1``) is off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lmdiff.errors import AdapterError, CorruptCacheError, LmdiffError, ModelNotFoundError
from lmdiff.io import sha256_file
from lmdiff.models.device import dtype_choice, resolve_device, resolve_dtype
from lmdiff.models.gguf import cache_status, convert_gguf, verified_dir
from lmdiff.models.lm import LanguageModel
from lmdiff.models.quantize import quantization_kwargs, quantize_after_load
from lmdiff.models.registry import SHIPPED, get_shipped
from lmdiff.models.spec import ModelSpec
from lmdiff.paths import models_dir

if TYPE_CHECKING:
    from peft import PeftModel

log = logging.getLogger(__name__)


def local_weights_dir(spec: ModelSpec) -> str:
    """Return a local directory (or, for the hub, an id) that ``from_pretrained`` can load."""
    kind = spec.source_kind
    if kind == "shipped":
        shipped = get_shipped(spec.model)
        assert shipped is not None
        return str(shipped.local_dir())
    if kind == "gguf":

        src = Path(spec.model).expanduser()
        if not src.is_file():
            raise ModelNotFoundError(f"GGUF file '{src}' does not exist.", hint="check the path")
        dest = models_dir() / f"gguf-{src.stem}-{sha256_file(src)[:12]}"
        if cache_status(dest) == "not converted":
            convert_gguf(src, dest, name=src.stem)
        return str(verified_dir(dest, rebuild_hint=f"delete '{dest}' and run again"))
    if kind == "local":
        path = Path(spec.model).expanduser()
        if not path.exists():
            raise ModelNotFoundError(
                f"Model directory '{path}' does not exist.",
                hint=f"shipped models: {', '.join(SHIPPED)}; or pass a hub id or an existing directory",
            )
        if not (path / "config.json").exists():
            raise ModelNotFoundError(
                f"'{path}' is not a model directory (no config.json).",
                hint="pass a directory saved with save_pretrained, a .gguf file or an adapter directory",
            )
        return str(path)
    return spec.model  # hub id


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (checked once per process)."""
    global _HUB_REACHABLE
    if _HUB_REACHABLE is None:
        import socket
        from urllib.parse import urlparse

        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _HUB_REACHABLE = True
        except OSError:
            _HUB_REACHABLE = False
    return _HUB_REACHABLE


_HUB_REACHABLE: bool | None = None


def _hub_call(fn: Any, spec: ModelSpec, what: str, **kwargs: Any) -> Any:
    """Call a ``from_pretrained`` for a hub id: local cache first, then the hub if allowed."""
    try:
        return fn(spec.model, local_files_only=True, revision=spec.revision, **kwargs)
    except OSError:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    if not offline and not hub_reachable():
        raise ModelNotFoundError(
            f"Unknown model '{spec.model}': not a shipped model, a local path or a model in the local Hugging Face "
            "cache, and the Hugging Face hub cannot be reached.",
            hint=f"shipped models: {', '.join(SHIPPED)} (see `lmdiff models list`); or pass a local directory",
        )
    if offline:
        raise ModelNotFoundError(
            f"Unknown model '{spec.model}': not a shipped model, a local path or a model in the local Hugging Face "
            "cache (offline mode is on).",
            hint=f"shipped models: {', '.join(SHIPPED)}; download it where the hub is reachable, "
            "or pass a local directory",
        )
    try:
        return fn(spec.model, revision=spec.revision, **kwargs)
    except OSError as err:
        msg = str(err)
        if "is not a valid model identifier" in msg or "404" in msg or "Repository Not Found" in msg:
            raise ModelNotFoundError(
                f"Unknown model '{spec.model}': not a shipped model, a local path or a hub {what}.",
                hint=f"shipped models: {', '.join(SHIPPED)} (see `lmdiff models list`)",
            ) from None
        raise ModelNotFoundError(
            f"Could not fetch '{spec.model}' from the Hugging Face hub ({msg.splitlines()[0][:160]}).",
            hint="check the network or set HF_HUB_OFFLINE=1 and use a local directory",
        ) from None


def load_tokenizer(spec: ModelSpec) -> Any:
    """Load the tokenizer of ``spec`` (from the adapter directory if it carries one)."""
    from transformers import AutoTokenizer

    kwargs = {"trust_remote_code": spec.trust_remote_code}
    if spec.adapter and (Path(spec.adapter) / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(spec.adapter, **kwargs)
    source = local_weights_dir(spec)
    if spec.source_kind == "hub":
        return _hub_call(AutoTokenizer.from_pretrained, spec, "tokenizer", **kwargs)
    return AutoTokenizer.from_pretrained(source, **kwargs)


def load_base_model(spec: ModelSpec) -> torch.nn.Module:
    """Load the base weights of ``spec`` (no adapter) on its device and dtype."""
    from transformers import AutoModelForCausalLM

    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "trust_remote_code": spec.trust_remote_code,
        "use_safetensors": True,
    }
    if spec.quantization != "none":

        kwargs.update(quantization_kwargs(spec.quantization, device))
    from safetensors import SafetensorError

    source = local_weights_dir(spec)
    try:
        if spec.source_kind == "hub":
            model = _hub_call(AutoModelForCausalLM.from_pretrained, spec, "model", **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except LmdiffError:
        raise
    except SafetensorError as err:
        raise CorruptCacheError(
            f"The weights of model '{spec.model}' are truncated or corrupt ({err}).",
            hint="copy or download the model again (a shipped model: `lmdiff models convert NAME --force`)",
        ) from None
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(
            f"Could not load model '{spec.model}': {str(err).splitlines()[0][:200]}",
            hint="lmdiff loads safetensors weights only; check the directory's contents",
        ) from None
    if spec.quantization != "none":

        model = quantize_after_load(model, spec.quantization, device)
    if not getattr(model, "hf_device_map", None):
        model = model.to(device)
    loaded: torch.nn.Module = model.eval()
    return loaded


def attach_adapter(model: torch.nn.Module, adapter: str) -> PeftModel:
    """Wrap ``model`` with the LoRA adapter in directory ``adapter`` (safetensors only)."""
    from peft import PeftModel
    from safetensors import SafetensorError

    path = check_adapter_dir(adapter)
    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=False).eval()
    except SafetensorError as err:
        raise AdapterError(
            f"Adapter weights '{path / 'adapter_model.safetensors'}' are truncated or corrupt ({err}).",
            hint="rebuild or copy the adapter again (for an organism: `lmdiff organism build NAME --fresh`)",
        ) from None
    except (RuntimeError, ValueError, KeyError) as err:
        raise AdapterError(
            f"Adapter '{path}' does not fit base model: {str(err).splitlines()[0][:200]}",
            hint="check that the adapter was trained on this base model",
        ) from None


def check_adapter_dir(adapter: str) -> Path:
    """Check that ``adapter`` is a PEFT adapter directory with safetensors weights."""
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").exists():
        raise AdapterError(
            f"Adapter directory '{path}' does not exist or has no adapter_config.json.",
            hint="pass a directory saved by PEFT's save_pretrained",
        )
    if not (path / "adapter_model.safetensors").exists():
        raise AdapterError(
            f"Adapter '{path}' has no adapter_model.safetensors.",
            hint="lmdiff never unpickles weights; re-save the adapter with safe_serialization=True",
        )
    return path


def load_model(spec: ModelSpec | str, **overrides: Any) -> LanguageModel:
    """Load a model (with its adapter, if any) as a :class:`LanguageModel`."""
    spec = ModelSpec.parse(spec, **overrides)
    if spec.adapter:
        check_adapter_dir(spec.adapter)
    tokenizer = load_tokenizer(spec)
    model = load_base_model(spec)
    if spec.adapter:
        model = attach_adapter(model, spec.adapter)
    choice = dtype_choice(spec.dtype, resolve_device(spec.device))
    log.info("loaded %s (%s: %s; device %s)", spec.display_name, next(model.parameters()).dtype, choice.reason,
             spec.device)
    return LanguageModel(model, tokenizer, spec)
