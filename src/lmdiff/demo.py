"""`lmdiff demo`: the shipped chat model against a shipped organism, offline, on CPU.

The demo runs every registered method that fits in a couple of minutes on a 2-core CPU,
with settings sized for that (``DEMO_METHODS``). Without a shipped organism it runs the
model against itself: the null control, where nothing should be found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmdiff.config import DiffRunConfig, validate
from lmdiff.diff import run_diff
from lmdiff.methods.registry import available_methods
from lmdiff.models.registry import DEFAULT_CHAT_MODEL, get_shipped
from lmdiff.progress import console
from lmdiff.runs.run import Run

DEMO_ORGANISM = "caps"
# Methods the demo runs when registered, with settings that fit the time budget here.
DEMO_METHODS: dict[str, dict[str, Any]] = {
    "samples": {"n_prompts": 8, "max_new_tokens": 40},
    "kl": {"corpus": "generic", "max_texts": 16, "max_tokens": 64},
    "activation_stats": {"corpus": "generic", "max_texts": 16, "max_tokens": 64},
    "adl": {"n_texts": 64, "n_tokens": 16, "steering_prompts": 2, "steering_samples": 2,
            "steering_search_steps": 2, "max_new_tokens": 24, "patchscope_scales": [1.0, 4.0]},
    "diff_mining": {"max_texts": 32, "positions": 16},
    "behavior": {},  # filled from lmdiff.behavior.DEMO_SETTINGS below
}


def _demo_settings() -> dict[str, dict[str, Any]]:
    settings = dict(DEMO_METHODS)
    try:
        from lmdiff.behavior import DEMO_SETTINGS

        settings["behavior"] = {**DEMO_SETTINGS, "max_new_tokens": 32}
    except ImportError:
        settings.pop("behavior")
    return settings


def demo_finetuned() -> str:
    """The organism the demo diffs against, or the base itself if its adapter is missing."""
    from lmdiff.organisms import find_organism

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
    names = [m for m in settings if m in available_methods()]
    cfg = validate(
        DiffRunConfig,
        {
            "base": {"model": DEFAULT_CHAT_MODEL},
            "finetuned": {"model": finetuned},
            "methods": names,
            "method": {m: settings[m] for m in names},
            "prompts": {"name": "chat"},
        },
    )
    console.print(f"pair: {DEFAULT_CHAT_MODEL} vs {finetuned}; methods: {', '.join(names)}")
    return run_diff(cfg, out, command="demo")
