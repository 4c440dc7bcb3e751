"""``ModelSpec``: what a user names when they name a model.

A spec accepts a shipped model name (``smollm2-135m-instruct``), a Hugging Face hub id
(``HuggingFaceTB/SmolLM2-135M-Instruct``), a local model directory, a ``.gguf`` file, a
LoRA adapter directory (over its recorded base or an explicit one), an organism
(``organism:caps``) or a remote endpoint (``openai-compatible:URL#MODEL``, ``inspect:PROVIDER/MODEL``;
see :mod:`lmdiff.models.remote`), plus a dtype and a device. ``trust_remote_code`` is off unless asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.config import validate
from lmdiff.errors import AdapterError, ModelNotFoundError
from lmdiff.io import sha256_file
from lmdiff.models.registry import get_shipped
from lmdiff.registry import Registry

SourceKind = Literal["shipped", "local", "gguf", "hub", "remote"]
PrefixResolver = Callable[[str, "ModelSpec"], "ModelSpec"]

# Feature packages whose import registers their model-name prefixes (``organism:``).
BUILTIN_PREFIX_MODULES = ("lmdiff.organisms", "lmdiff.models.remote")

#: Prefixes whose models run behind an endpoint (text only: no weights, logits or tokenizer here).
REMOTE_PREFIXES = ("openai-compatible", "inspect")


def _import_builtin_prefixes() -> None:
    for module in BUILTIN_PREFIX_MODULES:
        importlib.import_module(module)


# ``PREFIX:NAME`` model strings resolve through ``resolver(NAME, spec)``; plugins: group ``lmdiff.model_prefixes``.
MODEL_PREFIXES: Registry[PrefixResolver] = Registry(
    "model prefix",
    plural="model prefixes",
    group="lmdiff.model_prefixes",
    discover=_import_builtin_prefixes,
    name_pattern=r"[A-Za-z][A-Za-z0-9_.-]*",
    name_rule="start with a letter and hold letters, digits, '_', '.' and '-' (no ':')",
)


def register_prefix(prefix: str, resolver: PrefixResolver) -> None:
    """Let ``PREFIX:NAME`` model strings resolve through ``resolver(NAME, spec)``.

    Raises:
        ValueError: The prefix is invalid or taken by another resolver.
    """
    MODEL_PREFIXES.register(prefix, resolver, stacklevel=2)


class ModelSpec(BaseModel):
    """A model to load: a name/path/id, an optional LoRA adapter, a dtype and a device."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    model: str = Field(
        description="shipped name, hub id, local directory, .gguf file, organism:NAME, "
        "openai-compatible:URL#MODEL or inspect:PROVIDER/MODEL"
    )
    adapter: str | None = Field(default=None, description="LoRA adapter directory applied over `model`")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    revision: str | None = None
    quantization: Literal["none", "int8", "int4"] = Field(
        default="none", description="load a quantized copy (CPU: optimum-quanto; GPU: bitsandbytes)"
    )
    label: str | None = Field(default=None, description="display name in reports")
    ground_truth: dict[str, Any] | None = Field(
        default=None, description="what is known about this model's change (filled for organisms)"
    )
    api_key_env: str | None = Field(
        default=None,
        description="remote endpoints: the environment variable holding the key (its name, never the key; "
        "openai-compatible default LMDIFF_ENDPOINT_API_KEY)",
    )
    tokenizer: str | None = Field(
        default=None,
        description="remote endpoints: a local model (shipped name or directory) whose chat template renders "
        "prompts when replies are scored through the endpoint's completions (echo + logprobs)",
    )

    @classmethod
    def parse(cls, value: str | ModelSpec | dict[str, Any], **overrides: Any) -> ModelSpec:
        """Build a spec from a string (or pass a spec/dict through), applying ``overrides``."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(value, ModelSpec):
            data = {**value.model_dump(exclude_unset=True), **given}
        elif isinstance(value, dict):
            data = {**value, **given}
        else:
            data = {"model": value, **given}
        return validate(cls, data).resolved()

    def resolved(self) -> ModelSpec:
        """Expand prefixes (``organism:``) and adapter-only directories into a full spec."""
        if ":" in self.model and not Path(self.model).exists():
            prefix, _, name = self.model.partition(":")
            resolver = MODEL_PREFIXES.find(prefix)
            if resolver is not None:
                return resolver(name, self)
            raise ModelNotFoundError(
                f"Unknown model prefix '{prefix}:' in '{self.model}'.",
                hint=f"known prefixes: {', '.join(sorted(MODEL_PREFIXES.names())) or '(none)'}",
            )
        path = Path(self.model).expanduser()
        if path.is_dir() and (path / "adapter_config.json").exists() and self.adapter is None:
            base = adapter_base(path)
            return self.model_copy(update={"model": base, "adapter": str(path)})
        return self

    @property
    def display_name(self) -> str:
        """A short name for tables and reports."""
        if self.label:
            return self.label
        if self.is_remote:  # MODEL@HOST:PORT, or the Inspect provider string
            prefix, _, rest = self.model.partition(":")
            url, _, served = rest.rpartition("#")
            return f"{served}@{urlsplit(url).netloc}" if prefix == "openai-compatible" and url else rest
        name = Path(self.model).name if self.source_kind in ("local", "gguf") else self.model
        if self.adapter:
            name += f"+{Path(self.adapter).name}"
        if self.quantization != "none":
            name += f"@{self.quantization}"
        return name

    @property
    def source_kind(self) -> SourceKind:
        """Where the base weights come from (``remote``: behind an endpoint, not here)."""
        if self.is_remote:
            return "remote"
        if get_shipped(self.model) is not None:
            return "shipped"
        path = Path(self.model).expanduser()
        if path.suffix == ".gguf":
            return "gguf"
        if path.exists() or self.model.startswith((".", "/", "~")):
            return "local"
        return "hub"

    @property
    def is_remote(self) -> bool:
        """True when the model runs behind an endpoint (``openai-compatible:``, ``inspect:``)."""
        return self.model.partition(":")[0] in REMOTE_PREFIXES and ":" in self.model

    def fingerprint(self) -> dict[str, Any]:
        """The spec plus a hash of its adapter's weights: a key that changes when the adapter is rebuilt."""
        out = self.model_dump(mode="json", exclude_none=True)
        if self.adapter:
            weights = Path(self.adapter).expanduser() / "adapter_model.safetensors"
            if weights.is_file():

                out["adapter_sha256"] = sha256_file(weights)
        return out

    def base_spec(self) -> ModelSpec:
        """The same spec without its adapter (the weights a LoRA finetune shares)."""
        return self.model_copy(update={"adapter": None, "label": None, "ground_truth": None})

    def weights_key(self) -> tuple[str, str, str, str, str | None]:
        """What identifies the loaded base weights (two specs with equal keys share weights)."""
        return (self.model, self.dtype, self.device, self.quantization, self.revision)


def adapter_base(adapter_dir: Path) -> str:
    """Read the base model an adapter directory was trained on."""
    import json

    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError) as err:
        raise AdapterError(f"Adapter config in '{adapter_dir}' is unreadable.") from err
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise AdapterError(
            f"Adapter '{adapter_dir}' does not record its base model.",
            hint="pass the base explicitly: --model BASE --adapter DIR",
        )
    return str(base)
