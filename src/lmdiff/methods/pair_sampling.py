"""Both sides of the pair answer the same prompts, as one resumable step of a method.

Behaviour, follow-up and samples all sample the base and the finetuned model on one prompt list and
keep the replies in ``<step>/replies.parquet``; this is the one place that does it (with the run's
executor, so ``compute.executor=ray`` shards every one of them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from lmdiff.config import GenerationConfig
from lmdiff.io import write_parquet
from lmdiff.methods.base import MethodContext
from lmdiff.models.recipe import side_recipe
from lmdiff.sampling import sample_in_chunks

REPLIES_FILE = "replies.parquet"


def sample_both_sides(
    ctx: MethodContext[Any],
    prompts: Sequence[str],
    gen: GenerationConfig,
    key: dict[str, Any],
    *,
    prompt_ids: Sequence[str] | None = None,
    finetuned_seed_offset: int = 0,
    chunk_size: int | None = None,
    finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    whole_config: bool = False,
    step_name: str = "generate",
) -> tuple[pd.DataFrame, str]:
    """Sample ``gen.n`` replies per prompt from each side (base first) as one resumable step of the method.

    Args:
        ctx: the method's context (pair, run, executor).
        prompts: the prompt texts.
        gen: generation settings; the finetuned side's seed is ``gen.seed + finetuned_seed_offset``.
        key: what else the replies depend on (the prompts' hash or rows); ``gen`` and the offset are added.
        prompt_ids: prompt identifiers for the ``prompt_id`` column (default: positions).
        finetuned_seed_offset: 0 gives both sides the same seeds (identical models give identical replies).
        chunk_size: prompts per resumable chunk (default: ``gen.batch_size``).
        finish: shapes the concatenated replies (a ``side`` column added) before they are saved.
        whole_config: whether the step's key holds the method's whole config (by default only ``key``, so
            changing an analysis setting reuses the replies).
        step_name: the step's name (``artifacts/<method>-<step_name>/``), for a method that samples twice.

    Returns:
        The replies (read back when the step had finished before) and the step's key hash.
    """
    step = ctx.step(
        step_name,
        {**key, "gen": gen.model_dump(), "ft_seed_offset": finetuned_seed_offset},
        whole_config=whole_config,
    )
    if step.done:
        return pd.read_parquet(step.dir / REPLIES_FILE), step.key_hash
    d = step.prepare()
    frames = []
    for side, lm in ctx.pair.text_sides():
        g = gen if side == "base" else gen.model_copy(update={"seed": gen.seed + finetuned_seed_offset})
        df = sample_in_chunks(lm, prompts, g, d / side, prompt_ids=prompt_ids, chunk_size=chunk_size,
                              description=f"sampling {side} ({lm.name})", executor=ctx.executor,
                              build=side_recipe(ctx.pair, side))
        frames.append(df.assign(side=side))
    replies = pd.concat(frames, ignore_index=True)
    if finish is not None:
        replies = finish(replies)
    write_parquet(d / REPLIES_FILE, replies)
    step.finish({"n": len(replies)})
    return replies, step.key_hash
