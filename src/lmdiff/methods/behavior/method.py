"""``behavior``: black-box behaviour pipeline (sample, split, global test, cluster, describe, validate).

The statistics live in the package's other modules (:mod:`.pipeline` and what it calls); this
module samples, embeds, saves and renders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from lmdiff.config import GenerationConfig
from lmdiff.data.prompts import PromptSet, load_prompts
from lmdiff.embeddings import Embedder
from lmdiff.interp.precision import is_precision_pair, precision_metrics
from lmdiff.io import read_json, write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.behavior.config import DEMO_SETTINGS, BehaviorConfig
from lmdiff.methods.behavior.pipeline import analyze
from lmdiff.methods.behavior.report import render_section
from lmdiff.methods.pair_sampling import sample_both_sides
from lmdiff.methods.registry import register_method
from lmdiff.organisms.zoo import RECIPES
from lmdiff.report.builder import Section
from lmdiff.runs.claims import other_pvalues, record_claims
from lmdiff.runs.run import Run

if TYPE_CHECKING:
    pass

REPLY_COLUMNS = (
    "text_id", "prompt_id", "prompt", "side", "sample_index", "text", "n_tokens", "finished", "seed"
)
"""Columns of the behaviour method's replies table (``replies.parquet``), in order."""

#: Files the behaviour method writes into its artifact directory (agents and reports read them by these names).
REPLIES_FILE = "replies.parquet"
TESTS_FILE = "tests.parquet"
CLUSTERS_FILE = "clusters.parquet"
POINTS_FILE = "points.parquet"
HYPOTHESES_FILE = "hypotheses.json"
SPLIT_FILE = "split.json"


@register_method
class BehaviorMethod(DiffMethod[BehaviorConfig]):
    """Describe and validate behavioural differences from samples of both models."""

    name = "behavior"
    title = "Behaviour: described differences, validated on held-out prompts"
    description = "black-box: sample, embed, cluster, hypothesise, validate on held-out prompts with FDR"
    Config = BehaviorConfig
    stage = 2
    tests_hypotheses = True
    demo_settings: ClassVar[dict[str, Any] | None] = {**DEMO_SETTINGS, "max_new_tokens": 32}
    default_set_settings: ClassVar[dict[str, Any]] = {"n_prompts": 32, "n_per_prompt": 2, "max_new_tokens": 48}

    def run(self, ctx: MethodContext[BehaviorConfig]) -> MethodResult:
        """Sample both sides (resumable), embed (cached), then run the statistics layer."""
        cfg = ctx.config
        seed = ctx.run_config.seed
        prompts = ctx.prompts.subset(cfg.n_prompts, seed)
        ids = [p.id for p in prompts.items]
        gen = GenerationConfig(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            n=cfg.n_per_prompt,
            seed=ctx.run_config.generation.seed,
            batch_size=min(cfg.chunk_size, ctx.run_config.compute.batch_size),
        )
        replies, _ = sample_both_sides(ctx, prompts.texts, gen, {"prompts": prompts.content_hash}, prompt_ids=ids,
                                       finetuned_seed_offset=cfg.finetuned_seed_offset, finish=reply_table)
        no_scores = ctx.pair.scoring_unavailable() if ctx.pair.remote_sides else None
        emb = Embedder(cfg.embedder, cache_dir=ctx.run.path / "cache" / "embeddings")
        x = emb.embed(replies["text"].tolist())
        analysis = analyze(
            replies,
            x,
            cfg,
            ground_truth=ctx.pair.ground_truth,
            seed=seed,
            known_behaviours=_zoo_behaviours(),
            scorer=_scorer(ctx) if no_scores is None else None,
            other_pvalues=other_pvalues(ctx.run.path, self.name,
                                        (ctx.run.results().get("methods_run") or {}).get("methods")),
        )
        record_claims(ctx.run.path, self.name, behaviour_claims(analysis.tests))
        out = ctx.artifact_dir
        rel = {}
        for name, file, table in (
            ("replies", REPLIES_FILE, replies),
            ("tests", TESTS_FILE, analysis.tests),
            ("annotations", "annotations.parquet", analysis.annotations),
            ("clusters", CLUSTERS_FILE, analysis.clusters),
            ("matching", "matching.parquet", analysis.matching),
            ("points", POINTS_FILE, analysis.points),
            ("generative", "generative.parquet", analysis.generative),
        ):
            p = out / file
            write_parquet(p, table if not table.empty else pd.DataFrame({"empty": []}))
            rel[name] = str(p.relative_to(ctx.run.path))
        write_json(out / SPLIT_FILE, analysis.split)
        write_json(out / HYPOTHESES_FILE, [h.to_dict() for h in analysis.hypotheses])
        notes = []
        if no_scores is not None:
            notes.append(f"Generative test (exemplars scored by both models): not run, {no_scores}.")
        elif not analysis.headline.get("n_generative_tested"):
            notes.append(
                "Generative test (texts written to exemplify each hypothesis, scored by both models): needs an LLM "
                "exemplar writer (set LMDIFF_LLM); not run."
            )
        excluded = analysis.records["excluded_features"]
        notes += [f"Style feature '{name}' not tested: {why}." for name, why in excluded.items()]
        if ctx.pair.is_self_pair:
            notes.append("Self-pair (null control): both sides are the same model sampled with different seeds.")
        h = analysis.headline
        precision: dict[str, Any] | None = None
        if cfg.quantization_metrics and is_precision_pair(ctx.pair.base_spec, ctx.pair.finetuned_spec):
            precision = _precision(ctx, cfg, prompts, seed)
            rel["precision"] = precision.pop("rows")
            h.update(
                answer_flip_rate=precision["flip_rate"],
                math_flip_rate=precision["math_flip_rate"],
                mean_token_kl=precision["mean_token_kl"],
            )
            notes.append(
                "Precision pair (one model at two precisions): a near-null control; validated hypotheses should be "
                "few and small."
            )

        def f3(v: Any) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        summary = (
            f"Global classifier AUC {f3(h['global_auc'])} (p={h['global_pvalue']}), "
            f"bag-of-words AUC {f3(h['bow_auc'])}; "
            f"{h['n_validated']} of {h['n_hypotheses_tested']} hypotheses validated on held-out prompts "
            f"({h['fdr'].upper()} q<={h['alpha']})." + (f" Top: {h['top_hypothesis']}." if h["top_hypothesis"] else "")
        )
        if precision is not None:
            summary += (
                f" Precision pair: greedy answers flip on {f3(precision['flip_rate'])} of {precision['n_prompts']} "
                f"prompts, mean token KL {f3(precision['mean_token_kl'])}"
                + (
                    f", final number differs on {f3(precision['math_flip_rate'])} of {precision['n_math']} math "
                    "prompts."
                    if precision["n_math"]
                    else "."
                )
            )
        data: dict[str, Any] = {
            **rel,
            "global_tests": analysis.global_tests,
            "split": str((out / SPLIT_FILE).relative_to(ctx.run.path)),
            "hypotheses": str((out / HYPOTHESES_FILE).relative_to(ctx.run.path)),
            "records": analysis.records,
            "notes": notes,
            "seeds": {"base": gen.seed, "finetuned": gen.seed + cfg.finetuned_seed_offset, "analysis": seed},
        }
        if precision is not None:
            data["precision_metrics"] = precision
        return MethodResult(headline=h, summary=summary, data=data, artifacts=list(rel.values()), corpus=prompts.name)

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Global test and baseline first, ranked validated hypotheses, cluster map, failed ones."""
        section.text(result.summary)
        render_section(result.data, result.headline, section, run.path)


def behaviour_claims(tests: pd.DataFrame) -> list[dict[str, Any]]:
    """The run-level claims (:mod:`lmdiff.runs.claims`) of the tested hypotheses, generative tests included."""
    out: list[dict[str, Any]] = []
    for r in tests.to_dict("records"):
        common = {"direction": r.get("direction_label", "either"), "n": r.get("n_groups"), "unit": "prompt",
                  "family": f"behavior:{r.get('family') or r['id']}",
                  "proposed_by": f"behavior:{r.get('kind', '')}"}
        out.append({**common, "claim_id": r["id"], "statement": r["text"], "pvalue": r["pvalue"],
                    "effect_size_d": r.get("effect_size_d"), "test": r.get("test", "prompt_sign_flip"),
                    "evidence": {"auc": r.get("auc"), "accuracy": r.get("accuracy"),
                                 "examples_finetuned": r.get("examples_finetuned"),
                                 "examples_base": r.get("examples_base")}})
        gen_p = r.get("gen_pvalue")
        if gen_p is not None and not pd.isna(gen_p):
            out.append({**common, "claim_id": f"{r['id']}:generative", "pvalue": gen_p,
                        "statement": f"{r['text']} (generative test: exemplars more likely under the finetuned model)",
                        "effect_size_d": r.get("gen_delta"), "test": "generative", "evidence": {}})
    return out


def reply_table(replies: pd.DataFrame) -> pd.DataFrame:
    """Both sides' replies with the columns :data:`REPLY_COLUMNS`; ``text_id`` is ``<side>:<prompt id>:<sample>``."""
    df = replies.copy()
    df["text_id"] = [f"{s}:{p}:{i}" for s, p, i in zip(df["side"], df["prompt_id"], df["sample_index"], strict=True)]
    return df[list(REPLY_COLUMNS)]


def _scorer(ctx: MethodContext[BehaviorConfig]) -> Any:
    """Mean per-token log-probability of replies under both models, each given its chat-rendered prompt."""

    def score(prompts: Any, replies: Any) -> tuple[Any, Any]:
        out = []
        for lm in (ctx.pair.text_side("base"), ctx.pair.text_side("finetuned")):
            lps = lm.score([lm.chat_text(p) for p in prompts], list(replies))
            out.append(np.array([float(x.mean()) if len(x) else float("nan") for x in lps], dtype=np.float64))
        return out[0], out[1]

    return score


def _zoo_behaviours() -> dict[str, dict[str, Any]]:
    """Ground truths of the organism zoo's planted behaviours (the null control plants none)."""
    return {name: r.ground_truth.to_dict() for name, r in RECIPES.items() if r.ground_truth.type != "null"}


def _precision(
    ctx: MethodContext[BehaviorConfig], cfg: BehaviorConfig, prompts: PromptSet, seed: int
) -> dict[str, Any]:
    """Answer flip rate and token KL of a precision pair (resumable); ``rows`` is the table's path."""
    items = list(prompts.items[: cfg.quantization_n_prompts])
    if cfg.quantization_math_prompts:
        items += list(load_prompts("math", limit=cfg.quantization_math_prompts, seed=seed).items)
    key = {"prompts": [p.id for p in items], "max_new_tokens": cfg.quantization_max_new_tokens}
    step = ctx.step("precision", key)
    if step.done:
        metrics: dict[str, Any] = read_json(step.dir / "metrics.json")
    else:
        d = step.prepare()
        res = precision_metrics(
            lambda: ctx.pair.side("base"),
            lambda: ctx.pair.side("finetuned"),
            items,
            max_new_tokens=cfg.quantization_max_new_tokens,
            batch_size=min(cfg.chunk_size, ctx.run_config.compute.batch_size),
        )
        metrics = res.to_dict()
        write_parquet(d / "rows.parquet", res.rows)
        write_json(d / "metrics.json", metrics)
        step.finish(metrics)
    out = ctx.artifact_dir / "precision.parquet"
    write_parquet(out, pd.read_parquet(step.dir / "rows.parquet"))
    return {**metrics, "rows": str(out.relative_to(ctx.run.path))}
