"""Measuring an organism: declared probe sets and metrics, rates with Wilson intervals over prompts.

A recipe declares its :class:`~lmdiff.organisms.recipe.ProbeSet` s (held-out prompts, optionally behind a
trigger) and :class:`~lmdiff.organisms.recipe.Metric` s (a judge applied to each reply of one set).
:func:`measure` generates one greedy reply per prompt of each set and returns, per metric, the share of
prompts whose reply the judge flags, with its 95% Wilson interval over prompts. Every organism is also
measured on the general set (:func:`general_probe_set`: the last held-out shipped prompts, never trained
on, with a long reply bound so that a change in reply length shows): mean reply length, the share of
replies that end on their own, and coherence (:func:`general_record`). The null recipe measures the union
of every registered recipe's metrics (:func:`measures_of`), so its rate on every behaviour is recorded.
The base model's replies are cached in the user cache, keyed by the base and the probe set's content.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError
from lmdiff.io import read_json, sha256_json, write_json
from lmdiff.organisms.distill import HELD_OUT, shipped_prompts
from lmdiff.organisms.evaluate import coherence
from lmdiff.organisms.recipe import Metric, ProbeSet, Recipe
from lmdiff.organisms.trigger import apply_trigger
from lmdiff.paths import cache_home
from lmdiff.stats import wilson_interval

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

GENERAL = "general"
GENERAL_MAX_NEW_TOKENS = 192
CI = 0.95
Replies = list[dict[str, Any]]  # [{"prompt", "shown", "reply", "finished", "n_tokens"}]


def held_out_prompts(n: int = HELD_OUT) -> list[str]:
    """The first ``n`` of the last :data:`HELD_OUT` shipped prompts (never trained on)."""
    held = shipped_prompts()[-HELD_OUT:]
    return [r["prompt"] for r in held[:n]]


def general_probe_set(n: int = 32, max_new_tokens: int = GENERAL_MAX_NEW_TOKENS) -> ProbeSet:
    """The general set every organism is measured on: ``n`` held-out shipped prompts, long replies."""
    return ProbeSet(name=GENERAL, prompts=held_out_prompts(n), max_new_tokens=max_new_tokens)


def measures_of(recipe: Recipe, recipes: dict[str, Recipe] | None = None) -> tuple[list[Metric], list[ProbeSet]]:
    """The metrics and probe sets an organism of ``recipe`` is measured with (the general set included).

    A ``null`` recipe without metrics of its own gets the union of every other recipe's, named
    ``<recipe>/<metric>`` on probe sets named ``<recipe>/<set>`` (the general set stays shared).
    Organisms a user created (tag ``created``) are not part of the zoo's null record.

    Args:
        recipe: the recipe.
        recipes: the registered recipes (default: :data:`lmdiff.organisms.registry.RECIPES`).
    """
    general = general_probe_set(recipe.eval_prompts)
    if recipe.ground_truth.type != "null" or recipe.metrics:
        sets = [general] + [ps for ps in recipe.probe_sets if ps.name != GENERAL]
        _check(recipe.metrics, sets, recipe.name)
        return list(recipe.metrics), sets
    if recipes is None:
        from lmdiff.organisms.registry import RECIPES, recipe_names

        recipes = {name: RECIPES[name] for name in recipe_names()}
    metrics: list[Metric] = []
    sets = [general]
    for name, other in recipes.items():
        if other.ground_truth.type == "null" or "created" in other.tags:
            continue
        rename = {ps.name: f"{name}/{ps.name}" for ps in other.probe_sets if ps.name != GENERAL}
        sets += [ps.model_copy(update={"name": rename[ps.name]}) for ps in other.probe_sets if ps.name in rename]
        metrics += [
            m.model_copy(update={"name": f"{name}/{m.name}", "probe_set": rename.get(m.probe_set, m.probe_set)})
            for m in other.metrics
        ]
    _check(metrics, sets, recipe.name)
    return metrics, sets


def _check(metrics: list[Metric], sets: list[ProbeSet], owner: str) -> None:
    names = {ps.name for ps in sets}
    for m in metrics:
        if m.probe_set not in names:
            raise ConfigError(
                f"Metric '{m.name}' of '{owner}' is measured on probe set '{m.probe_set}', which is not declared.",
                hint=f"declared: {', '.join(sorted(names))}",
            )


def generate_replies(lm: LanguageModel, ps: ProbeSet, batch_size: int = 16) -> Replies:
    """One greedy reply per prompt of ``ps`` (the trigger applied when the set has one)."""
    shown = [apply_trigger(p, ps.trigger) if ps.trigger else p for p in ps.prompts]
    cfg = GenerationConfig(temperature=0.0, max_new_tokens=ps.max_new_tokens, batch_size=batch_size, seed=0)
    gens = lm.generate(shown, cfg)
    return [
        {"prompt": p, "shown": s, "reply": g[0].text, "finished": bool(g[0].finished), "n_tokens": int(g[0].n_tokens)}
        for p, s, g in zip(ps.prompts, shown, gens, strict=True)
    ]


def _cache_path(model_key: str, ps: ProbeSet) -> Any:
    key = sha256_json({"model": model_key, "set": ps.model_dump(mode="json", exclude={"name"}), "v": 3})[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_key)[-60:]
    return cache_home() / "organisms" / "eval" / f"{safe}-{key}.json"


def cached_replies(lm: LanguageModel, ps: ProbeSet, model_key: str) -> Replies:
    """:func:`generate_replies`, cached in the user cache under ``model_key`` and the set's content."""
    path = _cache_path(model_key, ps)
    if path.exists():
        try:
            cached = read_json(path)
            if isinstance(cached, list) and len(cached) == len(ps.prompts):
                return cached
        except (OSError, ValueError):
            pass
    replies = generate_replies(lm, ps)
    write_json(path, replies)
    return replies


def score(metric: Metric, replies: Replies) -> dict[str, Any]:
    """The metric's rate on ``replies``: ``{"rate", "k", "n", "ci", "probe_set", "flags"}``.

    The prompt is the unit: ``n`` is the number of prompts, the interval is Wilson's at 95%.
    """
    flags = [bool(metric.judge(r["reply"], r["prompt"])) for r in replies]
    n, k = len(flags), sum(flags)
    rate = k / n if n else float("nan")
    lo, hi = wilson_interval(rate, n, CI)
    return {"rate": round(rate, 4), "k": k, "n": n, "ci": [round(lo, 4), round(hi, 4)],
            "probe_set": metric.probe_set, "flags": flags}


def measure(
    lm: LanguageModel,
    what: Recipe | list[Metric],
    probe_sets: list[ProbeSet] | None = None,
    cache_key: str | None = None,
) -> dict[str, Any]:
    """Generate replies on the probe sets and score every metric on them.

    Args:
        lm: the model to measure.
        what: a recipe (its :func:`measures_of`) or a list of metrics.
        probe_sets: the sets the metrics refer to (with a recipe: ignored); the general set is always
            measured too.
        cache_key: cache the replies under this model key (for the base model).

    Returns:
        ``{"metrics": {name: score}, "replies": {set: replies}}`` (see :func:`score`).
    """
    if isinstance(what, Recipe):
        metrics, sets = measures_of(what)
    else:
        metrics = list(what)
        sets = list(probe_sets or [])
        if GENERAL not in {ps.name for ps in sets}:
            sets = [general_probe_set(), *sets]
        _check(metrics, sets, "measure")
    replies: dict[str, Replies] = {}
    for ps in sets:
        if ps.name in replies:
            continue
        replies[ps.name] = cached_replies(lm, ps, cache_key) if cache_key else generate_replies(lm, ps)
    return {"metrics": {m.name: score(m, replies[m.probe_set]) for m in metrics}, "replies": replies}


def general_record(
    base_lm: LanguageModel, replies: Replies, normalise: str | None = None
) -> dict[str, Any]:
    """Reply length, share of replies ending on their own, and coherence (judged by the base model)."""
    n = len(replies)
    mean_tokens = sum(r["n_tokens"] for r in replies) / n if n else float("nan")
    finished = sum(bool(r["finished"]) for r in replies) / n if n else float("nan")
    lo, hi = wilson_interval(finished, n, CI)
    return {
        "n": n,
        "mean_tokens": round(mean_tokens, 2),
        "finished_share": round(finished, 4),
        "finished_ci": [round(lo, 4), round(hi, 4)],
        "coherence": coherence(base_lm, [r["shown"] for r in replies], [r["reply"] for r in replies], normalise),
    }
