"""Configuration of the LLM layer: which model, how hard to try, how much to spend.

The model is an Inspect AI model string (``openai/gpt-4.1-mini``, ``anthropic/...``,
``google/...``, ``openrouter/...``, ``vllm/...``, ``ollama/...``, ``openai-api/SERVICE/NAME``
with a ``base_url``, ``hf/LOCAL_DIR``) or ``local/NAME_OR_DIR`` for a local transformers model
(a shipped model name such as ``smollm2-135m-instruct`` or a directory). ``None`` means
offline: every role then uses its offline implementation.

API keys are never part of this config: providers read them from the environment
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...) through Inspect AI.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmdiff.errors import ConfigError
from lmdiff.models.registry import SHIPPED, get_shipped
from lmdiff.paths import cache_home

ENV_MODEL = "LMDIFF_LLM"
ENV_BASE_URL = "LMDIFF_LLM_BASE_URL"

_SECRET_ARG = re.compile(r"(key|token|secret|password|passwd|credential|auth)", re.IGNORECASE)


def _env_model() -> str | None:
    return os.environ.get(ENV_MODEL) or None


def _env_base_url() -> str | None:
    return os.environ.get(ENV_BASE_URL) or None


class Price(BaseModel):
    """Price of a model in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0.0, description="USD per 1M input tokens")
    output: float = Field(ge=0.0, description="USD per 1M output tokens")


class LlmConfig(BaseModel):
    """How the LLM layer talks to a model, and what it may spend in one run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str | None = Field(
        default_factory=_env_model,
        validate_default=True,
        description=f"Inspect model string; default ${ENV_MODEL}; None = offline",
    )
    base_url: str | None = Field(
        default_factory=_env_base_url,
        description=f"OpenAI-compatible endpoint; default ${ENV_BASE_URL}",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=1024, ge=1)
    max_connections: int = Field(default=8, ge=1, description="concurrent calls at most")
    max_retries: int = Field(default=5, ge=0, description="retries of a transient failure (rate limit, 5xx, timeout)")
    backoff_initial: float = Field(default=1.0, ge=0.0, description="seconds before the first retry")
    backoff_max: float = Field(default=60.0, ge=0.0, description="longest wait between retries")
    timeout: float | None = Field(default=120.0, gt=0.0, description="seconds per attempt; None = no limit")
    budget_usd: float | None = Field(default=None, ge=0.0, description="stop after spending this much in one run")
    budget_tokens: int | None = Field(default=None, ge=0, description="stop after this many tokens in one run")
    cache: bool = Field(default=True, description="serve identical requests from the disk cache")
    cache_dir: Path | None = Field(default=None, description="default: <lmdiff cache>/llm")
    prices: dict[str, Price] = Field(default_factory=dict, description="price overrides by model string or name prefix")
    model_args: dict[str, Any] = Field(
        default_factory=dict, description="extra provider arguments (never keys: use the environment)"
    )

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or value.lower() in {"none", "offline"}:
            return None
        if "/" not in value:
            raise ValueError(
                f"model {value!r} must look like 'provider/name' (e.g. 'openai/gpt-4.1-mini', "
                "'local/smollm2-135m-instruct')"
            )
        return value

    @field_validator("model_args")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(k for k in value if _SECRET_ARG.search(k))
        if bad:
            raise ValueError(
                f"model_args must not carry credentials ({', '.join(bad)}); "
                "set the provider's key in the environment instead"
            )
        return value

    @property
    def offline(self) -> bool:
        """True when no model is configured and every role runs offline."""
        return self.model is None

    def resolved_cache_dir(self) -> Path:
        """Return the cache directory: ``cache_dir`` or ``<lmdiff cache home>/llm``."""
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()

        return cache_home() / "llm"


def known_providers() -> list[str]:
    """Provider names a model string may start with: Inspect AI's model APIs plus ``local``.

    Raises:
        ConfigError: Inspect AI (the ``llm`` extra) is not installed.
    """
    try:
        import inspect_ai.model  # noqa: F401  registers the providers
        from inspect_ai._util.registry import registry_find, registry_unqualified_name
    except ImportError:
        raise ConfigError(
            "An LLM is configured but Inspect AI, which talks to it, is not installed.",
            hint=f"pip install 'lmdiff[llm]', or unset {ENV_MODEL} to run offline",
        ) from None
    names = {registry_unqualified_name(info) for info in registry_find(lambda info: info.type == "modelapi")}
    return sorted(names | {"local"})


def check_llm_config() -> LlmConfig:
    """The LLM configuration from the environment, checked before any model is loaded.

    An unset ``LMDIFF_LLM`` means offline and passes. A configured model must be
    ``provider/name`` with a provider Inspect AI knows (or ``local`` with a shipped model or
    a directory), so that a typo fails at once rather than after minutes of computing.

    Returns:
        The validated config.

    Raises:
        ConfigError: the model string is malformed or names an unknown provider.
    """
    from pydantic import ValidationError


    try:
        cfg = LlmConfig()
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(
            f"The LLM configured in {ENV_MODEL} is invalid: {first['msg'].removeprefix('Value error, ')}.",
            hint=f"set {ENV_MODEL}=provider/name (e.g. openai/gpt-4.1-mini), or unset it to run offline",
        ) from None
    if cfg.model is None:
        return cfg
    provider = cfg.model.partition("/")[0]
    providers = known_providers()
    if provider not in providers:
        raise ConfigError(
            f"Unknown LLM provider '{provider}' in {ENV_MODEL}={cfg.model}.",
            hint=f"providers: {', '.join(providers)}; or unset {ENV_MODEL} to run offline",
        )
    name = cfg.model.partition("/")[2]
    if provider == "local" and not Path(name).expanduser().is_dir() and get_shipped(name) is None:
        raise ConfigError(
            f"The local LLM '{name}' in {ENV_MODEL}={cfg.model} is neither a shipped model nor a directory.",
            hint=f"shipped models: {', '.join(SHIPPED)}; or local/PATH_TO_A_TRANSFORMERS_DIR",
        )
    return cfg
