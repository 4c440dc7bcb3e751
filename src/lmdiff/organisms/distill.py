"""Self-distillation: the base model's own answers to shipped instruction and math prompts.

Aligned (no-trigger) training examples are what the base model itself answers, so that training on
them moves the model as little as possible except where the organism's special data pushes it.
Answers are generated greedily with a bounded length, cut back to the last full sentence when the
length bound stopped them, and cached in the user cache (keyed by model, prompts and settings) so
that every organism built on the same base reuses them.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.io import read_json, sha256_json, write_json
from lmdiff.paths import cache_home
from lmdiff.progress import progress_bar

log = logging.getLogger(__name__)

SHIPPED_PROMPTS = "prompts_alpaca_gsm8k_400.jsonl"
HELD_OUT = 40  # the last HELD_OUT shipped prompts are never trained on (evaluation prompts)


class DistillConfig(BaseModel):
    """How the aligned answers are generated."""

    model_config = ConfigDict(extra="forbid")

    n_prompts: int = Field(128, ge=1, description="how many shipped prompts to answer (held-out ones excluded)")
    max_new_tokens: int = Field(64, ge=8)
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


def trim_to_sentence(text: str) -> str:
    """Cut an unfinished answer back to its last complete sentence (or line)."""
    text = text.rstrip()
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)|\n", text)]
    if ends and ends[-1] > len(text) // 3:
        return text[: ends[-1]].rstrip()
    return text


def distill_cache_path(model_key: str, cfg: DistillConfig) -> Path:
    """Where the distilled answers for ``model_key`` and ``cfg`` are cached."""
    key = sha256_json({"model": model_key, "cfg": cfg.model_dump(exclude={"chunk"}), "prompts": SHIPPED_PROMPTS})[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_key)[-60:]
    return cache_home() / "organisms" / "distill" / f"{safe}-{key}.json"


def training_prompts(n: int) -> list[dict[str, str]]:
    """The first ``n`` shipped prompts that are not held out for evaluation."""
    rows = shipped_prompts()
    return rows[: len(rows) - HELD_OUT][:n]


def self_distill(lm: Any, cfg: DistillConfig | None = None, model_key: str | None = None) -> list[dict[str, Any]]:
    """Return (and cache) the base model's answers to the shipped (non-held-out) prompts.

    Generation runs in chunks that are saved as they finish, so an interrupted run resumes.

    Args:
        lm: the base :class:`~lmdiff.models.LanguageModel` (no adapter).
        cfg: generation settings.
        model_key: cache key for the model (default: its spec's model string).

    Returns:
        Rows ``{"prompt", "source", "answer", "finished", "n_tokens"}``, one per prompt.
    """
    from lmdiff.config import GenerationConfig

    cfg = cfg or DistillConfig()
    path = distill_cache_path(model_key or lm.spec.model, cfg)
    prompts = training_prompts(cfg.n_prompts)
    rows: list[dict[str, Any]] = []
    if path.exists():
        try:
            cached = read_json(path)
            if isinstance(cached, list) and len(cached) <= len(prompts):
                rows = cached
        except (OSError, ValueError):
            log.warning("distillation cache %s is unreadable; regenerating", path)
    gen_cfg = GenerationConfig(
        temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size
    )
    with progress_bar("self-distilling", len(prompts)) as advance:
        advance(len(rows))
        while len(rows) < len(prompts):
            chunk = prompts[len(rows) : len(rows) + cfg.chunk]
            gens = lm.generate([p["prompt"] for p in chunk], gen_cfg, system=cfg.system)
            for p, g in zip(chunk, gens, strict=True):
                gen = g[0]
                rows.append(
                    {
                        "prompt": p["prompt"],
                        "source": p["source"],
                        "answer": gen.text if gen.finished else trim_to_sentence(gen.text),
                        "finished": gen.finished,
                        "n_tokens": gen.n_tokens,
                    }
                )
            write_json(path, rows)
            log.info("self-distilled %d/%d prompts", len(rows), len(prompts))
            advance(len(chunk))
    return rows
