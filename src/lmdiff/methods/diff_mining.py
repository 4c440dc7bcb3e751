"""``diff_mining``: which tokens most often rise to the top of (finetuned - base) log-probabilities.

Over the first positions of many texts, the top-k tokens of log p_ft - log p_base are counted
(the per-position log-softmax shift does not change the ranking, so this equals the logit
difference ranking). Tokens the finetune pushes up consistently rise to the top of the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd
import torch
from pydantic import Field

from lmdiff.corpora import load_corpus
from lmdiff.errors import ConfigError
from lmdiff.interp.logprobs import paired_logprobs
from lmdiff.interp.relevance import chance_relevance, token_relevance
from lmdiff.io import write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run


class DiffMiningConfig(MethodConfig):
    """Settings of the diff_mining method."""

    corpus: str = Field("generic", description="corpus name or file")
    max_texts: int = Field(256, ge=1)
    positions: int = Field(32, ge=1, description="first positions of each text")
    top_k: int = Field(20, ge=1, description="top tokens counted per position")
    min_diff: float = Field(0.0, ge=0, description="count a token only if its log-prob rose at least this much")
    batch_size: int = Field(8, ge=1)
    examples: int = Field(3, ge=0, description="example contexts kept per token")
    report_rows: int = Field(40, ge=1)


def count_top_tokens(
    diff: torch.Tensor, lengths: Sequence[int], top_k: int, min_diff: float = 0.0
) -> tuple[Counter[int], dict[int, list[tuple[int, int]]]]:
    """Count tokens in the top-``top_k`` of ``diff`` [B, T, V] at each real position.

    Returns:
        Counts per token id and, per token id, the (row, position) where it occurred.
    """
    counts: Counter[int] = Counter()
    where: dict[int, list[tuple[int, int]]] = {}
    vals, idx = torch.topk(diff.float(), top_k, dim=-1)
    for r, n in enumerate(lengths):
        for t in range(n):
            for v, i in zip(vals[r, t].tolist(), idx[r, t].tolist(), strict=True):
                if v > min_diff:
                    counts[i] += 1
                    where.setdefault(i, []).append((r, t))
    return counts, where


@register_method
class DiffMiningMethod(DiffMethod[DiffMiningConfig]):
    """Counts of tokens at the top of the finetuned-minus-base log-probability difference."""

    name = "diff_mining"
    title = "Diff mining: tokens the finetune pushes up most often"
    description = "counts of top (ft - base) tokens over the first positions of many texts"
    Config = DiffMiningConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {"max_texts": 32, "positions": 16}
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True

    def run(self, ctx: MethodContext[DiffMiningConfig]) -> MethodResult:
        """Stream both sides over the first positions of the corpus and count top tokens."""
        cfg = ctx.config
        pair = ctx.pair
        if not pair.both_resident():
            raise ConfigError("diff_mining needs both models in memory at once.", hint="set compute.load=together")
        corpus = load_corpus(cfg.corpus, pair, limit=cfg.max_texts, seed=ctx.run_config.seed,
                             cache_dir=ctx.artifact_dir)
        lm = pair.base
        seqs = corpus.encode(lm, max_tokens=cfg.positions)
        counts: Counter[int] = Counter()
        examples: dict[int, list[str]] = {}
        n_positions = 0
        identical = True
        for idx, lengths, lpb, lpf in paired_logprobs(pair, seqs, cfg.batch_size):
            diff = lpf - lpb
            identical = identical and bool((diff.abs().max() == 0).item())
            n_positions += sum(lengths)
            c, where = count_top_tokens(diff, lengths, cfg.top_k, cfg.min_diff)
            counts.update(c)
            for tok, occ in where.items():
                ex = examples.setdefault(tok, [])
                for r, t in occ[: max(0, cfg.examples - len(ex))]:
                    ex.append(lm.decode(seqs[idx[r]][max(0, t - 12) : t + 1]))
        rows = []
        ids = [t for t, _ in counts.most_common()]
        strs = lm.token_strings(ids)
        for tok, s in zip(ids, strs, strict=True):
            rows.append({"token_id": tok, "token": s, "count": counts[tok],
                         "share": counts[tok] / max(n_positions, 1), "examples": " ‖ ".join(examples.get(tok, []))})
        df = pd.DataFrame(rows, columns=["token_id", "token", "count", "share", "examples"])
        art = ctx.artifact_dir
        write_parquet(art / "diff_mining.parquet", df)
        top_tokens = df["token"].head(20).tolist() if not identical else []
        rel = token_relevance(top_tokens, pair.ground_truth)
        headline: dict[str, Any] = {
            "n_texts": len(seqs), "n_positions": n_positions, "identical_distributions": identical,
            "top_tokens": top_tokens[:10],
            "top_share": float(df["share"].iloc[0]) if len(df) and not identical else 0.0,
            "relevance": rel["share"] if rel else None,
            "relevance_producer": rel["producer"] if rel else None,
            # null: random vocabulary tokens (what the top tokens of a random logit shift of any norm score)
            "relevance_null": chance_relevance(lm.token_strings, len(lm.tokenizer), pair.ground_truth,
                                               seed=ctx.run_config.seed) if rel else None,
        }
        summary = ("The two models give identical distributions: nothing to mine." if identical else
                   f"Over {n_positions} positions of {len(seqs)} texts ({corpus.name}), the tokens most often in the "
                   f"top {cfg.top_k} of ft - base: {', '.join(repr(t) for t in top_tokens[:8])}.")
        return MethodResult(headline=headline, summary=summary, data={"corpus": corpus.describe()},
                            artifacts=[str((art / "diff_mining.parquet").relative_to(ctx.run.path))],
                            corpus=corpus.name)

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Counts table with example contexts."""
        h = result.headline
        section.text(result.summary)
        section.figures({"texts": h["n_texts"], "positions": h["n_positions"], "top share": h["top_share"],
                         f"token relevance ({h.get('relevance_producer') or 'no ground truth'})":
                             h["relevance"] if h["relevance"] is not None else "n/a",
                         "null relevance (random vocabulary tokens)":
                             h["relevance_null"] if h.get("relevance_null") is not None else "n/a"})
        df = pd.read_parquet(run.path / result.artifacts[0])
        if not h["identical_distributions"] and len(df):
            section.table(df[["token", "count", "share", "examples"]], caption="Most frequent top tokens",
                          max_rows=40)
