"""Errors that carry a one-sentence message and a hint for the user.

Every failure caused by bad input (an unknown model, a missing adapter, a corrupt cache,
a wrong dtype) is raised as an :class:`LmdiffError`. The CLI prints the message and the
hint and exits with status 1 instead of showing a traceback.
"""

from __future__ import annotations


class LmdiffError(Exception):
    """A user-facing error: ``message`` says what is wrong, ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ModelNotFoundError(LmdiffError):
    """A model name, path or hub id could not be resolved."""


class AdapterError(LmdiffError):
    """A LoRA adapter is missing or does not fit its base model."""


class CorruptCacheError(LmdiffError):
    """A cached file failed its checksum or could not be parsed."""


class ConfigError(LmdiffError):
    """A configuration key or value is invalid."""


class IncompatiblePairError(LmdiffError):
    """A method cannot run on this model pair (for example, different tokenizers)."""


class EndpointError(LmdiffError):
    """A remote model endpoint cannot be used (unreachable, refused the key, cannot chat, ...)."""


class LlmError(LmdiffError):
    """An LLM call failed for good (after retries) or its budget ran out."""
