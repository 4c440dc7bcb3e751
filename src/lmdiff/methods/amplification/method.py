"""The registered ``amplification`` method: sample per setting, measure coherence and growth, weight statistics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from lmdiff.amplify import amplified_generate, check_shared_tokenizer, lora_scaled
from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError
from lmdiff.interp.amplified_words import growing_words, proposals
from lmdiff.interp.weight_delta import full_delta_stats, lora_delta_stats, top_moved_block
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.amplification.config import AmplificationConfig
from lmdiff.methods.amplification.report import render_section
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.models.lm import Generation, LanguageModel
from lmdiff.organisms.evaluate import coherence, keyword_rate
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run
from lmdiff.sampling import sample_in_chunks

Sampler = Callable[[list[str], GenerationConfig], list[list[Generation]]]


def alpha_label(alpha: float) -> str:
    """The setting name of a logit-difference strength."""
    return f"alpha={alpha:g}"


def scale_label(scale: float) -> str:
    """The setting name of a LoRA scale."""
    return f"lora x{scale:g}"


def _settings(ctx: MethodContext[AmplificationConfig]) -> list[tuple[str, str, float, LanguageModel, Sampler]]:
    """(label, mode, strength, model, sampler) of every setting, base first."""
    cfg, pair = ctx.config, ctx.pair
    base, ft = pair.base, pair.finetuned
    def plain(lm: LanguageModel) -> Sampler:
        return lambda t, g: lm.generate(t, g)

    def amplified(alpha: float) -> Sampler:
        return lambda t, g: amplified_generate(ft, base, t, g, alpha)

    out: list[tuple[str, str, float, LanguageModel, Sampler]] = [("base", "base", 0.0, base, plain(base))]
    for a in cfg.alphas:
        # alpha 0 is ordinary sampling (equal to the amplified sampler at 0, sample for sample; tested), without
        # the base model's forward passes.
        out.append((alpha_label(a), "logit_diff", a, ft, plain(ft) if a == 0 else amplified(a)))
    if pair.shares_weights:
        for s in cfg.lora_scales:
            def scaled(t: list[str], g: GenerationConfig, s: float = s) -> list[list[Generation]]:
                with lora_scaled(ft.model, s, layers=cfg.lora_layers, kinds=cfg.lora_kinds):
                    return ft.generate(t, g)

            out.append((scale_label(s), "lora_scale", s, ft, scaled))
    return out


def weight_stats(ctx: MethodContext[AmplificationConfig]) -> tuple[pd.DataFrame, str]:
    """The per-parameter weight-delta table of the pair, and where it comes from (or why it is empty)."""
    pair, k = ctx.pair, ctx.config.top_singular
    if pair.shares_weights:
        return lora_delta_stats(pair.finetuned.model, top_k=k), "LoRA adapter (merged delta B @ A x scaling)"
    df = full_delta_stats(pair.base.core, pair.finetuned.core, top_k=k)
    if df.empty:
        return df, "no floating-point weights of equal shape in both models (quantized or different architectures)"
    return df, "full weights (W_ft - W_base)"


@register_method
class AmplificationMethod(DiffMethod[AmplificationConfig]):
    """Logit-difference and LoRA amplification: what grows when the finetune's change is exaggerated."""

    name = "amplification"
    title = "Amplification: what grows when the finetune's change is exaggerated"
    description = ("samples at logits_ft + alpha (logits_ft - logits_base) and at scaled LoRA; coherence, growing "
                   "words, keyword rate per alpha; weight-delta statistics (proposals only, nothing validated)")
    Config = AmplificationConfig
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True
    demo_settings: ClassVar[dict[str, Any] | None] = {
        "n_prompts": 6, "n_per_prompt": 1, "max_new_tokens": 32, "alphas": [0.0, 2.0], "lora_scales": [2.0]}

    def run(self, ctx: MethodContext[AmplificationConfig]) -> MethodResult:
        """Sample every setting (resumable), score coherence, tabulate growth, compute weight statistics."""
        cfg, pair = ctx.config, ctx.pair
        if not pair.both_resident():
            raise ConfigError("amplification needs both models in memory at once.", hint="set compute.load=together")
        check_shared_tokenizer(pair.finetuned, pair.base)
        prompts = ctx.prompts.subset(cfg.n_prompts, ctx.run_config.seed)
        texts, ids = prompts.texts, [p.id for p in prompts.items]
        gen = GenerationConfig(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                               n=cfg.n_per_prompt, seed=ctx.run_config.generation.seed,
                               batch_size=min(cfg.chunk_size, ctx.run_config.compute.batch_size))
        settings = _settings(ctx)
        step = ctx.step("generate", {"prompts": prompts.content_hash, "gen": gen.model_dump(),
                                     "settings": [s[0] for s in settings], "lora_layers": cfg.lora_layers,
                                     "lora_kinds": cfg.lora_kinds}, whole_config=False)
        if step.done:
            gens = pd.read_parquet(step.dir / "generations.parquet")
        else:
            d = step.prepare()
            frames = []
            for label, mode, strength, lm, sampler in settings:
                # Every setting uses the same seeds: differences between settings are not sampling noise.
                df = sample_in_chunks(lm, texts, gen, d / label.replace(" ", "_").replace("=", "_"),
                                      prompt_ids=ids, chunk_size=cfg.chunk_size, generate=sampler,
                                      description=f"sampling {label}")
                frames.append(df.assign(setting=label, mode=mode, strength=strength))
            gens = pd.concat(frames, ignore_index=True)
            write_parquet(d / "generations.parquet", gens)
            step.finish({"n": len(gens)})
        score = ctx.step("coherence", {"generations": step.key_hash}, whole_config=False)
        if score.done:
            per_setting = pd.read_parquet(score.dir / "settings.parquet")
        else:
            d = score.prepare()
            per_setting = self._per_setting(ctx, gens, [s[0] for s in settings])
            write_parquet(d / "settings.parquet", per_setting)
            score.finish({"n": len(per_setting)})
        return self._result(ctx, gens, per_setting, settings)

    def _per_setting(self, ctx: MethodContext[AmplificationConfig], gens: pd.DataFrame,
                     labels: list[str]) -> pd.DataFrame:
        """Coherence, reply length and (with a ground truth) keyword rate of every setting."""
        keywords = [str(k) for k in (ctx.pair.ground_truth or {}).get("keywords", []) or []]
        rows = []
        for label in labels:
            sub = gens[gens["setting"] == label]
            coh = coherence(ctx.pair.base, list(sub["prompt"]), list(sub["text"]))
            rows.append({"setting": label, "mode": str(sub["mode"].iloc[0]), "strength": float(sub["strength"].iloc[0]),
                         "n_replies": len(sub), "n_prompts": int(sub["prompt_index"].nunique()),
                         "mean_tokens": float(sub["n_tokens"].mean()), **coh,
                         "keyword_rate": keyword_rate(list(sub["text"]), keywords) if keywords else float("nan")})
        return pd.DataFrame(rows)

    def _result(self, ctx: MethodContext[AmplificationConfig], gens: pd.DataFrame, per_setting: pd.DataFrame,
                settings: list[tuple[str, str, float, LanguageModel, Sampler]]) -> MethodResult:
        cfg, art = ctx.config, ctx.artifact_dir
        ladder = [alpha_label(a) for a in cfg.alphas]
        words = growing_words(gens, ladder, ["base", ladder[0]], min_prompts=cfg.min_prompts, top=cfg.top_words)
        lora = [s[0] for s in settings if s[1] == "lora_scale"]
        lora_words = (growing_words(gens, [ladder[0], *lora], ["base", ladder[0]], min_prompts=cfg.min_prompts,
                                    top=cfg.top_words) if lora else None)
        props = proposals(gens, words, k=10)
        paths = {"generations": art / "generations.parquet", "settings": art / "settings.parquet",
                 "growing_words": art / "growing_words.parquet"}
        write_parquet(paths["generations"], gens)
        write_parquet(paths["settings"], per_setting)
        write_parquet(paths["growing_words"], words)
        if lora_words is not None:
            paths["lora_growing_words"] = art / "lora_growing_words.parquet"
            write_parquet(paths["lora_growing_words"], lora_words)
        write_json(art / "proposals.json", [p.__dict__ | {"statement": p.statement()} for p in props])
        headline: dict[str, Any] = {
            "n_prompts": int(gens["prompt_index"].nunique()), "n_per_prompt": cfg.n_per_prompt,
            "alphas": cfg.alphas, "lora_scales": cfg.lora_scales if lora else [],
            "base_ppl": dict(zip(per_setting["setting"], per_setting["base_ppl"].astype(float), strict=True)),
            "repetition": dict(zip(per_setting["setting"], per_setting["repetition"].astype(float), strict=True)),
            "top_growing_words": words["word"].head(10).tolist(),
            "validated": False,
        }
        if per_setting["keyword_rate"].notna().any():
            headline["keyword_rate"] = dict(zip(per_setting["setting"], per_setting["keyword_rate"].astype(float),
                                                strict=True))
        weights_note = ""
        if cfg.weight_stats:
            wdf, source = weight_stats(ctx)
            paths["weights"] = art / "weight_deltas.parquet"
            write_parquet(paths["weights"], wdf)
            headline["weights_source"] = source
            headline["most_moved_block"] = top_moved_block(wdf) if not wdf.empty else None
            if headline["most_moved_block"] is not None:
                weights_note = f" The weights moved most in block {headline['most_moved_block']} ({source})."
        kw = headline.get("keyword_rate")
        kw_text = ("" if kw is None else " Ground-truth keyword rate: " + ", ".join(
            f"{k} {v:.0%}" for k, v in kw.items()) + ".")
        top_alpha = ladder[-1]
        summary = (
            f"Sampled {headline['n_prompts']} prompts x {cfg.n_per_prompt} at {', '.join(ladder)}"
            + (f" and {', '.join(lora)}" if lora else "") + f". Words growing most from alpha=0 to {top_alpha}: "
            + (", ".join(repr(w) for w in headline["top_growing_words"][:8]) or "none") + "." + kw_text
            + f" Base-model perplexity of the replies: {headline['base_ppl'].get('alpha=0', float('nan')):.3g} at "
            f"alpha=0, {headline['base_ppl'].get(top_alpha, float('nan')):.3g} at {top_alpha}." + weights_note
            + " Amplified samples only propose: nothing here is a validated finding; validate on ordinary "
            "(alpha=0) samples of held-out prompts."
        )
        return MethodResult(
            headline=headline, summary=summary,
            data={"proposals": [p.__dict__ for p in props]},
            artifacts=[str(p.relative_to(ctx.run.path)) for p in paths.values()],
            corpus=ctx.prompts.name,
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """The report section (see :mod:`.report`)."""
        render_section(result, section, Path(run.path))
