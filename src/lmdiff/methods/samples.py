"""``samples``: both models answer the same prompts; each reply is scored by both models.

For every reply y to prompt x the method records log p_base(y|x) and log p_ft(y|x) (each
model with its own chat template and tokenizer, so it works across tokenizers). The headline
is the mean log-likelihood ratio in nats per 100 characters of the finetuned model's replies
and of the base model's replies; the report shows the replies where the models disagree most.
Whole prompts are the unit of the bootstrap intervals.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from pydantic import Field

from lmdiff.config import GenerationConfig
from lmdiff.io import write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.pair_sampling import sample_both_sides
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run
from lmdiff.stats import cluster_bootstrap_ci


class SamplesConfig(MethodConfig):
    """Settings of the samples method."""

    n_prompts: int = Field(24, ge=1, description="prompts drawn from the run's prompt set")
    n_per_prompt: int = Field(1, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    chunk_size: int = Field(32, ge=1, description="prompts per resumable chunk, decoded together")


@register_method
class SamplesMethod(DiffMethod[SamplesConfig]):
    """Side-by-side samples with cross-model log-likelihoods."""

    name = "samples"
    title = "Samples: both models answer the same prompts"
    description = "side-by-side generations; each reply scored by both models (works across tokenizers)"
    Config = SamplesConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {"n_prompts": 8, "max_new_tokens": 40}
    needs_scores = True

    def run(self, ctx: MethodContext[SamplesConfig]) -> MethodResult:
        """Sample both sides, then score every reply under both models."""
        cfg = ctx.config
        prompts = ctx.prompts.subset(cfg.n_prompts, ctx.run_config.seed)
        gen = GenerationConfig(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            n=cfg.n_per_prompt,
            seed=ctx.run_config.seed,
            batch_size=cfg.chunk_size,  # decoding gains from large batches (benchmarks/bench_generation.py)
        )
        texts = prompts.texts
        replies, replies_key = sample_both_sides(
            ctx, texts, gen, {"prompts": prompts.content_hash}, whole_config=True,
            finish=lambda df: df[["prompt_index", "sample_index", "text", "n_tokens", "finished", "side"]])
        score_step = ctx.step("score", {"replies": replies_key})
        if score_step.done:
            scored = pd.read_parquet(score_step.dir / "scored.parquet")
        else:
            d = score_step.prepare()
            scored = replies.copy()
            for side, lm in ctx.pair.text_sides():
                contexts = [lm.chat_text(texts[i]) for i in scored["prompt_index"]]
                lps = lm.score(
                    contexts,
                    list(scored["text"]),
                    batch_size=ctx.run_config.compute.batch_size,
                    progress=f"scoring replies under {side}",
                )
                scored[f"logp_{side}"] = [float(x.sum()) for x in lps]

            write_parquet(d / "scored.parquet", scored)
            score_step.finish({"n": len(scored)})
        scored["prompt"] = [texts[i] for i in scored["prompt_index"]]
        scored["chars"] = scored["text"].str.len().clip(lower=1)
        scored["llr_per_100c"] = 100 * (scored["logp_finetuned"] - scored["logp_base"]) / scored["chars"]
        out_path = ctx.artifact_dir / "samples.parquet"

        write_parquet(out_path, scored)
        headline: dict[str, Any] = {"n_prompts": len(texts), "n_replies": len(scored)}
        for side in ("finetuned", "base"):
            sub = scored[scored["side"] == side]
            vals = sub["llr_per_100c"].to_numpy()
            ci = cluster_bootstrap_ci(vals, sub["prompt_index"].to_numpy(), seed=ctx.run_config.seed)
            lo, hi = float(ci.low), float(ci.high)
            headline[f"llr_{side}_replies"] = float(vals.mean())
            headline[f"llr_{side}_replies_ci95"] = [lo, hi]
            headline[f"mean_chars_{side}"] = float(sub["chars"].mean())
        summary = (
            f"Finetuned replies are {headline['llr_finetuned_replies']:+.2f} nats/100 chars more likely under the "
            f"finetuned model than under the base; base replies {headline['llr_base_replies']:+.2f}."
        )
        return MethodResult(
            headline=headline,
            summary=summary,
            corpus=prompts.name,
            artifacts=[str(out_path.relative_to(ctx.run.path))],
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Headline figures, a histogram, and the most different pairs side by side."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = result.headline
        section.text(result.summary)
        section.figures(
            {
                "prompts": h["n_prompts"],
                "LLR of finetuned replies (nats/100c)": h["llr_finetuned_replies"],
                "LLR of base replies (nats/100c)": h["llr_base_replies"],
                "mean chars (ft)": h["mean_chars_finetuned"],
                "mean chars (base)": h["mean_chars_base"],
            }
        )
        lo, hi = h["llr_finetuned_replies_ci95"]
        section.text(
            f"95% CI (prompt-clustered bootstrap) of the finetuned-replies LLR: [{lo:.2f}, {hi:.2f}]. "
            "A self-pair gives 0 exactly; positive values mean the finetuned model prefers these texts."
        )
        df = pd.read_parquet(run.path / result.artifacts[0])
        fig, ax = plt.subplots(figsize=(6, 2.6))
        for side, colour in (("base", "#888"), ("finetuned", "#2b4cc0")):
            ax.hist(
                df[df.side == side]["llr_per_100c"], bins=20, alpha=0.6, label=f"{side} replies", color=colour
            )
        ax.set_xlabel("log p_ft(y|x) - log p_base(y|x), nats per 100 chars")
        ax.legend()
        section.figure(fig, "Log-likelihood ratio of each reply under the two models")
        first = df[df.sample_index == 0]
        wide = first.pivot_table(index="prompt_index", columns="side", values="text", aggfunc="first")
        score = first[first.side == "finetuned"].set_index("prompt_index")["llr_per_100c"]
        wide = wide.join(score).sort_values("llr_per_100c", ascending=False)
        prompts = first.drop_duplicates("prompt_index").set_index("prompt_index")["prompt"]
        rows = [
            {"prompt": f"{prompts[i]}  (LLR {r.llr_per_100c:+.1f})", "base": r.base, "finetuned": r.finetuned}
            for i, r in wide.iterrows()
            if isinstance(r.get("base"), str) and isinstance(r.get("finetuned"), str)
        ]
        section.heading("Replies the finetuned model prefers most over the base")
        section.side_by_side(rows, "base", "finetuned", max_rows=6)
