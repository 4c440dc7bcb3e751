"""``activation_stats``: per-token norms and cosine similarity of the two models' hidden states.

From the activation store at one layer: the norm of the difference, the cosine similarity
and each side's norm for every token; their means over all tokens, the first k positions and
chat-template tokens; percentiles; and the tokens with the largest differences, with context.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from lmdiff.activations import open_store
from lmdiff.corpora import load_corpus, template_token_ids
from lmdiff.io import write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run


class ActivationStatsConfig(MethodConfig):
    """Settings of the activation_stats method."""

    corpus: str = Field("chat+replies", description="corpus name or file")
    max_texts: int = Field(200, ge=1)
    max_tokens: int = Field(128, ge=1)
    layer: float | int = Field(0.5, description="layer (int, or float in [0, 1] relative)")
    first_k: int = Field(5, ge=1, description="positions counted as 'first k'")
    skip_first: int = Field(1, ge=0, description="positions left out of max-activating examples")
    top_n: int = Field(30, ge=1, description="max-activating examples kept")
    dtype: str = Field("float32", pattern="^(float32|float16|bfloat16)$", description="store dtype")
    batch_size: int = Field(8, ge=1)
    reply_tokens: int = Field(48, ge=1)


def token_metrics(base: np.ndarray, ft: np.ndarray) -> dict[str, np.ndarray]:
    """Per-token ||ft - base||, cosine(ft, base), ||base||, ||ft|| (float32 rows in, float64 out)."""
    b = base.astype(np.float64)
    f = ft.astype(np.float64)
    nb = np.linalg.norm(b, axis=1)
    nf = np.linalg.norm(f, axis=1)
    cos = (b * f).sum(1) / np.maximum(nb * nf, 1e-12)
    return {"norm_diff": np.linalg.norm(f - b, axis=1), "cosine": cos, "norm_base": nb, "norm_ft": nf}


@register_method
class ActivationStatsMethod(DiffMethod[ActivationStatsConfig]):
    """Norms and cosine similarities of the two models' residual streams, token by token."""

    name = "activation_stats"
    title = "Activation statistics: how far the residual streams move, token by token"
    description = "per-token difference norms, cosine similarity, max-activating examples"
    Config = ActivationStatsConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {"corpus": "generic", "max_texts": 16, "max_tokens": 64}
    needs_shared_tokenizer = True
    white_box = True

    def run(self, ctx: MethodContext[ActivationStatsConfig]) -> MethodResult:
        """Collect (or reuse) the store and compute per-token metrics chunk by chunk."""
        cfg = ctx.config
        pair = ctx.pair
        corpus = load_corpus(cfg.corpus, pair, limit=cfg.max_texts, seed=ctx.run_config.seed,
                             cache_dir=ctx.corpus_cache_dir, reply_tokens=cfg.reply_tokens)
        layer = pair.base.resolve_layer(cfg.layer)
        store = open_store(pair, corpus, [layer], ctx.run.path / "activations", max_tokens=cfg.max_tokens,
                           dtype=cfg.dtype, batch_size=cfg.batch_size,  # type: ignore[arg-type]
                           shard_tokens=ctx.run_config.compute.activation_shard_tokens, executor=ctx.executor)
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("norm_diff", "cosine", "norm_base", "norm_ft")}
        for chunk in store.iter_chunks(layer):
            for k, v in token_metrics(chunk.base, chunk.finetuned).items():
                cols[k].append(v.astype(np.float32))
        df = pd.DataFrame({k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in cols.items()})
        df["pos"] = store.positions()
        df["seq"] = store.sequence_of(np.arange(store.n_tokens)).astype(np.int32)
        df["token"] = np.asarray(store.tokens, dtype=np.int32)
        tmpl = template_token_ids(pair.base)
        df["template"] = df["token"].isin(list(tmpl)) if corpus.templated else False
        groups = {"all": df, f"first_{cfg.first_k}": df[df.pos < cfg.first_k],
                  f"after_{cfg.first_k}": df[df.pos >= cfg.first_k], "template": df[df.template],
                  "content": df[~df.template]}
        rows = []
        for gname, sub in groups.items():
            if not len(sub):
                continue
            row: dict[str, Any] = {"group": gname, "n_tokens": len(sub)}
            for k in ("norm_diff", "cosine", "norm_base", "norm_ft"):
                row[f"mean_{k}"] = float(sub[k].mean())
            row["rel_norm_diff"] = float((sub.norm_diff / sub.norm_base.clip(lower=1e-12)).mean())
            rows.append(row)
        summary_df = pd.DataFrame(rows)
        pct = [1, 5, 25, 50, 75, 95, 99]
        pct_df = pd.DataFrame({"percentile": pct, **{k: np.percentile(df[k], pct) if len(df) else np.nan
                                                    for k in ("norm_diff", "cosine")}})
        lm = pair.base
        cand = df[df.pos >= cfg.skip_first].nlargest(cfg.top_n, "norm_diff").copy()
        contexts = []
        for r in cand.itertuples():
            seq = store.sequence_tokens(int(r.seq))
            contexts.append(lm.decode(seq[max(0, int(r.pos) - 24) : int(r.pos) + 1].tolist()))
        cand["context"] = contexts
        cand["token_str"] = lm.token_strings(cand["token"].tolist())
        art = ctx.artifact_dir
        write_parquet(art / "summary.parquet", summary_df)
        write_parquet(art / "percentiles.parquet", pct_df)
        write_parquet(art / "max_examples.parquet", cand)
        write_parquet(art / "per_position.parquet",
                      df.groupby("pos").agg(mean_norm_diff=("norm_diff", "mean"), mean_cosine=("cosine", "mean"),
                                            n=("norm_diff", "size")).reset_index())
        all_row = rows[0] if rows else {}
        headline: dict[str, Any] = {
            "layer": layer,
            "mean_norm_diff": float(all_row.get("mean_norm_diff", 0.0)),
            "mean_cosine": float(all_row.get("mean_cosine", 1.0)),
            "mean_rel_norm_diff": float(all_row.get("rel_norm_diff", 0.0)),
            "mean_norm_base": float(all_row.get("mean_norm_base", 0.0)),
            "mean_norm_ft": float(all_row.get("mean_norm_ft", 0.0)),
            "n_tokens": len(df),
            "store": str(store.path.relative_to(ctx.run.path)),
        }
        def rel(n: str) -> str:
            return str((art / n).relative_to(ctx.run.path))

        return MethodResult(
            headline=headline,
            summary=(f"At layer {layer}, ||h_ft - h_base|| averages {headline['mean_norm_diff']:.4g} "
                     f"({100 * float(headline['mean_rel_norm_diff']):.3g}% of the base norm); mean cosine "
                     f"{headline['mean_cosine']:.4f} over {len(df)} tokens ({corpus.name})."),
            artifacts=[rel(n) for n in ("summary.parquet", "percentiles.parquet", "max_examples.parquet",
                                        "per_position.parquet")],
            corpus=corpus.name,
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Group means, percentiles, per-position curve and max-activating examples."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = result.headline
        section.text(result.summary)
        section.figures({k: h[k] for k in ("layer", "mean_norm_diff", "mean_rel_norm_diff", "mean_cosine",
                                           "n_tokens")})
        section.table(pd.read_parquet(run.path / result.artifacts[0]), caption="Means by token group")
        section.table(pd.read_parquet(run.path / result.artifacts[1]), caption="Percentiles")
        per_pos = pd.read_parquet(run.path / result.artifacts[3])
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.plot(per_pos["pos"], per_pos["mean_norm_diff"], color="#2b4cc0")
        ax.set_xlabel("position")
        ax.set_ylabel("mean ||h_ft - h_base||")
        section.figure(fig, "Difference norm by position")
        ex = pd.read_parquet(run.path / result.artifacts[2])
        section.heading("Tokens with the largest differences")
        section.table(ex[["norm_diff", "cosine", "pos", "token_str", "context"]], max_rows=15)
