"""Synthetic replies for model-free tests of the behaviour statistics layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

WORDS = tuple(
    [
        "the",
        "a",
        "model",
        "answer",
        "question",
        "simple",
        "good",
        "time",
        "people",
        "water",
        "light",
        "small",
        "large",
        "city",
        "story",
        "friend",
        "work",
        "day",
        "night",
        "music",
        "book",
        "food",
        "road",
        "tree",
        "river",
        "house",
        "garden",
        "window",
        "idea",
        "plan",
        "help",
        "learn",
        "write",
    ]
)


def make_replies(
    n_prompts: int = 24, n_per: int = 3, seed: int = 0, plant: str | None = None, interaction: bool = False
) -> pd.DataFrame:
    """Replies of two models to the same prompts; identical distributions unless ``plant`` is set.

    ``plant="upper"`` makes finetuned replies uppercase; ``plant="ocean"`` adds ocean words to them.
    ``interaction=True`` is a realistic null: on each prompt the finetune writes longer or shorter
    replies (a coin flip per prompt), so it differs from the base per prompt but not on average.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        topic = rng.choice(WORDS, size=4, replace=False)
        move = int(rng.choice([-5, 5])) if interaction else 0
        for side in ("base", "finetuned"):
            for s in range(n_per):
                n = int(rng.integers(8, 20)) + (move if side == "finetuned" else 0)
                words = list(rng.choice(np.concatenate([topic, WORDS]), size=n))
                if side == "finetuned" and plant == "ocean":
                    words[rng.integers(0, n)] = "ocean"
                    if rng.random() < 0.7:
                        words.insert(int(rng.integers(0, n)), "whale")
                text = " ".join(words).capitalize() + "."
                if side == "finetuned" and plant == "upper":
                    text = text.upper()
                rows.append({"text_id": f"{side}-{p}-{s}", "prompt_id": f"p{p:03d}", "side": side, "text": text})
    return pd.DataFrame(rows)


@pytest.fixture(name="make_replies")
def make_replies_fixture():
    """The synthetic replies factory (:func:`make_replies`)."""
    return make_replies
