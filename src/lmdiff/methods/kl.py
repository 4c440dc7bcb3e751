"""``kl``: per-token KL(finetuned || base) over a corpus, streamed batch by batch.

Both sides run on the same token sequences; each batch's log-softmax is reduced to one KL
value per token before the next batch, so memory never holds the distributions of a corpus.
Outputs per-token values (Parquet), per-sample and per-position aggregates, the top-k tokens
with context, and a report section with tokens coloured by KL.

KL is split into stopping and content: positions where the next token, or either model's most
likely next token, is an end-of-turn token (:func:`lmdiff.interp.end_of_turn.stopping_positions`)
carry the decision to end the reply. A finetune that learnt to stop earlier puts most of its KL
there, so the headline reports that share and the top tokens and mean KL of the other positions.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from lmdiff.corpora import load_corpus
from lmdiff.errors import ConfigError
from lmdiff.interp.end_of_turn import end_of_turn_ids, stopping_positions
from lmdiff.interp.logprobs import per_token_kl
from lmdiff.io import write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.models.recipe import pair_recipe
from lmdiff.report.builder import Section
from lmdiff.runs.chunks import map_chunks
from lmdiff.runs.executor import Worker
from lmdiff.runs.run import Run

#: Files the kl method writes into its artifact directory (agents and reports read them by these names).
KL_TOKENS_FILE = "kl_tokens.parquet"
KL_PER_SAMPLE_FILE = "kl_per_sample.parquet"
KL_PER_POSITION_FILE = "kl_per_position.parquet"
KL_TOP_TOKENS_FILE = "kl_top_tokens.parquet"
KL_TOP_CONTENT_TOKENS_FILE = "kl_top_content_tokens.parquet"

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel
    from lmdiff.models.pair import ModelPair


class KLConfig(MethodConfig):
    """Settings of the kl method."""

    corpus: str = Field("chat+replies", description="corpus name or file (see lmdiff.corpora)")
    max_texts: int = Field(200, ge=1)
    max_tokens: int = Field(128, ge=2, description="tokens per text")
    reverse: bool = Field(False, description="also compute KL(base || finetuned)")
    top_k: int = Field(30, ge=1, description="highest-KL tokens listed with context")
    batch_size: int = Field(4, ge=1)
    chunk_size: int = Field(32, ge=1, description="texts per resumable chunk")
    reply_tokens: int = Field(48, ge=1, description="reply length for chat+replies")


def kl_chunk(pair: ModelPair, chunk: Sequence[Sequence[int]], offset: int, *, batch_size: int,
             reverse: bool) -> pd.DataFrame:
    """Per-token KL rows of one chunk of token sequences (texts numbered from ``offset``); a shard function."""
    return per_token_kl(pair, chunk, batch_size=batch_size, reverse=reverse, offset=offset)


def kl_html(tokens: Sequence[str], values: Sequence[float], vmax: float) -> str:
    """Tokens as HTML spans coloured by KL (white to red), with the value as a tooltip."""
    spans = []
    for t, v in zip(tokens, values, strict=True):
        a = 0.0 if vmax <= 0 else min(1.0, float(v) / vmax)
        spans.append(
            f'<span title="KL {float(v):.4f}" style="background:rgba(220,40,40,{a:.2f});'
            f'white-space:pre-wrap">{html.escape(t)}</span>'
        )
    return '<div style="font-family:monospace;line-height:1.6;margin:6px 0">' + "".join(spans) + "</div>"


def stopping_split(df: pd.DataFrame, stopping: np.ndarray) -> dict[str, Any]:
    """Headline numbers of KL split into stopping positions (``stopping`` true) and content positions.

    Returns:
        ``eot_kl_share`` (share of the summed KL on stopping positions, 0 when there is no KL),
        ``eot_position_share``, ``n_eot_positions``, ``mean_kl_content`` and ``max_kl_content``.
    """
    kl = df["kl"].to_numpy(dtype=np.float64)
    total = float(kl.sum())
    content = kl[~stopping]
    return {
        "eot_kl_share": float(kl[stopping].sum()) / total if total > 0 else 0.0,
        "eot_position_share": float(stopping.mean()) if len(kl) else 0.0,
        "n_eot_positions": int(stopping.sum()),
        "mean_kl_content": float(content.mean()) if len(content) else 0.0,
        "max_kl_content": float(content.max()) if len(content) else 0.0,
    }


def top_kl_rows(df: pd.DataFrame, k: int, seqs: Sequence[Sequence[int]], lm: LanguageModel,
                exclude: np.ndarray | None = None) -> pd.DataFrame:
    """The ``k`` highest-KL rows (leaving out rows where ``exclude`` is true), with context and token strings."""
    pool = df if exclude is None else df[~exclude]
    top = pool.nlargest(k, "kl").copy()
    top["context"] = [lm.decode(seqs[int(r.text)][max(0, int(r.pos) - 24) : int(r.pos) + 1])
                      for r in top.itertuples()]
    top["token_str"] = lm.token_strings(top["token"].tolist())
    top["top_ft_str"] = lm.token_strings(top["top_ft"].tolist())
    top["top_base_str"] = lm.token_strings(top["top_base"].tolist())
    return top


@register_method
class KLMethod(DiffMethod[KLConfig]):
    """Per-token KL divergence between the finetuned and base next-token distributions."""

    name = "kl"
    title = "KL: where the finetuned model's next-token distribution departs from the base"
    description = "per-token KL(ft || base) over a corpus, with aggregates and top tokens"
    Config = KLConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {"corpus": "generic", "max_texts": 16, "max_tokens": 64}
    default_set_settings: ClassVar[dict[str, Any]] = {"max_texts": 40, "reply_tokens": 32}
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True
    noise_comparable: ClassVar[dict[str, str]] = {"mean_kl": "kl", "mean_kl_reverse": "kl"}

    def run(self, ctx: MethodContext[KLConfig]) -> MethodResult:
        """Stream both sides over the corpus in resumable chunks."""
        cfg = ctx.config
        pair = ctx.pair
        if not pair.both_resident():
            raise ConfigError("kl needs both models in memory at once.", hint="set compute.load=together")
        corpus = load_corpus(cfg.corpus, pair, limit=cfg.max_texts, seed=ctx.run_config.seed,
                             cache_dir=ctx.corpus_cache_dir, reply_tokens=cfg.reply_tokens)
        seqs = corpus.encode(pair.base, max_tokens=cfg.max_tokens)
        step = ctx.step("tokens", {"corpus": corpus.content_hash})
        if step.done:
            df = pd.read_parquet(step.dir / KL_TOKENS_FILE)
        else:
            d = step.prepare()
            df = map_chunks(
                seqs,
                functools.partial(kl_chunk, batch_size=cfg.batch_size, reverse=cfg.reverse),
                d / "parts",
                chunk_size=cfg.chunk_size,
                worker=Worker(pair, pair_recipe(pair)),
                executor=ctx.executor,
                description="per-token KL",
            )
            write_parquet(d / KL_TOKENS_FILE, df)
            step.finish({"n_tokens": len(df)})
        lm = pair.base
        per_sample = df.groupby("text").agg(mean_kl=("kl", "mean"), max_kl=("kl", "max"), sum_kl=("kl", "sum"),
                                            n_tokens=("kl", "size")).reset_index()
        per_pos = df.groupby("pos").agg(mean_kl=("kl", "mean"), n=("kl", "size")).reset_index()
        eot = end_of_turn_ids(lm)
        stopping = stopping_positions(df, eot)
        top = top_kl_rows(df, cfg.top_k, seqs, lm)
        top["end_of_turn"] = stopping_positions(top, eot)
        top_content = top_kl_rows(df, cfg.top_k, seqs, lm, exclude=stopping)
        art = ctx.artifact_dir
        write_parquet(art / KL_PER_SAMPLE_FILE, per_sample)
        write_parquet(art / KL_PER_POSITION_FILE, per_pos)
        write_parquet(art / KL_TOP_TOKENS_FILE, top)
        write_parquet(art / KL_TOKENS_FILE, df)
        write_parquet(art / KL_TOP_CONTENT_TOKENS_FILE, top_content)
        # example texts for the heatmap: highest mean KL, plus one median one
        ranked = per_sample.sort_values("mean_kl", ascending=False)["text"].tolist()
        examples = ranked[:4] + ([ranked[len(ranked) // 2]] if len(ranked) > 5 else [])
        ex_data = []
        for t in examples:
            sub = df[df.text == t]
            ex_data.append({"text": int(t), "tokens": lm.token_strings(sub["token"].tolist()),
                            "kl": [float(x) for x in sub["kl"]]})
        headline: dict[str, Any] = {
            "mean_kl": float(df["kl"].mean()) if len(df) else 0.0,
            "median_kl": float(df["kl"].median()) if len(df) else 0.0,
            "p99_kl": float(df["kl"].quantile(0.99)) if len(df) else 0.0,
            "max_kl": float(df["kl"].max()) if len(df) else 0.0,
            "mean_sample_kl": float(per_sample["mean_kl"].mean()) if len(per_sample) else 0.0,
            "n_texts": len(seqs),
            "n_tokens": len(df),
            **stopping_split(df, stopping),
            "eot_share_of_top": float(top["end_of_turn"].mean()) if len(top) else 0.0,
            "top_content_ft": top_content["top_ft_str"].head(10).tolist(),
            "top_content_contexts": [c[-60:] for c in top_content["context"].head(5)],
        }
        if cfg.reverse:
            headline["mean_kl_reverse"] = float(df["kl_rev"].mean())
        def rel(p: Path) -> str:
            return str(p.relative_to(ctx.run.path))

        return MethodResult(
            headline=headline,
            summary=(f"Mean per-token KL(ft||base) {headline['mean_kl']:.4g} nats over {len(df)} tokens of "
                     f"{len(seqs)} texts ({corpus.name}); max {headline['max_kl']:.3g}. "
                     f"{headline['eot_kl_share']:.1%} of the KL mass lies on the {headline['n_eot_positions']} "
                     f"end-of-turn positions ({headline['eot_position_share']:.1%} of tokens; "
                     f"{headline['eot_share_of_top']:.0%} of the top {len(top)}); the other positions have mean KL "
                     f"{headline['mean_kl_content']:.4g}, highest where the finetuned model predicts "
                     f"{', '.join(repr(t) for t in headline['top_content_ft'][:5]) or 'nothing'}."),
            data={"examples": ex_data, "corpus": corpus.describe()},
            artifacts=[rel(art / n) for n in (KL_PER_SAMPLE_FILE, KL_PER_POSITION_FILE, KL_TOP_TOKENS_FILE,
                                              KL_TOKENS_FILE, KL_TOP_CONTENT_TOKENS_FILE)],
            corpus=corpus.name,
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Figures, histograms, per-position curve, top tokens and KL heatmaps."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = result.headline
        section.text(result.summary)
        section.figures({k: h[k] for k in ("mean_kl", "median_kl", "p99_kl", "max_kl", "n_texts", "n_tokens")})
        per_sample = pd.read_parquet(run.path / result.artifacts[0])
        per_pos = pd.read_parquet(run.path / result.artifacts[1])
        top = pd.read_parquet(run.path / result.artifacts[2])
        tokens = pd.read_parquet(run.path / result.artifacts[3], columns=["kl"])
        fig, axes = plt.subplots(1, 3, figsize=(12, 2.8))
        axes[0].hist(np.log10(tokens["kl"].clip(lower=1e-8)), bins=40, color="#c03030")
        axes[0].set_xlabel("log10 per-token KL (nats)")
        axes[1].hist(per_sample["mean_kl"], bins=30, color="#2b4cc0")
        axes[1].set_xlabel("mean KL per text")
        axes[2].plot(per_pos["pos"], per_pos["mean_kl"], color="#333")
        axes[2].set_xlabel("position")
        axes[2].set_ylabel("mean KL")
        section.figure(fig, "Per-token KL, per-text mean KL and mean KL by position")
        section.heading("Tokens where the distributions differ most")
        cols = ["kl", "context", "top_ft_str", "top_base_str"] + (["end_of_turn"] if "end_of_turn" in top else [])
        show = top[cols].rename(
            columns={"context": "context (ends at the token)", "top_ft_str": "ft predicts",
                     "top_base_str": "base predicts"})
        section.table(show, max_rows=20)
        if len(result.artifacts) > 4 and "eot_kl_share" in h:
            section.heading("Excluding end-of-turn positions (content)")
            section.figures({"KL share on end-of-turn positions": h["eot_kl_share"],
                             "end-of-turn positions": h["n_eot_positions"],
                             "share of tokens": h["eot_position_share"],
                             "mean KL elsewhere": h["mean_kl_content"]})
            content = pd.read_parquet(run.path / result.artifacts[4])
            section.table(content[["kl", "context", "top_ft_str", "top_base_str"]].rename(
                columns={"context": "context (ends at the token)", "top_ft_str": "ft predicts",
                         "top_base_str": "base predicts"}), max_rows=20)
        section.heading("Example texts coloured by KL")
        vmax = max([max(e["kl"]) for e in result.data.get("examples", []) if e["kl"]] + [1e-9])
        for e in result.data.get("examples", []):
            section.raw_html(kl_html(e["tokens"], e["kl"], vmax))
