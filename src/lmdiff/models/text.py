"""``TextModel``: what the black-box methods need of a model (text in, text out, maybe scores).

A loaded :class:`~lmdiff.models.lm.LanguageModel` is one; so is a remote endpoint
(:class:`lmdiff.llm.endpoint.RemoteModel`), which has no weights, logits or tokenizer of its own.
Black-box paths (``samples``, ``behavior``, ``probing``, ``followup``, :func:`lmdiff.sampling.sample_in_chunks`)
take a ``TextModel``; white-box ones take a ``LanguageModel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from lmdiff.config import GenerationConfig
    from lmdiff.models.lm import Generation
    from lmdiff.models.spec import ModelSpec

__all__ = ["TextModel"]


class TextModel(Protocol):
    """A model that answers prompts (and, where it can, scores given text)."""

    spec: ModelSpec

    @property
    def name(self) -> str:
        """Display name."""
        ...

    def generate(
        self,
        prompts: Sequence[Any],
        config: GenerationConfig | None = None,
        *,
        chat: bool = True,
        system: str | None = None,
        progress: str | None = None,
    ) -> list[list[Generation]]:
        """``config.n`` completions per prompt (chat-rendered, or plain text with ``chat=False``)."""
        ...

    def chat_text(self, prompt: Any, system: str | None = None, add_generation_prompt: bool = True) -> str:
        """A prompt rendered with the model's chat template (the context of :meth:`score`)."""
        ...

    def score(
        self,
        contexts: Sequence[str],
        continuations: Sequence[str],
        *,
        batch_size: int = 8,
        add_special_tokens: bool = False,
        progress: str | None = None,
    ) -> list[np.ndarray]:
        """Per-token log-probabilities of each continuation given its context."""
        ...
