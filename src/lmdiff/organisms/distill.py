"""Self-distillation: the base model's own answers to shipped instruction and math prompts.

Aligned (no-trigger) training examples are what the base model itself answers, so that training on
them moves the model as little as possible except where the organism's special data pushes it.
Answers are generated greedily with a generous length bound and kept whole: an answer the model
ended on its own is ``finished``; one the bound stopped is kept as generated and marked unfinished, so
that the training example built from it carries no end-of-turn label (training never teaches the
model to stop where the bound cut it). Answers are cached in the user cache (keyed by model, prompts and settings) so
that every organism built on the same base reuses them.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.config import GenerationConfig
from lmdiff.io import read_json, sha256_json, write_json
from lmdiff.paths import cache_home
from lmdiff.sampling import sample_in_chunks

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

log = logging.getLogger(__name__)

SHIPPED_PROMPTS = "prompts_alpaca_gsm8k_400.jsonl"
HELD_OUT = 40  # the last HELD_OUT shipped prompts are never trained on (evaluation prompts)


class DistillConfig(BaseModel):
    """How the aligned answers are generated."""

    model_config = ConfigDict(extra="forbid")

    n_prompts: int = Field(192, ge=1, description="how many shipped prompts to answer (held-out ones excluded)")
    max_new_tokens: int = Field(256, ge=8, description="length bound; answers it stops stay unfinished")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    batch_size: int = Field(32, ge=1)
    chunk: int = Field(32, ge=1, description="prompts per saved chunk (an interrupted run resumes)")
    seed: int = 0
    system: str | None = Field(None, description="system prompt while generating (None: template default)")


def data_path(name: str) -> Path:
    """Path of a file shipped in ``lmdiff/organisms/data``."""
    return Path(str(resources.files("lmdiff.organisms") / "data" / name))


def shipped_prompts(limit: int | None = None) -> list[dict[str, str]]:
    """The shipped Alpaca + GSM8K prompts (``{"prompt", "source"}``), in file order."""
    rows: list[dict[str, str]] = []
    with data_path(SHIPPED_PROMPTS).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows[:limit] if limit else rows


def distill_cache_path(model_key: str, cfg: DistillConfig) -> Path:
    """Where the distilled answers for ``model_key`` and ``cfg`` are cached."""
    cfg_dump = cfg.model_dump(exclude={"chunk"})
    key = sha256_json({"model": model_key, "cfg": cfg_dump, "prompts": SHIPPED_PROMPTS, "v": 2})[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_key)[-60:]
    return cache_home() / "organisms" / "distill" / f"{safe}-{key}.json"


def training_prompts(n: int) -> list[dict[str, str]]:
    """The first ``n`` shipped prompts that are not held out for evaluation."""
    rows = shipped_prompts()
    return rows[: len(rows) - HELD_OUT][:n]


def self_distill(
    lm: LanguageModel, cfg: DistillConfig | None = None, model_key: str | None = None
) -> list[dict[str, Any]]:
    """Return (and cache) the base model's answers to the shipped (non-held-out) prompts.

    Generation runs through the one chunked sampler (:func:`lmdiff.sampling.sample_in_chunks`,
    ``cfg.chunk`` prompts a chunk, chunk seed ``cfg.seed + offset``), its chunks saved next to the
    cache file as they finish, so an interrupted run resumes; they are removed once the cache is written.

    Args:
        lm: the base :class:`~lmdiff.models.LanguageModel` (no adapter).
        cfg: generation settings.
        model_key: cache key for the model (default: its spec's model string).

    Returns:
        Rows ``{"prompt", "source", "answer", "finished", "n_tokens"}``, one per prompt; ``answer`` is
        the generated text, whole (``finished`` False when the length bound stopped it).
    """
    cfg = cfg or DistillConfig()
    path = distill_cache_path(model_key or lm.spec.model, cfg)
    prompts = training_prompts(cfg.n_prompts)
    if path.exists():
        try:
            cached = read_json(path)
            if isinstance(cached, list) and len(cached) == len(prompts):
                return cached
        except (OSError, ValueError):
            log.warning("distillation cache %s is unreadable; regenerating", path)
    gen_cfg = GenerationConfig(
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        system_prompt=cfg.system,
    )
    parts = path.with_name(f"{path.stem}.parts-{cfg.chunk}")  # chunk size is not in the cache key
    gens = sample_in_chunks(
        lm, [p["prompt"] for p in prompts], gen_cfg, parts, chunk_size=cfg.chunk, description="self-distilling"
    )
    rows = [
        {
            "prompt": p["prompt"],
            "source": p["source"],
            "answer": g.text,
            "finished": bool(g.finished),
            "n_tokens": int(g.n_tokens),
        }
        for p, g in zip(prompts, gens.itertuples(), strict=True)
    ]
    write_json(path, rows)
    shutil.rmtree(parts, ignore_errors=True)
    log.info("self-distilled %d prompts into %s", len(rows), path)
    return rows
