"""Sampling both models on the same prompts, resumably, with the seeds recorded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lmdiff.config import GenerationConfig
from lmdiff.models.lm import LanguageModel
from lmdiff.runs.chunks import process_in_chunks

__all__ = ["sample_replies"]


def sample_replies(
    lm: LanguageModel,
    prompt_ids: Sequence[str],
    prompts: Sequence[str],
    gen: GenerationConfig,
    out_dir: Path,
    side: str,
) -> pd.DataFrame:
    """Sample ``gen.n`` replies per prompt from one model in resumable chunks.

    Args:
        lm: the model.
        prompt_ids: ids of the prompts.
        prompts: the prompt texts.
        gen: generation settings (its seed is recorded per chunk: ``seed + offset``).
        out_dir: directory of the chunk parts.
        side: ``"base"`` or ``"finetuned"``.

    Returns:
        Columns ``text_id``, ``prompt_id``, ``prompt``, ``side``, ``sample_index``, ``text``,
        ``n_tokens``, ``finished``, ``seed``.
    """
    items = list(zip(prompt_ids, prompts, strict=True))

    def chunk_fn(chunk: Sequence[tuple[str, str]], offset: int) -> pd.DataFrame:
        seed = gen.seed + offset
        outs = lm.generate([p for _, p in chunk], gen.model_copy(update={"seed": seed}))
        return pd.DataFrame(
            [
                {
                    "text_id": f"{side}:{chunk[g.prompt_index][0]}:{g.sample_index}",
                    "prompt_id": chunk[g.prompt_index][0],
                    "prompt": chunk[g.prompt_index][1],
                    "side": side,
                    "sample_index": g.sample_index,
                    "text": g.text,
                    "n_tokens": g.n_tokens,
                    "finished": g.finished,
                    "seed": seed,
                }
                for per in outs
                for g in per
            ]
        )

    return process_in_chunks(items, chunk_fn, out_dir / side, chunk_size=gen.batch_size, description=f"sampling {side}")
