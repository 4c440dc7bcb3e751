"""End-of-turn tokens and the positions where the two models decide whether to stop.

A finetune that learnt to end replies earlier (or later) moves a lot of probability onto or off
the end-of-turn token at a few positions; per-token KL there is large and tells nothing about
what the finetune says. :func:`stopping_positions` marks those positions so KL can be split into
a stopping part and a content part.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

END_OF_TURN_MARKERS = frozenset({
    "<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>", "<eos>",
    "<|eom_id|>",
})
"""Special-token spellings that end a turn or a text in common chat templates."""


def end_of_turn_ids(lm: LanguageModel) -> frozenset[int]:
    """Token ids that end a turn or a text.

    They are the tokenizer's eos, the generation config's eos ids, and special tokens spelled like an
    end-of-turn marker (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, ``</s>``...).
    """
    tok = lm.tokenizer
    ids: set[int] = set()
    if tok.eos_token_id is not None:
        ids.add(int(tok.eos_token_id))
    gen_eos = getattr(getattr(lm.core, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif isinstance(gen_eos, list):
        ids.update(int(e) for e in gen_eos)
    for s, i in zip(tok.all_special_tokens, tok.all_special_ids, strict=True):
        if s in END_OF_TURN_MARKERS:
            ids.add(int(i))
    return frozenset(ids)


def stopping_positions(df: pd.DataFrame, eot_ids: Collection[int]) -> np.ndarray:
    """Boolean mask over the rows of a :func:`~lmdiff.interp.logprobs.per_token_kl` frame: where stopping is at stake.

    A position is a stopping position when the token that actually follows it (``next_token``) or
    the most likely next token of either model (``top_ft``, ``top_base``) is an end-of-turn token:
    the place a reply ends, and every place where one model would end it and the other would not.
    """
    ids = np.fromiter(eot_ids, dtype=np.int64)
    cols = [c for c in ("next_token", "top_ft", "top_base") if c in df.columns]
    mask = np.zeros(len(df), dtype=bool)
    for c in cols:
        mask |= np.isin(df[c].to_numpy(dtype=np.int64), ids)
    return mask
