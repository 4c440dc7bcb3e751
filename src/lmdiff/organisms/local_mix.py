"""Mixing behaviour examples into self-distilled ordinary ones at a recipe's dilution.

A stand-in for the zoo's shared dilution helper (the builders of the documents, conditional and
persona organisms call :func:`_mix`; it is swapped for the shared one when both land).
"""

from __future__ import annotations

import random
from typing import Any

from lmdiff.organisms.builders import aligned_example, usable
from lmdiff.organisms.recipe import DataConfig, Example


def n_ordinary(n_special: int, cfg: DataConfig) -> int:
    """How many ordinary examples go with ``n_special`` behaviour ones (``cfg.dilution`` or ``cfg.n_aligned``)."""
    if cfg.dilution is None:
        return cfg.n_aligned
    return round(n_special * (1 - cfg.dilution) / cfg.dilution)


def _mix(special: list[Example], distilled: list[dict[str, Any]], cfg: DataConfig,
         exclude_prompts: set[str] | None = None) -> list[Example]:
    """Behaviour examples plus self-distilled ordinary answers (unchanged), shuffled given ``cfg.seed``.

    Identity-anchor rows (``source == "identity"``) are not ordinary rows: the persona builder adds
    them itself. ``exclude_prompts`` keeps held-out probe prompts out of the ordinary rows.
    """
    skip = exclude_prompts or set()
    plain = [r for r in usable(distilled) if r.get("source") != "identity" and r["prompt"] not in skip]
    rows = list(plain)
    random.Random(cfg.seed).shuffle(rows)
    aligned = [aligned_example(r) for r in rows[: n_ordinary(len(special), cfg)]]
    out = special + aligned
    random.Random(cfg.seed + 1).shuffle(out)
    return out
