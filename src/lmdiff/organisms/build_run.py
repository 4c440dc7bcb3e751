"""`lmdiff organism build` in the run shell: the organism directory is also a run directory.

Besides the adapter, ground truth, recipe, training log and rates that
:func:`~lmdiff.organisms.build.build_organism` saves, the directory gets the files every
computing command writes (config.yaml, manifest.json, logs/run.log, results.json), so a
build records its versions, its command and how it ended like a diff does. Resuming an
interrupted build is unchanged: training restarts from its last checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from lmdiff.config import StrictModel
from lmdiff.io import read_json
from lmdiff.organisms.build import build_organism
from lmdiff.organisms.zoo import user_organisms_dir
from lmdiff.runs.run import Run

#: The files of an organism directory that results.json lists as the build's artifacts.
BUILD_ARTIFACTS = ("adapter_model.safetensors", "adapter_config.json", "ground_truth.json", "recipe.json",
                   "training_log.json", "rates.json")


class OrganismBuildConfig(StrictModel):
    """What one organism build was asked for (saved as the run's config.yaml)."""

    organism: str = Field(description="recipe name")
    base: str = Field("smollm2-135m-instruct", description="base model to finetune")
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted recipe overrides")
    resume: bool = Field(True, description="resume an interrupted build from its last checkpoint")


def organism_dir(cfg: OrganismBuildConfig, out: str | Path | None = None) -> Path:
    """Where the build of ``cfg`` is saved: ``out``, or the user cache's ``organisms/<base>/<name>``."""
    return Path(out) if out is not None else user_organisms_dir(cfg.base) / cfg.organism


def run_organism_build(cfg: OrganismBuildConfig, out: str | Path | None = None, progress: bool = True) -> Run:
    """Build the organism of ``cfg`` into its directory, which is also the build's run directory.

    Args:
        cfg: the organism, its base and recipe overrides.
        out: the organism directory (default: :func:`organism_dir`).
        progress: show progress bars.

    Returns:
        The finished run; its results.json records the build under ``build``.
    """
    out_dir = organism_dir(cfg, out)
    seed = cfg.overrides.get("training.seed")
    with Run(out_dir, cfg, command="organism build", seeds={"training": int(seed)} if seed is not None else {}) as run:
        built = build_organism(cfg.organism, dict(cfg.overrides), base=cfg.base, out_dir=run.path,
                               resume=cfg.resume, progress=progress)
        rates = read_json(Path(built) / "rates.json")
        warnings = list(rates.get("collapse_check", {}).get("warnings", []))
        primary = rates.get("primary")
        summary = f"built {cfg.organism} on {cfg.base}"
        if primary and primary in rates.get("rates", {}):
            summary += (f": {primary} {rates['rates'][primary]:.0%} "
                        f"(base {rates.get('base_rates', {}).get(primary, float('nan')):.0%})")
        run.record("build", status="ok", summary=summary,
                   headline={"rates": rates.get("rates", {}), "base_rates": rates.get("base_rates", {}),
                             "primary": primary, "warnings": warnings},
                   artifacts=[a for a in BUILD_ARTIFACTS if (run.path / a).exists()])
    return run
