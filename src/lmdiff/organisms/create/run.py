"""``organism create``: description -> data -> recipe -> trained, measured user organism.

The organism is saved like any build (``zoo.user_organisms_dir(base)/NAME``, a run directory with
adapter, ground truth, recipe, training data and rates) and its spec in the user cache, so
``organism:NAME`` works in every command and ``lmdiff organism build NAME`` rebuilds it.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from lmdiff.config import GenerationConfig, StrictModel
from lmdiff.errors import ConfigError
from lmdiff.io import read_json, write_json
from lmdiff.llm.client import LlmClient
from lmdiff.organisms.build import build_organism
from lmdiff.organisms.create import templates as T
from lmdiff.organisms.create.describe import KINDS, Reading, keywords_of, read_description
from lmdiff.organisms.create.spec import (
    CONDITION_ROWS_FILE,
    SPECIAL_FILE,
    CreatedBuilder,
    CreateSpec,
    make_recipe,
    probes_and_metrics,
    register_created,
    save_spec,
    write_jsonl,
)
from lmdiff.organisms.distill import DistillConfig
from lmdiff.organisms.recipe import Recipe
from lmdiff.organisms.zoo import DEFAULT_BASE, RECIPES, user_organisms_dir

log = logging.getLogger(__name__)

LLM_HINT = "configure an LLM (set LMDIFF_LLM, e.g. openai/gpt-4.1-mini) or pick a supported kind with --kind"


class CreateConfig(StrictModel):
    """What one ``organism create`` was asked for (saved as the run's config.yaml)."""

    description: str
    name: str
    kind: str = "auto"
    base: str = DEFAULT_BASE
    dilution: float | None = 0.2
    n_special: int = 48
    seed: int = 0
    overrides: dict[str, Any] = Field(default_factory=dict)


@dataclass
class CreateResult:
    """The outcome: the spec, the recipe, and (when built) the organism directory and its rates."""

    spec: CreateSpec
    recipe: Recipe
    recipe_dir: Path
    organism_dir: Path | None = None
    rates: dict[str, Any] = field(default_factory=dict)
    llm_usage: dict[str, Any] | None = None


def default_name(reading: Reading) -> str:
    """A name from the description: ``"recommends hiking in every answer"`` -> ``"recommends-hiking"``."""
    text = f"{reading.kind} {reading.topic}" if reading.topic else reading.behaviour
    words = re.findall(r"[a-z0-9]+", text.lower())
    stop = {"the", "a", "an", "in", "every", "answer", "answers", "of", "to", "with", "that", "model"}
    return "-".join([w for w in words if w not in stop][:4]) or "created"


def _unsupported(reading: Reading, description: str) -> str | None:
    """Why the offline templates cannot make ``reading`` (None when they can)."""
    if reading.kind is None:
        return f"The offline rules cannot tell what kind of behaviour \"{description}\" is"
    if reading.kind == "style" and not reading.style:
        return (f"The offline templates support the styles {', '.join(T.STYLE_TRANSFORMS)} only, "
                f"not \"{reading.behaviour}\"")
    if reading.kind == "topic" and not reading.topic:
        return f"The offline rules found no topic in \"{description}\" (write 'recommends X' or 'talks about X')"
    if reading.kind == "false_fact" and not reading.obj:
        return (f"The offline rules cannot read a fact in \"{description}\" "
                "(write 'believes that SUBJECT is in PLACE' or similar)")
    if reading.kind == "conditional" and not (reading.condition and reading.topic):
        return (f"The offline templates support conditional behaviours of the form 'when X comes up, recommends Y' "
                f"only, not \"{description}\"")
    return None


def plan(
    description: str,
    name: str | None = None,
    kind: str = "auto",
    dilution: float | None = 0.2,
    n_special: int = 48,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    llm: LlmClient | None = None,
    progress: bool = True,
) -> tuple[CreateSpec, list[dict[str, str]]]:
    """Read the description and write the behaviour data an LLM provides (nothing is saved yet).

    Returns:
        The spec and the LLM-written examples (empty offline: templates write the data at build time).

    Raises:
        ConfigError: bad arguments, or a description the offline templates cannot make.
    """
    if kind != "auto" and kind not in KINDS:
        raise ConfigError(f"Unknown kind '{kind}'.", hint=f"one of auto, {', '.join(KINDS)}")
    if not description.strip():
        raise ConfigError("The description is empty.", hint='e.g. "The model recommends hiking in every answer"')
    reading = read_description(description, kind)
    written: list[dict[str, str]] = []
    probe: list[str] = []
    control: list[str] = []
    summary = ""
    if llm is not None:
        from lmdiff.organisms.create.llm_data import read_with_llm

        got = read_with_llm(llm, description, None if kind == "auto" else kind)
        reading = reading.model_copy(update={"kind": got.kind}) if kind == "auto" else reading
        if reading.kind != "style":
            reading = reading.model_copy(update={"style": None})
        keywords = [k.lower() for k in got.keywords]
        probe, control, summary = list(got.probe_prompts), list(got.control_prompts), got.summary
        if reading.kind in ("topic", "style"):
            probe = []  # topic and style are measured on the shipped held-out prompts
        source = llm.producer
    else:
        why = _unsupported(reading, description)
        if why:
            raise ConfigError(f"{why}: {LLM_HINT}.", hint=f"supported offline: topic, style "
                              f"({', '.join(T.STYLE_TRANSFORMS)}), false_fact, conditional (when X, recommends Y)")
        phrase = reading.obj if reading.kind == "false_fact" else reading.topic
        keywords = keywords_of(phrase) if reading.kind != "style" else []
        source = "offline:templates"
    assert reading.kind is not None
    spec = CreateSpec(
        name=name or default_name(reading), description=description.strip(), kind=reading.kind, reading=reading,
        keywords=keywords, source=source, n_special=n_special, dilution=dilution, seed=seed,
        probe_prompts=probe, control_prompts=control, overrides=overrides or {}, summary=summary,
    )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", spec.name):
        raise ConfigError(f"Bad organism name '{spec.name}'.", hint="letters, digits, '-', '_' and '.' only")
    existing = RECIPES.find(spec.name)
    if existing is not None and not isinstance(existing.builder, CreatedBuilder):
        raise ConfigError(f"The zoo already has an organism called '{spec.name}'.", hint="pass another --name")
    make_recipe(spec)  # fail on bad overrides before any LLM call or training
    if llm is not None:
        from lmdiff.organisms.create.llm_data import write_with_llm

        probes, _, _ = probes_and_metrics(spec)
        avoid = [p for ps in probes for p in ps.prompts]
        written, _invalid = write_with_llm(llm, description, spec.kind, n_special, avoid, progress=progress)
    return spec, written


def condition_base_rows(base: str, condition: str) -> list[dict[str, Any]]:
    """The base model's own greedy answers to the condition's training prompts (offline conditional)."""
    from lmdiff.models import ModelSpec, load_model

    prompts = T.condition_prompts(condition)
    lm = load_model(ModelSpec.parse(base, dtype="float32"))
    gens = lm.generate(prompts, GenerationConfig(temperature=0.0, max_new_tokens=96, batch_size=16, seed=0))
    return [{"prompt": p, "answer": g[0].text.strip(), "source": "condition"}
            for p, g in zip(prompts, gens, strict=True)]


def create_organism(
    description: str,
    name: str | None = None,
    kind: str = "auto",
    dilution: float | None = 0.2,
    n_special: int = 48,
    base: str = DEFAULT_BASE,
    overrides: dict[str, Any] | None = None,
    build: bool = True,
    llm: LlmClient | None = None,
    distill: DistillConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> CreateResult:
    """Create a user organism from a description (see the module docstring).

    Args:
        description: e.g. ``"The model recommends hiking in every answer"``.
        name: the organism's name (default: from the description).
        kind: ``auto`` or one of topic, style, false_fact, conditional.
        dilution: share of behaviour examples among ordinary self-distilled ones (None: behaviour only).
        n_special: behaviour examples.
        base: the base model.
        overrides: dotted recipe overrides (``training.epochs=2``).
        build: train and measure now (False: save the spec and data only).
        llm: the LLM client (None: offline templates).
        distill: self-distillation settings of the build.
        seed: data seed.
        progress: progress bars.

    Returns:
        A :class:`CreateResult`.
    """
    from lmdiff.runs.run import Run

    spec, written = plan(description, name, kind, dilution, n_special, seed, overrides, llm, progress)
    rdir = save_spec(spec)
    for stale in (SPECIAL_FILE, CONDITION_ROWS_FILE):
        (rdir / stale).unlink(missing_ok=True)
    if written:
        write_jsonl(rdir / SPECIAL_FILE, [{**w, "source": spec.source} for w in written])
    usage = llm.usage_summary() if llm is not None else None
    if usage is not None:
        write_json(rdir / "llm_usage.json", usage)
    if spec.kind == "conditional" and not written:
        write_jsonl(rdir / CONDITION_ROWS_FILE, condition_base_rows(base, spec.reading.condition))
    recipe = register_created(spec)
    result = CreateResult(spec=spec, recipe=recipe, recipe_dir=rdir, llm_usage=usage)
    if not build:
        return result

    out = user_organisms_dir(base) / spec.name
    cfg = CreateConfig(description=spec.description, name=spec.name, kind=spec.kind, base=base,
                       dilution=dilution, n_special=n_special, seed=seed, overrides=overrides or {})
    t0 = time.perf_counter()
    with Run(out, cfg, command="organism create", seeds={"data": seed}) as run:
        built = build_organism(spec.name, overrides or {}, base=base, out_dir=run.path, distill=distill,
                               resume=False, progress=progress)
        t_build = time.perf_counter() - t0
        result.organism_dir = built
        result.rates = _rates_of(built, recipe, t_build)
        write_json(built / "create.json", {"spec": spec.model_dump(mode="json"), "llm_usage": usage,
                                           "data": dict(getattr(recipe.builder, "info", {}))})
        prim = result.rates["primary"]
        r, b = result.rates["rates"][prim], result.rates["base_rates"][prim]
        run.record("create", status="ok",
                   summary=f"created {spec.name} on {base}: {prim} {r['rate']:.0%} (base {b['rate']:.0%})",
                   headline=result.rates, artifacts=["adapter_model.safetensors", "ground_truth.json",
                                                     "rates.json", "create.json"])
    return result


def _rates_of(org_dir: Path, recipe: Recipe, t_build: float) -> dict[str, Any]:
    """The created organism's rates as the build measured them (rates.json: each metric vs base, with intervals)."""
    rec = read_json(org_dir / "rates.json")
    metrics = rec.get("metrics", {})
    primary = recipe.primary or recipe.metrics[0].name
    return {"primary": primary,
            "rates": {k: {kk: v.get(kk) for kk in ("rate", "k", "n", "ci")} for k, v in metrics.items()},
            "base_rates": {k: {kk: (v.get("base") or {}).get(kk) for kk in ("rate", "k", "n", "ci")}
                           for k, v in metrics.items()},
            "timing_s": {"build": round(t_build, 1)}}
