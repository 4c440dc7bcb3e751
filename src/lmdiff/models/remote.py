"""Remote endpoints as models under study: the spec syntax and how a spec names its endpoint.

Two prefixes of :data:`lmdiff.models.spec.MODEL_PREFIXES` name a model that runs elsewhere:

* ``openai-compatible:URL#MODEL``: any OpenAI-compatible server (vLLM, ``transformers serve``,
  llama.cpp, a hosted API), e.g. ``openai-compatible:http://127.0.0.1:8000/v1#smollm2``. The key, if
  the server wants one, is read from the environment variable named by the spec's ``api_key_env``
  (default :data:`DEFAULT_KEY_ENV`); it is never part of the spec, the URL or any record.
* ``inspect:PROVIDER/MODEL``: an Inspect AI provider string, e.g. ``inspect:openai/gpt-4o-mini``;
  the provider reads its own key (``OPENAI_API_KEY``, ...) unless ``api_key_env`` names another variable.

Such a model is text in, text out: the black-box methods run on it, the white-box ones are skipped.
The object that talks to the endpoint lives in the LLM layer (:class:`lmdiff.llm.endpoint.RemoteModel`),
which this module opens by name (models sit below the LLM layer).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from lmdiff.errors import ConfigError
from lmdiff.models.spec import REMOTE_PREFIXES, register_prefix

if TYPE_CHECKING:
    from lmdiff.models.spec import ModelSpec
    from lmdiff.models.text import TextModel

__all__ = ["DEFAULT_KEY_ENV", "Endpoint", "endpoint_of", "open_remote"]

EndpointKind = Literal["openai-compatible", "inspect"]

#: The environment variable an ``openai-compatible:`` endpoint's key is read from unless ``api_key_env`` names
#: another. Not ``OPENAI_API_KEY``: a key for one service is not sent to an arbitrary URL by default.
DEFAULT_KEY_ENV = "LMDIFF_ENDPOINT_API_KEY"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REMOTE_IMPL = "lmdiff.llm.endpoint"


@dataclass(frozen=True)
class Endpoint:
    """Where a remote model is served and how to authenticate (by the name of a variable, never a key)."""

    kind: EndpointKind
    model: str
    url: str | None = None
    api_key_env: str | None = None

    @property
    def key_env(self) -> str | None:
        """The variable the key is read from (``openai-compatible``: :data:`DEFAULT_KEY_ENV` unless named)."""
        if self.api_key_env:
            return self.api_key_env
        return DEFAULT_KEY_ENV if self.kind == "openai-compatible" else None

    def describe(self) -> dict[str, Any]:
        """A JSON-able record (no secret: the URL carries no user info or query, the key only its variable's name)."""
        return {"kind": self.kind, "url": self.url, "model": self.model, "api_key_env": self.key_env}


def _check_key_env(name: str | None) -> None:
    if name is not None and not _ENV_NAME.fullmatch(name):
        raise ConfigError(
            f"api_key_env={name!r} is not the name of an environment variable.",
            hint="api_key_env names the variable that holds the key (e.g. MY_ENDPOINT_KEY), never the key itself",
        )


def _check_remote_spec(spec: ModelSpec) -> None:
    if spec.adapter or spec.quantization != "none":
        raise ConfigError(
            f"The remote model '{spec.model}' cannot take a LoRA adapter or a quantization.",
            hint="serve the adapter or the quantized model on the endpoint instead",
        )
    _check_key_env(spec.api_key_env)


def parse_openai_compatible(name: str) -> tuple[str, str]:
    """Split ``URL#MODEL`` into a normalised base URL (no trailing slash) and the served model's name.

    Raises:
        ConfigError: no ``#MODEL``, not an http(s) URL, or a URL with user info or a query (keys hide there).
    """
    url, sep, model = name.rpartition("#")
    if not sep or not url or not model.strip():
        raise ConfigError(
            f"'openai-compatible:{name}' names no model.",
            hint="write openai-compatible:URL#MODEL, e.g. openai-compatible:http://127.0.0.1:8000/v1#smollm2",
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"'{url}' is not an http(s) URL.",
            hint="write openai-compatible:URL#MODEL, e.g. openai-compatible:http://127.0.0.1:8000/v1#smollm2",
        )
    if parts.username or parts.password or parts.query:
        raise ConfigError(
            "The endpoint URL carries user info or a query string, where keys do not belong.",
            hint=f"put the key in an environment variable ({DEFAULT_KEY_ENV}, or name one with api_key_env=NAME)",
        )
    return url.rstrip("/"), model.strip()


def _resolve_openai_compatible(name: str, spec: ModelSpec) -> ModelSpec:
    """Resolver of ``openai-compatible:URL#MODEL``: the canonical spec string, checked."""
    url, model = parse_openai_compatible(name)
    _check_remote_spec(spec)
    return spec.model_copy(update={"model": f"openai-compatible:{url}#{model}"})


def _resolve_inspect(name: str, spec: ModelSpec) -> ModelSpec:
    """Resolver of ``inspect:PROVIDER/MODEL`` (an Inspect AI model string)."""
    provider, _, model = name.partition("/")
    if not provider or not model:
        raise ConfigError(
            f"'inspect:{name}' is not an Inspect AI model string.",
            hint="write inspect:PROVIDER/MODEL, e.g. inspect:openai/gpt-4o-mini",
        )
    _check_remote_spec(spec)
    return spec


def endpoint_of(spec: ModelSpec) -> Endpoint:
    """The endpoint a remote spec names.

    Raises:
        ConfigError: the spec is not a remote one, or is malformed.
    """
    prefix, _, name = spec.model.partition(":")
    if prefix == "openai-compatible":
        url, model = parse_openai_compatible(name)
        return Endpoint("openai-compatible", model, url, spec.api_key_env)
    if prefix == "inspect":
        return Endpoint("inspect", name, None, spec.api_key_env)
    raise ConfigError(f"'{spec.model}' is not a remote model.", hint=f"remote prefixes: {', '.join(REMOTE_PREFIXES)}")


def open_remote(spec: ModelSpec) -> TextModel:
    """The object that talks to the endpoint of ``spec`` (:class:`lmdiff.llm.endpoint.RemoteModel`); sends nothing."""
    impl = importlib.import_module(_REMOTE_IMPL)  # the LLM layer sits above models: imported by name
    model: TextModel = impl.RemoteModel(spec)
    return model


register_prefix("openai-compatible", _resolve_openai_compatible)
register_prefix("inspect", _resolve_inspect)
