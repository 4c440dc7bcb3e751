"""Pydantic configuration for every lmdiff run.

Configs load from YAML and take dotted command-line overrides (``generation.temperature=1.0``).
Unknown keys and bad values raise :class:`~lmdiff.errors.ConfigError` naming the key and
what is allowed. The resolved config is saved in each run directory.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmdiff.errors import ConfigError


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GenerationConfig(StrictModel):
    """Sampling parameters."""

    temperature: float = Field(1.0, ge=0.0, description="0 means greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k")
    max_new_tokens: int = Field(128, ge=1)
    n: int = Field(1, ge=1, description="samples per prompt")
    seed: int = 0
    repetition_penalty: float = Field(1.0, gt=0.0)
    system_prompt: str | None = None
    batch_size: int = Field(32, ge=1, description="prompts decoded together (x n rows; ended rows leave the batch)")


class ComputeConfig(StrictModel):
    """How to run the models."""

    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")
    batch_size: int = Field(8, ge=1, description="sequences per forward pass")
    load: Literal["auto", "together", "one_at_a_time"] = Field(
        "auto", description="keep both full models in memory, or load them in turn"
    )
    activation_shard_tokens: int = Field(
        16384,
        ge=256,
        description="tokens per activation-store shard: bounds memory during collection and the work a kill "
        "loses (a killed collection resumes at the first unfinished shard)",
    )
    executor: Literal["local", "ray"] = Field(
        "local",
        description="where sampling, activation collection and KL compute their shards: 'local' in this "
        "process, 'ray' on Ray actors (one model pair per actor; needs the 'ray' extra)",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to connect to (e.g. 'auto' or 'ray://host:10001'); None starts a local one"
    )
    ray_workers: int | None = Field(
        None, ge=1, description="Ray actors; None: one per GPU of the cluster, else one per ray_worker_cpus CPUs"
    )
    ray_worker_cpus: int | None = Field(
        None, ge=1,
        description="CPUs (torch threads) per Ray actor on CPU-only clusters; None: the cluster's CPUs divided "
        "by ray_workers when that is set, else 1",
    )


class PromptsConfig(StrictModel):
    """Which prompts to use."""

    name: str = Field("chat", description="a shipped prompt set, or 'file'")
    file: str | None = Field(None, description="JSONL/Parquet/text file of prompts when name='file'")
    limit: int | None = Field(None, ge=1)
    seed: int = 0


C = TypeVar("C", bound=BaseModel)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in item:
        raise ConfigError(
            f"Override '{item}' is not of the form key=value.", hint="e.g. generation.temperature=1.0"
        )
    key, _, raw = item.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"Override '{item}' has an empty key.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return ``data`` with each dotted override applied (nested dicts created as needed)."""
    out = _deep_copy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"Cannot set '{'.'.join(path)}': '{where}' is a value, not a section.")
            node = nxt
        node[path[-1]] = value
    return out


def load_config(
    cls: type[C],
    yaml_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
) -> C:
    """Build a ``cls`` config from defaults, then a YAML file, then dotted overrides."""
    data: dict[str, Any] = _deep_copy(defaults or {})
    if yaml_path is not None:
        path = Path(yaml_path)
        if not path.is_file():
            raise ConfigError(f"Config file '{path}' does not exist.")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"Config file '{path}' is not valid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"Config file '{path}' must hold a mapping at the top level.")
        data = _merge(data, loaded)
    data = apply_overrides(data, overrides)
    return validate(cls, data)


def validate(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Validate ``data`` as ``cls``, turning pydantic errors into one readable ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(cls, err, prefix)) from None


def format_validation_error(cls: type[BaseModel], err: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the dotted key and the allowed keys or values."""
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join([prefix, *loc] if prefix else loc)
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(cls, loc[:-1])
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"unknown key '{key}'{hint}")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            lines.append(f"bad value for '{key}' ({e.get('input')!r}): {e['msg']}")
    return "Invalid configuration: " + "; ".join(lines) + "."


def _allowed_keys(cls: type[BaseModel], path: list[str]) -> list[str]:
    model: Any = cls
    for part in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}
