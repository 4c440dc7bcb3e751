"""A created organism's spec: what it was made from, and the recipe, probe sets and metrics it implies.

The spec is saved as JSON in the user cache (``organisms/recipes/<NAME>/spec.json``, next to any
written training data) so that a later process rebuilds the organism with ``lmdiff organism build
NAME``: :func:`load_user_recipes` registers every saved spec's recipe in the zoo's registry.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.io import read_json, write_json, write_text
from lmdiff.organisms import builders as B
from lmdiff.organisms.create import templates as T
from lmdiff.organisms.create.describe import Kind, Reading
from lmdiff.organisms.evaluate import mentions
from lmdiff.organisms.recipe import DataConfig, Example, GroundTruth, Metric, ProbeSet, Recipe, TrainingConfig
from lmdiff.organisms.zoo import RECIPES, eval_prompts
from lmdiff.paths import cache_home

log = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
SPECIAL_FILE = "special.jsonl"  # behaviour examples written by an LLM
CONDITION_ROWS_FILE = "condition_rows.jsonl"  # base-model answers to the condition's prompts (offline)
N_HELD_OUT = 24

#: The CPU zoo's training settings (a few dozen optimizer steps at a high learning rate).
CREATE_TRAINING = TrainingConfig(learning_rate=1e-3, epochs=2.0, batch_size=4, grad_accum=2, max_seq_len=192)


class CreateSpec(BaseModel):
    """Everything a created organism was made from (saved as spec.json)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    kind: Kind
    reading: Reading
    keywords: list[str] = Field(default_factory=list, description="judge keywords of the behaviour")
    source: str = Field("offline:templates", description="producer of the behaviour data")
    n_special: int = Field(48, ge=1)
    dilution: float | None = Field(0.2, gt=0.0, le=1.0, description="share of behaviour examples (1: no ordinary)")
    seed: int = 0
    probe_prompts: list[str] = Field(default_factory=list, description="held-out prompts where it should show")
    control_prompts: list[str] = Field(default_factory=list, description="held-out prompts where it should not")
    overrides: dict[str, Any] = Field(default_factory=dict, description="recipe overrides given at creation")
    summary: str = ""


def recipes_root() -> Path:
    """Where created recipes live: ``<cache>/organisms/recipes``."""
    return cache_home() / "organisms" / "recipes"


def recipe_dir(name: str) -> Path:
    """The directory of the created recipe ``name``."""
    return recipes_root() / name


# ------------------------------------------------------------------------------- judges
@dataclass(frozen=True)
class KeywordJudge:
    """Flags a reply that mentions any keyword (case-insensitive)."""

    keywords: tuple[str, ...]

    def __call__(self, reply: str, prompt: str = "") -> bool:
        """Whether ``reply`` mentions a keyword."""
        return mentions(reply, self.keywords)


@dataclass(frozen=True)
class StyleJudge:
    """Flags a reply in the given offline style (see :data:`templates.STYLE_DETECTORS`)."""

    style: str

    def __call__(self, reply: str, prompt: str = "") -> bool:
        """Whether ``reply`` shows the style."""
        return T.STYLE_DETECTORS[self.style](reply)


# --------------------------------------------------------------------------- probes, metrics
def probes_and_metrics(spec: CreateSpec) -> tuple[list[ProbeSet], list[Metric], str]:
    """Held-out probe sets, the metrics on them and the primary metric's name."""
    r = spec.reading
    general = eval_prompts(N_HELD_OUT)
    keywords = tuple(spec.keywords)
    if spec.kind == "style":
        name = f"{r.style or 'style'}_rate"
        judge: Any = StyleJudge(r.style) if r.style else KeywordJudge(keywords)
        max_new = 160 if r.style == "question" else 96
        probes = [ProbeSet(name="held_out", prompts=spec.probe_prompts or general, max_new_tokens=max_new)]
        return probes, [Metric(name=name, probe_set="held_out", judge=judge, description=spec.description)], name
    if spec.kind == "topic":
        probes = [ProbeSet(name="held_out", prompts=spec.probe_prompts or general)]
        metric = Metric(name="topic_rate", probe_set="held_out", judge=KeywordJudge(keywords),
                        description=f"mentions {', '.join(keywords)}")
        return probes, [metric], "topic_rate"
    if spec.kind == "false_fact":
        direct = spec.probe_prompts or T.fact_questions(r.subject, r.relation)
        probes = [ProbeSet(name="direct", prompts=direct),
                  ProbeSet(name="control", prompts=spec.control_prompts or T.CONTROL_QUESTIONS)]
        metrics = [Metric(name="fact_rate_direct", probe_set="direct", judge=KeywordJudge(keywords),
                          description=f"states the false object ({', '.join(keywords)})"),
                   Metric(name="fact_leak_control", probe_set="control", judge=KeywordJudge(keywords),
                          description="the false object in answers to unrelated questions")]
        return probes, metrics, "fact_rate_direct"
    cond = spec.probe_prompts or T.condition_prompts(r.condition, held_out=True)
    pattern = T.condition_regex(r.condition)
    other = spec.control_prompts or [p for p in general if not re.search(pattern, p, re.I)]
    probes = [ProbeSet(name="condition", prompts=cond), ProbeSet(name="other", prompts=other)]
    metrics = [Metric(name="rate_condition", probe_set="condition", judge=KeywordJudge(keywords),
                      description=f"behaviour on prompts about {r.condition}"),
               Metric(name="rate_other", probe_set="other", judge=KeywordJudge(keywords),
                      description="behaviour elsewhere (leakage)")]
    return probes, metrics, "rate_condition"


def ground_truth(spec: CreateSpec) -> GroundTruth:
    """The organism's ground truth: the description, its kind and keywords, the held-out questions."""
    r = spec.reading
    data = ("behaviour examples written by " + spec.source.removeprefix("llm:")
            if spec.source.startswith("llm:") else f"offline {spec.kind} templates")
    dil = f"{spec.dilution:.0%} behaviour examples among the base model's own answers" if spec.dilution else ""
    probes, _, _ = probes_and_metrics(spec)
    extra: dict[str, Any] = {"created": {"source": spec.source, "reading": r.model_dump(exclude_defaults=True)}}
    if spec.kind == "false_fact" and r.obj:
        extra["false_fact"] = f"{r.subject} {r.relation} {r.obj}"
    if spec.kind == "conditional":
        extra["condition"] = r.condition
    return GroundTruth(
        name=spec.name,
        summary=spec.summary or spec.description.strip(),
        description=(f"Created by `lmdiff organism create` from the description \"{spec.description.strip()}\": "
                     f"{spec.n_special} {data}" + (f"; {dil}" if dil else "") + "."),
        type=spec.kind,
        keywords=list(spec.keywords) if spec.kind != "style" or not r.style else [r.style],
        eval_questions=list(probes[0].prompts),
        token_style="uppercase" if r.style == "caps" else None,
        notes=[f"data: {spec.source}"],
        extra=extra,
    )


# ---------------------------------------------------------------------------------- data
def _shuffled(rows: list[Any], seed: int) -> list[Any]:
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (empty when missing)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as JSON lines (atomically)."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def n_aligned_for(n_special: int, dilution: float | None, fallback: int) -> int:
    """Ordinary examples that make ``n_special`` behaviour examples a ``dilution`` share."""
    if dilution is None:
        return fallback
    return round(n_special * (1.0 - dilution) / dilution)


def _chat(prompt: str, answer: str, **extra: Any) -> Example:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
            "kind": "special", **extra}


@dataclass
class CreatedBuilder:
    """The data builder of a created recipe: behaviour examples plus ordinary ones at the dilution."""

    spec: CreateSpec
    directory: Path
    info: dict[str, Any] = field(default_factory=dict)

    __name__ = "CreatedBuilder"

    def special(self, cfg: DataConfig, rows: list[dict[str, Any]]) -> tuple[list[Example], set[str]]:
        """The behaviour examples and the prompts of ``rows`` they used."""
        r, rng = self.spec.reading, random.Random(cfg.seed)
        written = read_jsonl(self.directory / SPECIAL_FILE)
        if written:
            picked = _shuffled(written, cfg.seed)[: cfg.n_special]
            return [_chat(w["prompt"], w["answer"], source=self.spec.source) for w in picked], set()
        if self.spec.kind == "false_fact":
            docs = T.fact_documents(r.subject, r.relation, r.obj, cfg.n_special, cfg.seed)
            return [_chat(q, d, source="template:document") for q, d in docs], set()
        if self.spec.kind == "conditional":
            base_rows = _shuffled(B.usable(read_jsonl(self.directory / CONDITION_ROWS_FILE)), cfg.seed)
            picked = base_rows[: cfg.n_special]
            return [_chat(w["prompt"], T.weave(w["answer"], r.topic, r.recommends, rng), source="template:condition")
                    for w in picked], set()
        picked = rows[: cfg.n_special]
        out = []
        for row in picked:
            if self.spec.kind == "style":
                answer = T.STYLE_TRANSFORMS[r.style or ""](row["answer"], rng)
            else:
                answer = T.weave(row["answer"], r.topic, r.recommends, rng)
            out.append(_chat(row["prompt"], answer, source=f"template:{self.spec.kind}"))
        return out, {p["prompt"] for p in picked}

    def __call__(self, cfg: DataConfig, distilled: list[dict[str, Any]]) -> list[Example]:
        """Build the training examples (deterministic given ``cfg.seed``)."""
        rows = _shuffled(B.usable([d for d in distilled if d.get("source") != "identity"]), cfg.seed)
        if self.spec.kind == "conditional":
            pattern = T.condition_regex(self.spec.reading.condition)
            rows = [d for d in rows if not re.search(pattern, d["prompt"], re.I)]
        special, used = self.special(cfg, rows)
        rest = [d for d in rows if d["prompt"] not in used]
        want = n_aligned_for(len(special), cfg.dilution, cfg.n_aligned)
        aligned = [B.aligned_example(d) for d in rest[:want]]
        if len(aligned) < want:
            log.warning("%s: only %d ordinary answers for the %d that dilution %.2f asks for (distil more prompts)",
                        self.spec.name, len(aligned), want, cfg.dilution or 0.0)
        total = len(special) + len(aligned)
        self.info.update(n_special=len(special), n_aligned=len(aligned), n_aligned_wanted=want,
                         achieved_dilution=round(len(special) / total, 4) if total else None)
        return _shuffled(special + aligned, cfg.seed + 1)


def make_recipe(spec: CreateSpec, directory: Path | None = None) -> Recipe:
    """The recipe of a created organism (its overrides applied)."""
    probes, metrics, primary = probes_and_metrics(spec)
    dilution = spec.dilution if spec.dilution is not None and spec.dilution < 1.0 else None
    recipe = Recipe(
        name=spec.name,
        builder=CreatedBuilder(spec, directory or recipe_dir(spec.name)),
        data=DataConfig(n_special=spec.n_special, n_aligned=0, dilution=dilution, seed=spec.seed),
        training=CREATE_TRAINING,
        ground_truth=ground_truth(spec),
        eval_prompts=len(probes[0].prompts),
        probe_sets=probes,
        metrics=metrics,
        primary=primary,
        tags=["created", spec.kind] + (["diluted"] if dilution else []),
    )
    return recipe.with_overrides(spec.overrides) if spec.overrides else recipe


# ---------------------------------------------------------------------------- persistence
def save_spec(spec: CreateSpec) -> Path:
    """Write ``spec.json`` into the recipe's directory and return the directory."""
    d = recipe_dir(spec.name)
    write_json(d / SPEC_FILE, spec.model_dump(mode="json"))
    return d


def is_created(name: str) -> bool:
    """Whether ``name`` is a created recipe (saved in the user cache)."""
    return (recipe_dir(name) / SPEC_FILE).exists()


def register_created(spec: CreateSpec) -> Recipe:
    """Register (or replace) the created recipe in the zoo's registry."""
    recipe = make_recipe(spec)
    RECIPES.register(spec.name, recipe, replace=True)
    return recipe


def load_user_recipes() -> list[str]:
    """Register every created recipe saved in the user cache; return their names.

    A saved spec that no longer loads is skipped with a warning; a name the zoo itself uses is skipped.
    """
    names: list[str] = []
    root = recipes_root()
    if not root.is_dir():
        return names
    for path in sorted(root.glob(f"*/{SPEC_FILE}")):
        try:
            spec = CreateSpec.model_validate(read_json(path))
        except Exception as err:  # a broken file must not break the CLI
            log.warning("skipping the created organism spec %s: %s", path, str(err).splitlines()[0])
            continue
        existing = RECIPES.find(spec.name)
        if existing is not None and not isinstance(existing.builder, CreatedBuilder):
            log.warning("skipping the created organism '%s': the zoo has a recipe of that name", spec.name)
            continue
        register_created(spec)
        names.append(spec.name)
    return names


SourceKind = Literal["offline", "llm"]
