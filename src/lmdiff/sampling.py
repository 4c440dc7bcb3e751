"""The one chunked sampler: a model answers prompts in resumable, seeded chunks.

Every caller that samples a model on a list of prompts and wants an interrupted call to resume
(``lmdiff generate``, the ``samples`` and ``behavior`` methods, the organisms' self-distillation) goes through
:func:`sample_in_chunks`, so the chunking, the per-chunk seeds and the table's columns are the
same everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from lmdiff.runs.chunks import map_chunks
from lmdiff.runs.executor import Executor, Worker

if TYPE_CHECKING:
    from lmdiff.config import GenerationConfig
    from lmdiff.models.lm import Generation
    from lmdiff.models.text import TextModel

__all__ = ["SAMPLE_COLUMNS", "sample_in_chunks"]

#: What samples a list of prompts: ``lm.generate`` or a custom sampler.
Sampler = Callable[[list[str], "GenerationConfig"], list[list["Generation"]]]

SAMPLE_COLUMNS = ("prompt_index", "prompt_id", "prompt", "sample_index", "text", "n_tokens", "finished", "seed")
"""The columns of :func:`sample_in_chunks`'s table, in order."""


def sample_in_chunks(
    lm: TextModel,
    prompts: Sequence[str],
    gen: GenerationConfig,
    out_dir: str | Path,
    *,
    prompt_ids: Sequence[str] | None = None,
    chunk_size: int | None = None,
    description: str = "sampling",
    generate: Sampler | None = None,
    executor: Executor | None = None,
    build: Callable[[], TextModel] | None = None,
) -> pd.DataFrame:
    """Sample ``gen.n`` completions per prompt in resumable chunks (of ``gen.batch_size`` prompts by default).

    The chunk starting at prompt ``offset`` is sampled with seed ``gen.seed + offset`` and saved
    as a Parquet part under ``out_dir`` (see :func:`lmdiff.runs.chunks.process_in_chunks`), so an
    interrupted call resumes at its first unfinished chunk and a rerun reproduces every sample.
    The caller clears ``out_dir`` when its inputs change (a run step's ``prepare()`` does that).

    Args:
        lm: the model.
        prompts: the prompt texts.
        gen: generation settings.
        out_dir: directory of the chunk parts.
        prompt_ids: an id per prompt (default: its index as a string).
        chunk_size: prompts per chunk (default ``gen.batch_size``); the model still generates in
            batches of ``gen.batch_size``.
        description: label of the progress bar.
        generate: what samples a chunk (default ``lm.generate``), e.g. an amplified sampler
            (:func:`lmdiff.amplify.amplified_generate` with its other arguments bound); a custom
            sampler always runs in this process.
        executor: where chunks are sampled (default: in process); the parts and the table are the
            same whichever executor samples them.
        build: a picklable recipe that loads ``lm`` in another process
            (:mod:`lmdiff.models.recipe`); without it the chunks are sampled in this process.

    Returns:
        One row per completion, prompts in order and samples in order within a prompt, with the
        columns :data:`SAMPLE_COLUMNS`: ``prompt_index`` (position in ``prompts``), ``prompt_id``,
        ``prompt``, ``sample_index``, ``text``, ``n_tokens``, ``finished`` and ``seed`` (the
        chunk's seed); no rows when there are no prompts.

    Raises:
        ValueError: ``prompt_ids`` is not one id per prompt.
    """
    ids = [str(i) for i in range(len(prompts))] if prompt_ids is None else list(prompt_ids)
    if len(ids) != len(prompts):
        raise ValueError(f"sample_in_chunks got {len(ids)} prompt ids for {len(prompts)} prompts")
    items = list(zip(ids, prompts, strict=True))
    if not items:
        return pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    if generate is not None:
        worker: Worker[Sampler] = Worker(generate)
    else:
        worker = Worker(lm.generate, _GenerateOf(build) if build is not None else None)
    size = chunk_size or gen.batch_size
    return map_chunks(items, functools.partial(sample_chunk, gen=gen), out_dir, size, worker, executor,
                      description=description)


@dataclass(frozen=True)
class _GenerateOf:
    """Loads a model from its recipe and returns its ``generate`` (the state of a sampling actor)."""

    build: Callable[[], TextModel]

    def __call__(self) -> Sampler:
        return self.build().generate


def sample_chunk(sample: Sampler, chunk: Sequence[tuple[str, str]], offset: int, *,
                 gen: GenerationConfig) -> pd.DataFrame:
    """Sample one chunk of (prompt id, prompt) pairs starting at prompt ``offset`` (seed ``gen.seed + offset``).

    The shard function of :func:`sample_in_chunks`: its rows have the columns :data:`SAMPLE_COLUMNS`.
    """
    seed = gen.seed + offset
    outs = sample([p for _, p in chunk], gen.model_copy(update={"seed": seed}))
    rows = [
        {
            "prompt_index": offset + g.prompt_index,
            "prompt_id": chunk[g.prompt_index][0],
            "prompt": chunk[g.prompt_index][1],
            "sample_index": g.sample_index,
            "text": g.text,
            "n_tokens": g.n_tokens,
            "finished": g.finished,
            "seed": seed,
        }
        for per in outs
        for g in per
    ]
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
