"""The zoo: where organisms live, resolving ``organism:NAME``, and listing them.

``organism:NAME`` resolves to the base model plus the organism's adapter, with its ground truth
attached. Adapters for the shipped SmolLM2-135M-Instruct are committed in ``lmdiff/organisms/zoo``;
``organism build`` (:mod:`lmdiff.organisms.build`) reproduces them, and adapters built by a user (on any
base) live in the user cache under ``organisms/<base>/<NAME>``; ``organism:NAME@BASE`` picks one built on
``BASE``. The recipes are registered in :data:`RECIPES` by :mod:`lmdiff.organisms.recipes`.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import lmdiff.organisms.recipes  # noqa: F401  (registers the zoo's recipes)
from lmdiff.errors import ModelNotFoundError
from lmdiff.io import read_json
from lmdiff.organisms.distill import HELD_OUT
from lmdiff.organisms.measure import held_out_prompts
from lmdiff.organisms.registry import RECIPES, get_recipe, recipe_names, register_recipe
from lmdiff.paths import cache_home

__all__ = ["DEFAULT_BASE", "HELD_OUT", "RECIPES", "eval_prompts", "find_organism", "get_recipe", "load_record",
           "recipe_names", "register_recipe", "resolve_organism", "safe_name", "user_organisms_dir", "zoo_dir",
           "zoo_rows"]

DEFAULT_BASE = "smollm2-135m-instruct"


def eval_prompts(n: int = 16) -> list[str]:
    """Held-out shipped prompts (never trained on); see :func:`lmdiff.organisms.measure.held_out_prompts`."""
    return held_out_prompts(n)


# ---------------------------------------------------------------------------- locations
def zoo_dir() -> Path:
    """Directory of the committed, prebuilt zoo (adapters for the shipped base model)."""
    return Path(str(resources.files("lmdiff.organisms") / "zoo"))


def safe_name(name: str) -> str:
    """``name`` made safe as one path component."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[-80:] or "model"


def user_organisms_dir(base: str = DEFAULT_BASE) -> Path:
    """Where organisms built by the user on ``base`` live."""
    return cache_home() / "organisms" / safe_name(base)


def find_organism(name: str, base: str | None = None) -> Path | None:
    """The directory of organism ``name`` on ``base`` (user builds first, then the prebuilt zoo)."""
    bases = [base] if base else [DEFAULT_BASE]
    for b in bases:
        user = user_organisms_dir(b) / name
        if (user / "adapter_config.json").exists():
            return user
    if base in (None, DEFAULT_BASE):
        prebuilt = zoo_dir() / name
        if (prebuilt / "adapter_config.json").exists():
            return prebuilt
    return None


def load_record(org_dir: Path) -> dict[str, Any]:
    """The ground truth (as a dict) saved with an organism."""
    path = org_dir / "ground_truth.json"
    if path.exists():
        return dict(read_json(path))
    name = org_dir.name
    return get_recipe(name).ground_truth.to_dict() if name in RECIPES else {"name": name}


def resolve_organism(name: str, spec: Any) -> Any:
    """Resolver for ``organism:NAME[@BASE]``: the base spec with the adapter and ground truth.

    Args:
        name: ``NAME`` or ``NAME@BASE``.
        spec: the :class:`~lmdiff.models.ModelSpec` being resolved (its dtype/device are kept).

    Returns:
        A resolved ModelSpec.

    Raises:
        ModelNotFoundError: no such organism is built for that base.
    """
    org, _, base = name.partition("@")
    org_dir = find_organism(org, base or None)
    if org_dir is None:
        available = sorted(
            {p.name for p in zoo_dir().iterdir() if (p / "adapter_config.json").exists()}
            if zoo_dir().is_dir()
            else set()
        )
        raise ModelNotFoundError(
            f"Unknown organism '{name}'" + (f" on base '{base}'" if base else "") + ".",
            hint=f"the zoo: {', '.join(available) or '(none built)'}; recipes: {', '.join(RECIPES)}; "
            f"build one with `lmdiff organism build NAME" + (f" --base {base}" if base else "") + "`",
        )
    gt = load_record(org_dir)
    base_model = base or _adapter_base(org_dir) or DEFAULT_BASE
    return spec.model_copy(
        update={
            "model": base_model,
            "adapter": str(org_dir),
            "ground_truth": gt,
            "label": spec.label or f"organism:{org}",
        }
    ).resolved()


def _adapter_base(org_dir: Path) -> str | None:
    try:
        return str(json.loads((org_dir / "adapter_config.json").read_text())["base_model_name_or_path"]) or None
    except (OSError, ValueError, KeyError):
        return None


# ------------------------------------------------------------------------------- listing
RATES_FORMAT = 2  # the rates.json format this listing reads in full (older ones: "old format, rebuild")


def _old_row(r: dict[str, Any], null_rates: dict[str, Any]) -> dict[str, Any]:
    primary = r.get("primary")
    rates, base = r.get("rates", {}), r.get("base_rates", {})
    return {
        "record": "old format, rebuild",
        "primary": primary,
        "rate": rates.get(primary) if primary else None,
        "base_rate": base.get(primary) if primary else None,
        "null_rate": null_rates.get(primary) if primary else None,
        "base_ppl": r.get("coherence", {}).get("base_ppl"),
        "base_ppl_of_base": r.get("base_coherence", {}).get("base_ppl"),
        "collapse_ok": r.get("collapse_check", {}).get("ok"),
        "timing_s": r.get("timing_s"),
    }


def _row(r: dict[str, Any], name: str) -> dict[str, Any]:
    primary = r.get("primary")
    metrics = r.get("metrics", {})
    m = metrics.get(primary) or {}
    base, null = m.get("base") or {}, m.get("null") or {}
    gen, gen_base = r.get("general", {}).get("organism", {}), r.get("general", {}).get("base", {})
    return {
        "record": "ok",
        "primary": primary,
        "rate": m.get("rate"), "ci": m.get("ci"), "n": m.get("n"),
        "base_rate": base.get("rate"), "base_ci": base.get("ci"),
        "null_rate": null.get("rate"), "null_ci": null.get("ci"),
        "base_ppl": r["coherence"]["base_ppl"],
        "base_ppl_of_base": r["base_coherence"]["base_ppl"],
        "base_ppl_ratio": r.get("base_ppl_ratio"),
        "mean_tokens": gen.get("mean_tokens"), "base_mean_tokens": gen_base.get("mean_tokens"),
        "finished_share": gen.get("finished_share"), "base_finished_share": gen_base.get("finished_share"),
        "collapse_ok": r["collapse_check"]["ok"],
        "collapse_warnings": r["collapse_check"]["warnings"],
        "adapter_sha256": r.get("adapter_sha256"),
        "timing_s": r.get("timing_s"),
        "training": r.get("training"),
        "metrics": metrics,
    }


def zoo_rows(base: str = DEFAULT_BASE) -> list[dict[str, Any]]:
    """One row per recipe: built or not, primary rate [CI] vs base and null, coherence, length, size.

    Records written before the current rates.json format are read for what they hold and marked
    ``"record": "old format, rebuild"``.
    """
    null_dir = find_organism("null", base)
    null_old: dict[str, Any] = {}
    if null_dir and (null_dir / "rates.json").exists():
        null_rec = read_json(null_dir / "rates.json")
        if null_rec.get("format") != RATES_FORMAT:
            null_old = dict(null_rec.get("rates", {}))
    rows = []
    for name in recipe_names():
        recipe = RECIPES[name]
        d = find_organism(name, base)
        row: dict[str, Any] = {
            "name": name,
            "type": recipe.ground_truth.type,
            "tags": list(recipe.tags),
            "summary": recipe.ground_truth.summary,
            "built": d is not None,
            "path": str(d) if d else None,
        }
        if d and (d / "rates.json").exists():
            r = read_json(d / "rates.json")
            try:
                row.update(_row(r, name) if r.get("format") == RATES_FORMAT else _old_row(r, null_old))
            except (KeyError, TypeError, ZeroDivisionError):
                row["record"] = "unreadable, rebuild"
        if d:
            row["adapter_mb"] = round((d / "adapter_model.safetensors").stat().st_size / 1e6, 2)
        rows.append(row)
    return rows
