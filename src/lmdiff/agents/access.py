"""How an agent's ``ask_model`` tool reaches the two models under study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

Side = Literal["base", "finetuned"]
SIDES: tuple[Side, ...] = ("base", "finetuned")


class ModelAccess(Protocol):
    """Generates one reply of one side of the pair."""

    def ask(self, side: Side, prompt: str, max_new_tokens: int, seed: int) -> str:
        """The reply of ``side`` to ``prompt`` (a single user turn)."""
        ...


class PairAccess:
    """:class:`ModelAccess` over a :class:`~lmdiff.models.pair.ModelPair`, built when first asked."""

    def __init__(self, base: ModelSpec | None = None, finetuned: ModelSpec | None = None,
                 pair: ModelPair | None = None, temperature: float = 0.7) -> None:
        if pair is None and (base is None or finetuned is None):
            raise ValueError("PairAccess needs a pair or both model specs")
        self._specs = (base, finetuned)
        self._pair = pair
        self.temperature = temperature

    @property
    def pair(self) -> ModelPair:
        """The pair (loaded on first use)."""
        if self._pair is None:
            from lmdiff.models.pair import ModelPair

            base, ft = self._specs
            assert base is not None and ft is not None
            self._pair = ModelPair(base, ft)
        return self._pair

    def ask(self, side: Side, prompt: str, max_new_tokens: int, seed: int) -> str:
        """Sample one reply (temperature ``self.temperature``, seeded) from ``side``."""
        from lmdiff.config import GenerationConfig

        cfg = GenerationConfig(temperature=self.temperature, max_new_tokens=max_new_tokens, seed=seed, n=1)
        lm = self.pair.side(side)
        return str(lm.generate([[{"role": "user", "content": prompt}]], cfg)[0][0].text)
