"""`lmdiff demo`: the shipped chat model against a shipped organism, offline, on CPU.

The demo picks the methods in :data:`DEMO_METHODS`; each method declares the settings that
fit a 2-core CPU next to its config (``DiffMethod.demo_settings``). Without a shipped organism
it runs the model against itself: the null control, where nothing should be found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.methods.registry import get_method
from lmdiff.models.registry import DEFAULT_CHAT_MODEL, get_shipped
from lmdiff.organisms import find_organism
from lmdiff.progress import console
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.run import Run

DEMO_ORGANISM = "caps"
#: The methods the demo runs, in order (each with its own ``demo_settings``).
DEMO_METHODS: tuple[str, ...] = ("samples", "kl", "activation_stats", "adl", "diff_mining", "behavior")


def _demo_settings() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in DEMO_METHODS:
        settings = get_method(name).demo_settings
        if settings is None:
            raise ValueError(f"method '{name}' is in the demo but declares no demo_settings")
        out[name] = dict(settings)
    return out


def demo_finetuned() -> str:
    """The organism the demo diffs against, or the base itself if its adapter is missing."""
    return f"organism:{DEMO_ORGANISM}" if find_organism(DEMO_ORGANISM) is not None else DEFAULT_CHAT_MODEL


def run_demo(out: str | Path) -> Run:
    """Run the demo pair into ``out`` and return the run."""
    shipped = get_shipped(DEFAULT_CHAT_MODEL)
    assert shipped is not None
    console.print(f"[bold]lmdiff demo[/]: preparing {DEFAULT_CHAT_MODEL} (converted once into the cache)")
    shipped.local_dir()
    finetuned = demo_finetuned()
    if finetuned == DEFAULT_CHAT_MODEL:
        console.print(
            f"[yellow]The organism '{DEMO_ORGANISM}' is missing: running the model against itself (null control).[/]"
        )
    settings = _demo_settings()
    names = list(settings)
    cfg = validate(
        DiffRunConfig,
        {
            "base": {"model": DEFAULT_CHAT_MODEL},
            "finetuned": {"model": finetuned},
            "methods": names,
            "method": settings,
            "prompts": {"name": "chat"},
        },
    )
    console.print(f"pair: {DEFAULT_CHAT_MODEL} vs {finetuned}; methods: {', '.join(names)}")
    return run_diff(cfg, out, command="demo")
