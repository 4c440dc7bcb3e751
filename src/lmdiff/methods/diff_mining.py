"""``diff_mining``: which tokens most often rise to the top of (finetuned - base) log-probabilities.

Over the first positions of many texts, the top-k tokens of log p_ft - log p_base are counted
(the per-position log-softmax shift does not change the ranking, so this equals the logit
difference ranking). Tokens the finetune pushes up consistently rise to the top of the counts.

Only tokens the finetuned model actually gives mass to at a position compete there: its top-p
nucleus (``top_p``, default 0.999) and, optionally, a probability floor (``min_prob``). Without
this the ratio is led by glitch tokens ('Workshe', 'aderie', ' oprot') whose probability rises
from 1e-12 to 1e-8: a large log-ratio, but no token the finetuned model would ever produce.
The default was chosen on the ocean organism: a 0.95 nucleus or a 1e-3 floor lets frequent tokens
(' the', ',', newline) lead instead; a 0.999 nucleus surfaces ' whales', ' ocean', ' marine'.
"""

from __future__ import annotations

import math
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
    top_p: float = Field(0.999, gt=0, le=1, description=(
        "rank only tokens in the finetuned model's top-p nucleus at each position (1 = the whole vocabulary)"))
    min_prob: float = Field(0.0, ge=0, lt=1, description=(
        "rank only tokens with finetuned probability at least this (e.g. 1e-3; 0 = no floor beyond top_p)"))
    batch_size: int = Field(8, ge=1)
    examples: int = Field(3, ge=0, description="example contexts kept per token")
    report_rows: int = Field(40, ge=1)


def supported_tokens(lp_ft: torch.Tensor, top_p: float = 1.0, min_prob: float = 0.0) -> torch.Tensor:
    """Boolean mask [..., V] of the tokens the finetuned model gives mass to at each position.

    A token is supported when it lies in the top-``top_p`` nucleus of ``exp(lp_ft)`` (the smallest
    set of most likely tokens whose mass reaches ``top_p``; the most likely token always counts)
    and its probability is at least ``min_prob``.
    """
    keep = torch.ones_like(lp_ft, dtype=torch.bool)
    if top_p < 1.0:
        sorted_lp, order = torch.sort(lp_ft.float(), dim=-1, descending=True)
        probs = sorted_lp.exp()
        mass_before = probs.cumsum(-1) - probs
        keep = torch.zeros_like(keep).scatter(-1, order, mass_before < top_p)
    if min_prob > 0.0:
        keep &= lp_ft.float() >= math.log(min_prob)
    return keep


def count_top_tokens(
    diff: torch.Tensor, lengths: Sequence[int], top_k: int, min_diff: float = 0.0,
    lp_ft: torch.Tensor | None = None, top_p: float = 1.0, min_prob: float = 0.0,
) -> tuple[Counter[int], dict[int, list[tuple[int, int]]]]:
    """Count tokens in the top-``top_k`` of ``diff`` [B, T, V] at each real position.

    Args:
        diff: log p_ft - log p_base (or the logit difference), [B, T, V].
        lengths: real positions per row.
        top_k: tokens counted per position.
        min_diff: count a token only if its difference exceeds this.
        lp_ft: the finetuned log-probabilities [B, T, V]; with ``top_p`` < 1 or ``min_prob`` > 0 only
            tokens :func:`supported_tokens` keeps compete at a position.
        top_p: the finetuned nucleus tokens are ranked within.
        min_prob: the finetuned probability floor.

    Returns:
        Counts per token id and, per token id, the (row, position) where it occurred.
    """
    counts: Counter[int] = Counter()
    where: dict[int, list[tuple[int, int]]] = {}
    scores = diff.float()
    if lp_ft is not None and (top_p < 1.0 or min_prob > 0.0):
        scores = scores.masked_fill(~supported_tokens(lp_ft, top_p, min_prob), -math.inf)
    vals, idx = torch.topk(scores, top_k, dim=-1)
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
    default_set_settings: ClassVar[dict[str, Any]] = {"max_texts": 64, "positions": 16}
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
                             cache_dir=ctx.corpus_cache_dir)
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
            c, where = count_top_tokens(diff, lengths, cfg.top_k, cfg.min_diff, lp_ft=lpf, top_p=cfg.top_p,
                                        min_prob=cfg.min_prob)
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
            "top_p": cfg.top_p, "min_prob": cfg.min_prob,
        }
        support = f"the finetuned model's top-{cfg.top_p:g} nucleus" + (
            f" with p_ft >= {cfg.min_prob:g}" if cfg.min_prob > 0 else "")
        summary = ("The two models give identical distributions: nothing to mine." if identical else
                   f"Over {n_positions} positions of {len(seqs)} texts ({corpus.name}), the tokens most often in the "
                   f"top {cfg.top_k} of ft - base among {support}: "
                   f"{', '.join(repr(t) for t in top_tokens[:8])}.")
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
