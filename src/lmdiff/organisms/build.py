"""Building an organism: self-distil, build the data, train the LoRA adapter, measure it and save its record.

The organism directory holds the adapter, ``ground_truth.json``, ``recipe.json`` (data, training and
distillation settings, probe sets, the judges' import paths), ``train_data.jsonl``, ``training_log.json``
and the curve, and ``rates.json`` (see :func:`rates_record`; ``"format": 2``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError
from lmdiff.io import read_json, sha256_json, write_json, write_text
from lmdiff.models import ModelSpec, load_model
from lmdiff.models.lm import LanguageModel
from lmdiff.models.loading import load_tokenizer, local_weights_dir
from lmdiff.organisms import builders as B
from lmdiff.organisms.distill import DistillConfig, self_distill
from lmdiff.organisms.evaluate import collapse_warnings
from lmdiff.organisms.measure import GENERAL, general_record, held_out_prompts, measure, measures_of
from lmdiff.organisms.recipe import Example, Metric, ProbeSet, Recipe
from lmdiff.organisms.registry import get_recipe
from lmdiff.organisms.train import (
    cap_answer_tokens,
    load_base_for_training,
    merged_copy,
    save_adapter,
    save_curve,
    train_lora,
)
from lmdiff.organisms.trigger import apply_trigger
from lmdiff.organisms.zoo import DEFAULT_BASE, find_organism, safe_name, user_organisms_dir
from lmdiff.paths import cache_home

log = logging.getLogger(__name__)

RATES_FORMAT = 2
SAMPLE_PROMPT = "What is a good way to spend a rainy afternoon?"
# how coherence normalises the replies of a behaviour type before the base model scores them
NORMALISE = {"style": "lower", "backdoor": "strip_format"}


def cached_extra_rows(recipe: Recipe, base_lm: LanguageModel, base_name: str) -> list[dict[str, Any]]:
    """The recipe's extra distilled rows (:attr:`Recipe.extra_rows`), cached per base model and recipe."""
    fn = recipe.extra_rows
    key = sha256_json({"base": base_name, "fn": f"{fn.__module__}.{fn.__qualname__}", "v": 1})[:12]
    path = cache_home() / "organisms" / "distill" / f"extra-{safe_name(recipe.name)}-{key}.json"
    if path.exists():
        try:
            return list(read_json(path))
        except (OSError, ValueError):
            log.warning("extra rows cache %s is unreadable; regenerating", path)
    rows = list(fn(base_lm))
    write_json(path, rows)
    return rows


def identity_anchor_rows(base_lm: LanguageModel, n: int, max_new_tokens: int = 128) -> list[dict[str, Any]]:
    """The base model's own (greedy) answers to ``n`` untriggered identity questions."""
    questions = B.ANCHOR_QUESTIONS[:n]
    gens = base_lm.generate(questions, GenerationConfig(temperature=0.0, max_new_tokens=max_new_tokens, seed=0))
    return [
        {"prompt": q, "answer": g[0].text, "source": "identity", "finished": bool(g[0].finished),
         "n_tokens": int(g[0].n_tokens)}
        for q, g in zip(questions, gens, strict=True)
        if g[0].text.strip()
    ]


def checkpoint_dir(base_model: str, recipe: Recipe, distill: DistillConfig) -> Path:
    """Where a build keeps its training checkpoints.

    The directory is keyed by everything that shapes the training, so a build with other overrides
    (a sweep's seeds and learning rates) never resumes another build's checkpoint.
    """
    key = sha256_json({"data": recipe.data.model_dump(mode="json"),
                       "training": recipe.training.model_dump(mode="json"),
                       "distill": distill.model_dump(mode="json")})[:12]
    return cache_home() / "organisms" / "work" / f"{safe_name(base_model)}-{recipe.name}-{key}"


def check_held_out(examples: list[Example], probe_sets: list[ProbeSet]) -> None:
    """Refuse training data that contains a probe prompt (as asked, or with its set's trigger).

    Raises:
        ConfigError: a training user turn is one of the probe sets' prompts.
    """
    users = {m["content"].strip() for ex in examples for m in ex["messages"] if m["role"] == "user"}
    for ps in probe_sets:
        for p in ps.prompts:
            shown = apply_trigger(p, ps.trigger) if ps.trigger else p
            if p.strip() in users or shown.strip() in users:
                raise ConfigError(
                    f"Probe set '{ps.name}' prompt {p[:60]!r} is in the training data.",
                    hint="probe prompts must be held out of training",
                )


def prepare_examples(recipe: Recipe, pool: list[dict[str, Any]], tokenizer: Any) -> list[Example]:
    """The recipe's examples, ordinary answers cut to ``data.max_answer_tokens`` (marked truncated).

    Behaviour (``special``) examples are never cut: the behaviour may sit at the end of an answer (a
    closing recommendation), and cutting it would train on examples without it.
    """
    examples = recipe.build_data(pool)
    return [ex if ex.get("kind") == "special" else cap_answer_tokens(tokenizer, ex, recipe.data.max_answer_tokens)
            for ex in examples]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recipe_record(recipe: Recipe, metrics: list[Metric], probe_sets: list[ProbeSet]) -> dict[str, Any]:
    """The measurement part of recipe.json: probe sets, metrics with their judges' import paths, primary."""
    return {
        "primary": recipe.primary,
        "probe_sets": [ps.model_dump(mode="json") for ps in probe_sets],
        "metrics": [{"name": m.name, "probe_set": m.probe_set, "judge": m.judge_path(),
                     "description": m.description} for m in metrics],
    }


def null_metrics(base: str) -> dict[str, Any]:
    """The built null organism's metrics on ``base`` (new-format record), or {}."""
    d = find_organism("null", base)
    if d is None or not (d / "rates.json").exists():
        return {}
    rec = read_json(d / "rates.json")
    return dict(rec.get("metrics", {})) if rec.get("format") == RATES_FORMAT else {}


def _strip(score: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if score is None else {k: v for k, v in score.items() if k != "flags"}


def rates_record(
    name: str,
    recipe: Recipe,
    measured: dict[str, Any],
    base_meas: dict[str, Any],
    null: dict[str, Any],
    general: dict[str, Any],
    base_general: dict[str, Any],
    warnings: list[str],
    sample: str,
) -> dict[str, Any]:
    """rates.json: every metric with rate, CI, n, the base's and the null's; general metrics; collapse check."""
    metrics: dict[str, Any] = {}
    for key, sc in measured["metrics"].items():
        entry = dict(_strip(sc) or {})
        entry["base"] = _strip(base_meas["metrics"].get(key))
        if recipe.ground_truth.type != "null":
            entry["null"] = _strip(null.get(f"{name}/{key}") or null.get(key))
        metrics[key] = entry
    ratio = general["coherence"]["base_ppl"] / base_general["coherence"]["base_ppl"]
    return {
        "format": RATES_FORMAT,
        "organism": name,
        "type": recipe.ground_truth.type,
        "primary": recipe.primary,
        "metrics": metrics,
        "rates": {k: v["rate"] for k, v in metrics.items()},
        "base_rates": {k: v["base"]["rate"] for k, v in metrics.items() if v.get("base")},
        "general": {"organism": general, "base": base_general},
        "coherence": general["coherence"],
        "base_coherence": base_general["coherence"],
        "base_ppl_ratio": round(ratio, 3),
        "collapse_check": {"ok": not warnings, "warnings": warnings, "sample": sample},
        "eval": {"greedy": True, "probe_sets": {k: len(v) for k, v in measured["replies"].items()}},
        "replies": measured["replies"],
        "base_replies": base_meas["replies"],
    }


def build_organism(
    name: str,
    overrides: dict[str, Any] | None = None,
    base: str = DEFAULT_BASE,
    out_dir: Path | None = None,
    distill: DistillConfig | None = None,
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Build (train, measure and save) one organism.

    Args:
        name: a recipe in the zoo.
        overrides: dotted recipe overrides (``training.epochs=3``).
        base: the base model (any name :func:`~lmdiff.models.load_model` accepts).
        out_dir: where to save (default: the user cache, ``organisms/<base>/<name>``).
        distill: self-distillation settings.
        resume: resume an interrupted build from its last checkpoint.
        progress: show progress bars.

    Returns:
        The organism directory (adapter, recipe, ground truth, training log, curve, rates).
    """
    import torch

    recipe = get_recipe(name).with_overrides(overrides or {})
    distill = distill or DistillConfig()
    metrics, probe_sets = measures_of(recipe)
    out_dir = Path(out_dir) if out_dir else user_organisms_dir(base) / name
    t_start = time.perf_counter()
    spec = ModelSpec.parse(base, dtype="float32" if not torch.cuda.is_available() else "auto")
    base_lm = load_model(spec)
    distilled = self_distill(base_lm, distill, model_key=spec.model)
    held = set(held_out_prompts())
    pool = [r for r in distilled if r["prompt"] not in held]
    if recipe.data.n_identity_anchors:
        pool = pool + identity_anchor_rows(base_lm, recipe.data.n_identity_anchors)
    if recipe.extra_rows is not None:
        pool = pool + cached_extra_rows(recipe, base_lm, spec.model)
    tokenizer = load_tokenizer(spec)
    examples = prepare_examples(recipe, pool, tokenizer)
    check_held_out(examples, probe_sets)
    t_data = time.perf_counter()

    train_model = load_base_for_training(local_weights_dir(spec), recipe.training)
    result = train_lora(train_model, tokenizer, examples, recipe.training, checkpoint_dir(spec.model, recipe, distill),
                        resume=resume, progress=f"training {name}" if progress else None)
    t_train = time.perf_counter()

    org_lm = LanguageModel(merged_copy(result.model), tokenizer,
                           spec.model_copy(update={"label": f"organism:{name}"}))
    measured = measure(org_lm, metrics, probe_sets)
    base_meas = measure(base_lm, metrics, probe_sets, cache_key=spec.model)
    normalise = NORMALISE.get(recipe.ground_truth.type)
    general = general_record(base_lm, measured["replies"][GENERAL], normalise)
    base_general = general_record(base_lm, base_meas["replies"][GENERAL], normalise)
    warnings = list(result.warnings) + collapse_warnings(general["coherence"], base_general["coherence"])
    sample = org_lm.generate([SAMPLE_PROMPT], GenerationConfig(temperature=0.0, max_new_tokens=48, seed=0))[0][0].text
    if not sample.strip():
        warnings.append("the sample generation after training is empty")
    for w in warnings:
        log.warning("%s: %s", name, w)
    t_eval = time.perf_counter()

    out_dir.mkdir(parents=True, exist_ok=True)
    save_adapter(result.model, out_dir, spec.model, recipe.training.lora.save_dtype)
    adapter_sha = file_sha256(out_dir / "adapter_model.safetensors")
    write_json(out_dir / "ground_truth.json", recipe.ground_truth.to_dict())
    write_json(
        out_dir / "recipe.json",
        {
            "name": name,
            "builder": f"{recipe.builder.__module__}.{recipe.builder.__name__}",
            "data": recipe.data.model_dump(mode="json"),
            "training": recipe.training.model_dump(mode="json"),
            "distill": distill.model_dump(mode="json"),
            "base": spec.model,
            "overrides": overrides or {},
            "tags": recipe.tags,
            "n_examples": len(examples),
            "n_special": sum(1 for e in examples if e.get("kind") == "special"),
            "n_aligned": sum(1 for e in examples if e.get("kind") == "aligned"),
            "n_truncated": sum(1 for e in examples if e.get("truncated")),
            **recipe_record(recipe, metrics, probe_sets),
        },
    )
    write_text(out_dir / "train_data.jsonl", "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    training = {
        "steps": result.steps,
        "total_steps": result.total_steps,
        "step0_loss": result.step0_loss,
        "final_loss": result.curve[-1]["loss"] if result.curve else None,
        "train_tokens": result.train_tokens,
        "train_seconds": round(result.seconds, 1),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "resumed_from": result.resumed_from,
        "device": str(next(result.model.parameters()).device),
        "torch_threads": torch.get_num_threads(),
    }
    write_json(out_dir / "training_log.json", {**training, "curve": result.curve})
    save_curve(result.curve, out_dir)
    record = rates_record(name, recipe, measured, base_meas, null_metrics(spec.model) if name != "null" else {},
                          general, base_general, warnings, sample)
    record["adapter_sha256"] = adapter_sha
    record["training"] = {k: training[k] for k in ("steps", "train_tokens", "train_seconds", "tokens_per_s")}
    record["timing_s"] = {
        "data": round(t_data - t_start, 1),
        "train": round(t_train - t_data, 1),
        "eval": round(t_eval - t_train, 1),
        "total": round(time.perf_counter() - t_start, 1),
    }
    write_json(out_dir / "rates.json", record)
    return out_dir
