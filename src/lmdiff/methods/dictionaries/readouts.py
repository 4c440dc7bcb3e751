"""Readouts shared by the dictionary methods: a unit's lens tokens, examples, relevance and steering.

A *unit* is a PCA component or a dictionary latent with a direction in raw activation units
(finetuned side for a crosscoder). Lens readouts use :mod:`lmdiff.interp.lens` (float32),
steering uses :mod:`lmdiff.interp.steering` (adl's coherence search), relevance uses
:mod:`lmdiff.interp.relevance`.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmdiff.activations import ActivationStore, open_store
from lmdiff.corpora import Corpus, load_corpus
from lmdiff.dictionaries.examples import UnitStats, token_context
from lmdiff.dictionaries.stream import positions_of
from lmdiff.interp.lens import lens_delta_tokens, lens_tokens
from lmdiff.interp.relevance import chance_relevance, relevance_producer, relevant_token, token_relevance
from lmdiff.interp.signals import word_of
from lmdiff.interp.steering import STEERING_PROMPTS, steered_vs_plain
from lmdiff.methods.dictionaries.config import DictionaryConfig

#: Files every dictionary method (pca, crosscoder, sae_diff) writes into its artifact directory.
UNITS_FILE = "units.json"
STEERING_FILE = "steering.json"

if TYPE_CHECKING:
    from lmdiff.methods.base import MethodContext, MethodResult
    from lmdiff.models.lm import LanguageModel

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


@dataclass
class StoreContext:
    """The opened store with its layer, corpus, and the finetuned side's mean and typical norm there."""

    store: ActivationStore
    layer: int
    corpus: Corpus
    mean_ft: np.ndarray
    norm_ft: float
    mean_diff: np.ndarray
    #: Total variance (summed over dimensions) of the differences at positions >= min_position.
    diff_variance: float

    @property
    def mean_square(self) -> float:
        """Mean squared norm of a token's difference (variance plus the squared mean)."""
        return self.diff_variance + float(self.mean_diff @ self.mean_diff)


def open_dictionary_store(ctx: MethodContext[Any]) -> StoreContext:
    """Collect (or reuse) the store the method's settings name; the mean and norm skip early positions."""
    cfg: DictionaryConfig = ctx.config
    pair = ctx.pair
    corpus = load_corpus(cfg.corpus, pair, limit=cfg.n_texts or 20000, seed=ctx.run_config.seed,
                         cache_dir=ctx.corpus_cache_dir)
    layer = pair.finetuned.resolve_layer(cfg.layer)
    store = open_store(pair, corpus, [layer], ctx.run.path / "activations", max_tokens=cfg.n_tokens,
                       dtype=cfg.dtype,  # type: ignore[arg-type]
                       batch_size=cfg.batch_size, shard_tokens=ctx.run_config.compute.activation_shard_tokens,
                       executor=ctx.executor)
    total, sq, n = np.zeros(store.d_model), 0.0, 0
    d_sum, d_sq = np.zeros(store.d_model), 0.0
    for chunk in store.iter_chunks(layer, 8192):
        keep = store.kept_mask(layer, chunk.start, chunk.stop, cfg.min_position)
        x = chunk.finetuned[keep].astype(np.float64)
        diff = chunk.diff[keep].astype(np.float64)
        total += x.sum(0)
        sq += float(np.linalg.norm(x, axis=1).sum())
        d_sum += diff.sum(0)
        d_sq += float((diff**2).sum())
        n += len(x)
    m = max(n, 1)
    mean_diff = d_sum / m
    return StoreContext(store, layer, corpus, total / m, sq / m, mean_diff,
                        max(d_sq / m - float(mean_diff @ mean_diff), 0.0))


def unit_lens(ft: LanguageModel, sc: StoreContext, direction: np.ndarray, magnitude: float,
              top_k: int) -> dict[str, list[tuple[str, float]]]:
    """Lens readouts of one unit: ``lens`` (direction at the typical norm) and ``lens_delta`` (+ and -).

    ``lens_delta``: lens(mean_ft + magnitude * unit) - lens(mean_ft), the tokens adding the unit's
    largest observed contribution to an average finetuned state promotes (``lens_delta_neg``: demotes).
    """
    nrm = float(np.linalg.norm(direction))
    u = direction / nrm if nrm > 0 else direction
    up, down = lens_delta_tokens(ft, sc.mean_ft + magnitude * u, sc.mean_ft, top_k)
    return {"lens": lens_tokens(ft, u * sc.norm_ft, top_k), "lens_neg": lens_tokens(ft, -u * sc.norm_ft, top_k),
            "lens_delta": up, "lens_delta_neg": down}


def examples(ft: LanguageModel, store: ActivationStore, tokens: Sequence[int], values: Sequence[float],
             n: int) -> list[dict[str, Any]]:
    """Up to ``n`` example rows (token, value, context with the token marked ``[[...]]``)."""
    out = []
    for t, v in zip(tokens[:n], values[:n], strict=False):
        if int(t) < 0 or not np.isfinite(v):
            continue
        tok, text = token_context(store, int(t), ft.decode, lambda i: ft.token_strings([i])[0])
        out.append({"token": tok, "value": float(v), "context": text})
    return out


def context_relevant(text: str, gt: dict[str, Any] | None) -> bool:
    """Whether any whole word of an example's context matches the ground truth's keywords."""
    kws = list((gt or {}).get("keywords") or [])
    return bool(kws) and any(relevant_token(w, kws) for w in _WORD.findall(text))


def random_contexts_relevance(ft: LanguageModel, store: ActivationStore, gt: dict[str, Any] | None, n: int,
                              min_position: int, seed: int = 0) -> float | None:
    """The share of contexts around ``n`` random stored tokens that mention the ground truth (examples' null)."""
    if not (gt or {}).get("keywords"):
        return None
    rng = np.random.default_rng(seed)
    drawn = rng.choice(store.n_tokens, size=min(n * 3, store.n_tokens), replace=False)
    picks = [int(p) for p in drawn if positions_of(store, int(p), int(p) + 1)[0] >= min_position][:n]
    ctxs = [token_context(store, p, ft.decode, lambda i: ft.token_strings([i])[0])[1] for p in picks]
    return float(np.mean([context_relevant(c, gt) for c in ctxs])) if ctxs else None


def unit_rows(
    ft: LanguageModel, sc: StoreContext, units: Sequence[int], directions: np.ndarray, st: UnitStats,
    cfg: DictionaryConfig, gt: dict[str, Any] | None, extra: dict[int, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per unit: lens tokens (both readouts), top (and bottom) examples and their relevance."""
    rows = []
    for rank, j in enumerate(units):
        d = directions[j]
        top_v = float(st.top_values[j, 0]) if st.top_values.shape[1] and np.isfinite(st.top_values[j, 0]) else 0.0
        mag = max(top_v * float(np.linalg.norm(d)), 1e-6)
        lens = unit_lens(ft, sc, d, mag, cfg.top_k)
        ex = examples(ft, sc.store, st.top_tokens[j], st.top_values[j], cfg.n_examples)
        row: dict[str, Any] = {
            "rank": rank, "unit": int(j), "frequency": float(st.frequency[j]),
            **{k: [t for t, _ in v] for k, v in lens.items()},
            "examples": ex,
        }
        if st.bottom_values.shape[1]:
            row["bottom_examples"] = examples(ft, sc.store, st.bottom_tokens[j], st.bottom_values[j], cfg.n_examples)
        rel = token_relevance(row[cfg.lens_readout], gt)
        row["lens_relevance"] = rel["share"] if rel else None
        row["example_relevance"] = (float(np.mean([context_relevant(e["context"], gt) for e in ex]))
                                    if (gt or {}).get("keywords") and ex else None)
        row.update((extra or {}).get(int(j), {}))
        rows.append(row)
    return rows


def relevance_headline(ft: LanguageModel, sc: StoreContext, rows: Sequence[dict[str, Any]], cfg: DictionaryConfig,
                       gt: dict[str, Any] | None, n_units: int = 3) -> dict[str, Any]:
    """Headline relevance of the top ``n_units`` units (lens tokens, examples), each with its null."""
    top = list(rows[:n_units])
    lens_toks = [t for r in top for t in r[cfg.lens_readout]]
    rel = token_relevance(lens_toks, gt)
    ex_rel = [r["example_relevance"] for r in top if r.get("example_relevance") is not None]
    null_ex = random_contexts_relevance(ft, sc.store, gt, 64, cfg.min_position) if ex_rel else None
    top_lens: list[str] = []
    for r in top:
        top_lens += [t for t in r[cfg.lens_readout][:5] if t not in top_lens]
    shown_by = writer_example_words(top)
    return {
        "top_lens": top_lens[:12],
        "top_example_words": shown_by,
        "top_signals": (shown_by + [t for t in top_lens if t not in shown_by])[:12],
        "lens_readout": cfg.lens_readout,
        "lens_relevance": rel["share"] if rel else None,
        "lens_relevance_null": (chance_relevance(ft.token_strings, len(ft.tokenizer), gt)
                                if rel else None),
        "lens_relevance_null_kind": "random vocabulary tokens" if rel else None,
        "example_relevance": float(np.mean(ex_rel)) if ex_rel else None,
        "example_relevance_null": null_ex,
        "example_relevance_null_kind": "contexts of random stored tokens" if ex_rel else None,
        "relevance_units": len(top),
        "relevance_producer": relevance_producer(gt) if (rel or ex_rel) else None,
    }


def writer_example_words(rows: Sequence[dict[str, Any]], alpha: float = 0.05, n: int = 8) -> list[str]:
    """The word tokens that most often activate the given units, from units the writer contrast backs.

    Only units that carry significantly more of the difference in the finetune's own replies
    (``writer_q`` <= ``alpha``, positive excess) count: their max-activating tokens are what the
    finetune writes (on the zoo's ``ocean-topic``: ' ocean', ' whales', ' tides'), where a latent's
    logit lens can be noise. Fragments, numbers and stopwords are left out; most frequent first.
    """
    counts: collections.Counter[str] = collections.Counter()
    for r in rows:
        if r.get("writer_q") is None or r["writer_q"] > alpha or r.get("writer_excess", 0.0) <= 0:
            continue
        counts.update(e["token"] for e in r.get("examples") or [] if word_of(e["token"]))
    return [t for t, _ in counts.most_common(n)]


def steer_units(ctx: MethodContext[Any], sc: StoreContext, units: Sequence[int],
                directions: np.ndarray) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Steered vs unsteered samples along the first ``steer_top`` units (unit direction x typical norm)."""
    cfg: DictionaryConfig = ctx.config
    if not cfg.steering or cfg.steer_top == 0:
        return [], []
    pair = ctx.pair
    prompts = list(STEERING_PROMPTS[: cfg.steering_prompts])
    samples: list[dict[str, Any]] = []
    search: list[dict[str, Any]] = []
    for j in list(units)[: cfg.steer_top]:
        d = directions[j]
        nd = float(np.linalg.norm(d))
        if nd == 0:
            continue
        vec = torch.as_tensor(d / nd * sc.norm_ft, dtype=torch.float32)
        _, rows, trace = steered_vs_plain(pair.finetuned, pair.base, sc.layer, vec, prompts, cfg,
                                          ctx.run_config.seed)
        samples += [{"unit": int(j), **r} for r in rows]
        search += [{"unit": int(j), **t} for t in trace]
    return samples, search


def zero_difference(sc: StoreContext) -> bool:
    """Whether every stored difference is exactly zero (a self-pair): nothing to decompose."""
    st = sc.store.stats("diff", sc.layer)
    return bool(np.abs(st.mean).max() == 0 and st.var.sum() == 0)


def skipped_result(sc: StoreContext, what: str) -> MethodResult:
    """The result of a method skipped because the differences are all zero."""
    from lmdiff.methods.base import MethodResult

    return MethodResult(headline={"layer": sc.layer, "skipped": True, "top_lens": [], "top_signals": [],
                                  "n_tokens": sc.store.n_tokens},
                        summary=f"every ft - base difference at layer {sc.layer} is zero (a self-pair?): no {what} to "
                                "learn (skipped).", corpus=sc.corpus.name)


def top_example_note(rows: Sequence[dict[str, Any]]) -> str:
    """``; its top example: "..."`` for the first unit that has one (a summary's closing clause), or ''."""
    ex = rows[0].get("examples") if rows else None
    return f"; its top example: \"{ex[0]['context'].strip()}\"" if ex else ""
