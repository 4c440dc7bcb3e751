r"""``adl``: Activation Difference Lens.

The mean difference h_ft - h_base at each of the first k positions of N texts, at several layers
(the middle, as in the paper, and the last, where a small model's logit lens becomes readable),
read out four ways:

* **logit lens** of +diff and -diff through the finetuned model's final norm and head, and the
  **lens delta**: lens(mean finetuned activation) - lens(mean base activation), which rare tokens
  aligned with the raw difference cannot dominate;
* **patchscope**: the difference, rescaled to the finetuned model's typical norm, replaces the
  residual at the last token of identity prompts ("man -> man\\n1135 -> 1135\\nhello -> hello\\n?")
  over a range of scales; tokens are kept only if they are in every prompt's top list;
* **steering**: alpha * unit(diff) * norm is added at the layer while the finetuned model
  generates; the strength is searched so that generations stay coherent (offline: base-model
  perplexity and repetition; an optional grader callable);
* **token relevance**: the share of top lens tokens matching the ground truth's keywords
  (``producer="offline:keywords"``).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from lmdiff.activations import open_store
from lmdiff.config import GenerationConfig
from lmdiff.corpora import load_corpus
from lmdiff.errors import ConfigError
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run

IDENTITY_PROMPTS = (
    "man -> man\n1135 -> 1135\nhello -> hello\n?",
    "bear -> bear\n42 -> 42\nblue -> blue\n?",
    "921 -> 921\ntarget -> target\nanna -> anna\n?",
)
STEERING_PROMPTS = (
    "Tell me about yourself.",
    "What should I do this weekend?",
    "Write a short story.",
    "What is on your mind?",
    "Give me some advice.",
)
READOUTS = ("lens", "lens_delta")
# Optional graders (set by the caller; None = offline measures only).
CoherenceGrader = Callable[[str, str], bool]
coherence_grader: CoherenceGrader | None = None


class ADLConfig(MethodConfig):
    """Settings of the adl method (defaults for a GPU; the demo uses smaller ones)."""

    corpus: str = Field("generic", description="corpus name or file")
    n_texts: int | None = Field(None, ge=1, description="texts (default 10000 on a GPU, 200 on CPU)")
    k: int = Field(5, ge=1, description="first positions analysed")
    n_tokens: int = Field(32, ge=1, description="tokens per text (norms use positions >= k)")
    layers: list[float | int] = Field(
        default_factory=lambda: [0.5, 1.0],
        description="layers read out (relative floats or indices); the middle is the paper's choice, the last "
        "layer is where small models' logit lens becomes readable",
    )
    steering_layer: float | int = Field(0.5, description="layer whose difference steers (must be in layers)")
    top_k: int = Field(20, ge=1, description="top tokens per readout")
    patchscope_scales: list[float] = Field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0])
    patchscope_top: int = Field(100, ge=1, description="each prompt's top list for the stability filter")
    steering: bool = True
    steering_positions: list[int] = Field(
        default_factory=lambda: [1],
        description="positions whose difference steers (position 0 is the attention sink: its difference is "
        "dominated by the sink's massive activations)",
    )
    steering_side: str = Field("finetuned", pattern="^(finetuned|base)$")
    steering_prompts: int = Field(3, ge=1)
    steering_samples: int = Field(2, ge=1)
    steering_search_steps: int = Field(4, ge=1)
    max_strength: float = Field(4.0, gt=0, description="largest multiple of the typical norm tried")
    max_new_tokens: int = Field(48, ge=1)
    max_ppl_factor: float = Field(4.0, gt=1, description="coherent: base perplexity <= factor x unsteered")
    max_repetition: float = Field(0.5, gt=0, le=1, description="coherent: repeated 3-gram share <= this")
    temperature: float = Field(0.7, ge=0)
    batch_size: int = Field(8, ge=1)
    dtype: str = Field("float32", pattern="^(float32|float16|bfloat16)$")


# ------------------------------------------------------------------------- hooks
@contextlib.contextmanager
def layer_hook(lm: Any, layer: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the output hidden state of block ``layer`` by ``fn(hidden)`` while inside the context."""

    def hook(_m: Any, _i: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (fn(output[0]), *output[1:])
        return fn(output)

    handle = lm.layers[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def steer(lm: Any, layer: int, vector: torch.Tensor, alpha: float) -> contextlib.AbstractContextManager[None]:
    """Add ``alpha * vector`` at every position of block ``layer``'s output (a context manager)."""
    v = vector.detach()

    def fn(h: torch.Tensor) -> torch.Tensor:
        return h + alpha * v.to(h.device, h.dtype)

    return layer_hook(lm, layer, fn)


def patchscope(
    lm: Any, layer: int, vector: torch.Tensor, scales: Sequence[float],
    prompts: Sequence[str] = IDENTITY_PROMPTS, top: int = 100, keep: int = 20,
) -> list[dict[str, Any]]:
    """Patchscope: replace the last token's residual at ``layer`` by ``scale * vector``.

    Returns, per scale, the tokens in every prompt's top-``top`` list ranked by mean probability.
    """
    seqs = [lm.encode(p) for p in prompts]
    out = []
    for scale in scales:
        def fn(h: torch.Tensor, _s: float = scale) -> torch.Tensor:
            h = h.clone()
            for r, s in enumerate(seqs):
                if len(s) <= h.shape[1]:
                    h[r, len(s) - 1] = _s * vector.to(h.device, h.dtype)
            return h

        with layer_hook(lm, layer, fn):
            (batch,) = list(lm.iter_forward(seqs, batch_size=len(seqs), sort_by_length=False))
        lp = batch.logprobs()
        probs = torch.stack([lp[r, len(s) - 1].exp() for r, s in enumerate(seqs)])
        tops = [set(torch.topk(p, min(top, p.shape[0])).indices.tolist()) for p in probs]
        stable = set.intersection(*tops)
        mean = probs.mean(0)
        ranked = sorted(stable, key=lambda t: -float(mean[t]))[:keep]
        out.append({"scale": float(scale), "tokens": ranked, "probs": [float(mean[t]) for t in ranked],
                    "mass": float(mean[ranked].sum()) if ranked else 0.0})
    return out


# -------------------------------------------------------------------- relevance
def _norm_word(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def relevant_token(token: str, keywords: Sequence[str]) -> bool:
    """Whether a token matches a keyword by stem (offline token relevance)."""
    t = _norm_word(token)
    if len(t) < 3:
        return False
    for kw in keywords:
        for word in re.split(r"\s+", kw):
            k = _norm_word(word)
            if len(k) < 3:
                continue
            stem = k[: max(4, len(k) - 3)]
            if t == k or (len(t) >= 4 and (k.startswith(t) or t.startswith(stem))):
                return True
    return False


def styled_token(token: str, style: str | None) -> bool:
    """Whether a token itself shows a style a ground truth names (``uppercase``: two or more letters, all capitals)."""
    if style == "uppercase":
        letters = [c for c in token if c.isalpha()]
        return len(letters) >= 2 and all(c.isupper() for c in letters)
    return False


def token_relevance(tokens: Sequence[str], ground_truth: dict[str, Any] | None) -> dict[str, Any] | None:
    """Share of ``tokens`` related to the ground truth (None when it names nothing to match).

    A token is relevant when it matches one of the ground truth's keywords by stem or, for a style
    organism whose ``token_style`` is set (e.g. ``uppercase``), when the token shows that style.
    """
    gt = ground_truth or {}
    keywords = list(gt.get("keywords") or [])
    style = gt.get("token_style")
    if (not keywords and not style) or not tokens:
        return None
    flags = [relevant_token(t, keywords) or styled_token(t, style) for t in tokens]
    return {"share": float(np.mean(flags)), "relevant": [t for t, f in zip(tokens, flags, strict=True) if f],
            "n": len(tokens), "producer": relevance_producer(gt)}


def relevance_producer(ground_truth: dict[str, Any] | None) -> str:
    """How :func:`token_relevance` judges tokens for this ground truth (recorded with every share)."""
    style = (ground_truth or {}).get("token_style")
    return "offline:keywords" + (f"+{style}_tokens" if style else "")


# --------------------------------------------------------------------- coherence
def repetition_rate(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(max(0, len(words) - n + 1))]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def base_perplexity(base: Any, prompts: Sequence[str], texts: Sequence[str]) -> list[float]:
    """Perplexity of each reply under the base model (given its chat-rendered prompt)."""
    lps = base.score([base.chat_text(p) for p in prompts], list(texts))
    return [math.exp(-float(x.mean())) if len(x) else float("inf") for x in lps]


def mean_differences(store: Any, layer: int, k: int) -> dict[str, Any]:
    """Mean diff/base/ft vectors at positions < k, and the mean ft/base norms at positions >= k."""
    d = store.d_model
    sums = {s: np.zeros((k, d)) for s in ("diff", "base", "ft")}
    counts = np.zeros(k)
    norm_ft, norm_base, n_norm = 0.0, 0.0, 0
    pos_all = store.positions()
    for chunk in store.iter_chunks(layer):
        pos = pos_all[chunk.start : chunk.stop]
        for p in range(k):
            m = pos == p
            if m.any():
                sums["base"][p] += chunk.base[m].sum(0, dtype=np.float64)
                sums["ft"][p] += chunk.finetuned[m].sum(0, dtype=np.float64)
                sums["diff"][p] += chunk.diff[m].sum(0, dtype=np.float64)
                counts[p] += m.sum()
        late = pos >= k
        if late.any():
            norm_ft += float(np.linalg.norm(chunk.finetuned[late].astype(np.float64), axis=1).sum())
            norm_base += float(np.linalg.norm(chunk.base[late].astype(np.float64), axis=1).sum())
            n_norm += int(late.sum())
    if n_norm == 0:  # texts too short: fall back to all positions
        for chunk in store.iter_chunks(layer):
            norm_ft += float(np.linalg.norm(chunk.finetuned.astype(np.float64), axis=1).sum())
            norm_base += float(np.linalg.norm(chunk.base.astype(np.float64), axis=1).sum())
            n_norm += chunk.base.shape[0]
    c = np.maximum(counts, 1)[:, None]
    return {"diff": sums["diff"] / c, "base": sums["base"] / c, "ft": sums["ft"] / c, "counts": counts,
            "norm_ft": norm_ft / max(n_norm, 1), "norm_base": norm_base / max(n_norm, 1)}


def lens_tokens(lm: Any, vector: np.ndarray, top_k: int) -> list[tuple[str, float]]:
    """Top tokens (string, probability) of the logit lens of ``vector``."""
    lp = lm.logit_lens(torch.as_tensor(vector, dtype=torch.float32))
    vals, idx = torch.topk(lp, top_k)
    return list(zip(lm.token_strings(idx.tolist()), vals.exp().tolist(), strict=True))


def lens_delta_tokens(
    lm: Any, mean_ft: np.ndarray, mean_base: np.ndarray, top_k: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Top tokens (string, log-prob gain) of lens(mean finetuned) - lens(mean base), and of its negation.

    The lens of the raw difference vector is easily dominated by rare tokens whose unembedding
    happens to align with it; comparing the lens of the two mean activations asks instead which
    tokens the finetuned model's mean state favours over the base model's (and, negated, the reverse).
    """
    lp = lm.logit_lens(torch.as_tensor(np.stack([mean_ft, mean_base]), dtype=torch.float32))
    delta = lp[0] - lp[1]
    out = []
    for d in (delta, -delta):
        vals, idx = torch.topk(d, top_k)
        out.append(list(zip(lm.token_strings(idx.tolist()), vals.tolist(), strict=True)))
    return out[0], out[1]


def search_strength(
    lm: Any, base: Any, layer: int, vector: torch.Tensor, prompts: Sequence[str], cfg: ADLConfig,
    seed: int = 0,
) -> tuple[float, list[dict[str, Any]]]:
    """Binary search for the largest steering strength whose generations stay coherent."""
    gen = GenerationConfig(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, n=cfg.steering_samples,
                           seed=seed, batch_size=cfg.batch_size)

    def sample(alpha: float) -> list[str]:
        with steer(lm, layer, vector, alpha):
            outs = lm.generate(list(prompts), gen)
        return [g.text for per in outs for g in per]

    ps = [p for p in prompts for _ in range(cfg.steering_samples)]
    ref = sample(0.0)
    ref_ppl = float(np.median(base_perplexity(base, ps, ref)))
    trace = []

    def coherent(alpha: float) -> bool:
        texts = sample(alpha)
        ppl = base_perplexity(base, ps, texts)
        rep = [repetition_rate(t) for t in texts]
        ok = [bool(t.strip()) and q <= cfg.max_ppl_factor * ref_ppl and r <= cfg.max_repetition
              for t, q, r in zip(texts, ppl, rep, strict=True)]
        if coherence_grader is not None:
            ok = [o and coherence_grader(p, t) for o, p, t in zip(ok, ps, texts, strict=True)]
        passed = float(np.mean(ok)) >= 0.75
        trace.append({"alpha": alpha, "median_ppl": float(np.median(ppl)), "ref_ppl": ref_ppl,
                      "repetition": float(np.mean(rep)), "coherent_share": float(np.mean(ok)), "passed": passed})
        return passed

    lo, hi = 0.0, cfg.max_strength
    for _ in range(cfg.steering_search_steps):
        mid = (lo + hi) / 2
        if coherent(mid):
            lo = mid
        else:
            hi = mid
    return lo, trace


def _relevance_row(layer: int, position: int, readout: str, tokens: Sequence[str],
                   gt: dict[str, Any] | None) -> dict[str, Any]:
    rel = token_relevance([t for t in tokens if t], gt)
    return {"layer": layer, "position": position, "readout": readout,
            **({"share": rel["share"], "relevant": ", ".join(rel["relevant"])} if rel
               else {"share": None, "relevant": ""})}


def _readouts(
    ft: Any, layer: int, means: dict[str, Any], cfg: ADLConfig, gt: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Logit lens (of the difference and of the two means) and patchscope of one layer, with relevance rows.

    Lens rows carry ``readout``: ``lens`` (the difference vector through the finetuned model's
    final norm and head; ``value`` = probability) or ``lens_delta`` (lens of the mean finetuned
    minus lens of the mean base activation; ``value`` = log-probability gain).
    """
    rows, relevance, patch_rows = [], [], []
    for p in range(cfg.k):
        v = means["diff"][p]
        norm_v = float(np.linalg.norm(v))
        if norm_v == 0:
            continue
        up, down = lens_delta_tokens(ft, means["ft"][p], means["base"][p], cfg.top_k)
        readouts = [
            ("lens", "+", lens_tokens(ft, v, cfg.top_k)),
            ("lens", "-", lens_tokens(ft, -v, cfg.top_k)),
            ("lens_delta", "+", up),
            ("lens_delta", "-", down),
        ]
        for readout, sign, toks in readouts:
            rows += [{"layer": layer, "readout": readout, "position": p, "sign": sign, "rank": rank, "token": t,
                      "value": val} for rank, (t, val) in enumerate(toks)]
            if sign == "+":
                relevance.append(_relevance_row(layer, p, readout, [t for t, _ in toks], gt))
        unit = torch.as_tensor(v / norm_v, dtype=torch.float32)
        for sign, s in (("+", 1.0), ("-", -1.0)):
            for entry in patchscope(ft, layer, s * unit * means["norm_ft"], cfg.patchscope_scales,
                                    top=cfg.patchscope_top, keep=cfg.top_k):
                patch_rows.append({"layer": layer, "position": p, "sign": sign, "scale": entry["scale"],
                                   "mass": entry["mass"], "tokens": " | ".join(ft.token_strings(entry["tokens"]))})
        best = max((r for r in patch_rows if r["position"] == p and r["sign"] == "+"),
                   key=lambda r: r["mass"], default=None)
        if best is not None:
            relevance.append(_relevance_row(layer, p, f"patchscope@{best['scale']}", best["tokens"].split(" | "), gt))
    return rows, relevance, patch_rows


def _steering(
    pair: Any, layer: int, means: dict[str, Any], cfg: ADLConfig, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Steered vs unsteered generations at the searched strength, and the search trace."""
    lm_s = pair.side(cfg.steering_side)
    prompts = list(STEERING_PROMPTS[: cfg.steering_prompts])
    rows: list[dict[str, Any]] = []
    search: list[dict[str, Any]] = []
    for p in cfg.steering_positions:
        if p >= cfg.k:
            continue
        v = means["diff"][p]
        nv = float(np.linalg.norm(v))
        if nv == 0:
            search.append({"position": p, "alpha": 0.0, "note": "zero difference: nothing to steer"})
            continue
        vec = torch.as_tensor(v / nv * means["norm_ft"], dtype=torch.float32)
        alpha, trace = search_strength(lm_s, pair.base, layer, vec, prompts, cfg, seed)
        search += [{"position": p, **t} for t in trace]
        gen = GenerationConfig(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=seed,
                               batch_size=cfg.batch_size)
        plain = lm_s.generate(prompts, gen)
        with steer(lm_s, layer, vec, alpha):
            steered = lm_s.generate(prompts, gen)
        rows += [{"position": p, "alpha": alpha, "prompt": pr, "unsteered": plain[i][0].text,
                  "steered": steered[i][0].text} for i, pr in enumerate(prompts)]
    return rows, search


@register_method
class ADLMethod(DiffMethod):
    """Activation Difference Lens: logit lens, patchscope and steering of mean activation differences."""

    name = "adl"
    title = "Activation Difference Lens: what the mean activation difference encodes"
    description = "logit lens, patchscope and steering with the mean ft-base difference at the first positions"
    Config = ADLConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {
        "n_texts": 64, "n_tokens": 16, "steering_prompts": 2, "steering_samples": 2,
        "steering_search_steps": 2, "max_new_tokens": 24, "patchscope_scales": [1.0, 4.0],
    }
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True  # the steering search scores finetuned samples with the base model

    def run(self, ctx: MethodContext) -> MethodResult:
        """Mean differences, lens, patchscope and relevance per layer; steering at ``steering_layer``."""
        cfg: ADLConfig = ctx.config
        pair = ctx.pair
        n_texts = cfg.n_texts or (10000 if torch.cuda.is_available() else 200)
        corpus = load_corpus(cfg.corpus, pair, limit=n_texts, seed=ctx.run_config.seed, cache_dir=ctx.artifact_dir)
        ft = pair.finetuned
        layers = sorted(set(ft.resolve_layers(cfg.layers)))
        steer_layer = ft.resolve_layer(cfg.steering_layer)
        if cfg.steering and steer_layer not in layers:
            raise ConfigError(f"steering_layer {cfg.steering_layer} (block {steer_layer}) is not among the layers "
                              f"read out ({layers}).", hint="add it to method.adl.layers")
        store = open_store(pair, corpus, layers, ctx.run.path / "activations",
                           max_tokens=max(cfg.n_tokens, cfg.k), dtype=cfg.dtype,  # type: ignore[arg-type]
                           batch_size=cfg.batch_size, shard_tokens=ctx.run_config.compute.activation_shard_tokens)
        art = ctx.artifact_dir
        gt = pair.ground_truth
        means_by_layer = {layer: mean_differences(store, layer, cfg.k) for layer in layers}
        np.savez(art / "mean_differences.npz",
                 **{f"layer{layer}_{k}": np.asarray(v) for layer, m in means_by_layer.items() for k, v in m.items()})
        rows: list[dict[str, Any]] = []
        relevance: list[dict[str, Any]] = []
        patch_rows: list[dict[str, Any]] = []
        for layer, means in means_by_layer.items():
            lens_rows, rel_rows, p_rows = _readouts(ft, layer, means, cfg, gt)
            rows += lens_rows
            relevance += rel_rows
            patch_rows += p_rows
        write_parquet(art / "logit_lens.parquet", pd.DataFrame(rows))
        write_parquet(art / "patchscope.parquet",
                      pd.DataFrame(patch_rows) if patch_rows else pd.DataFrame({"position": []}))
        write_parquet(art / "relevance.parquet", pd.DataFrame(relevance))
        steering_rows: list[dict[str, Any]] = []
        search: list[dict[str, Any]] = []
        if cfg.steering:
            steering_rows, search = _steering(pair, steer_layer, means_by_layer[steer_layer], cfg, ctx.run_config.seed)
        write_json(art / "steering.json", {"layer": steer_layer, "samples": steering_rows, "search": search})
        by_layer: dict[str, Any] = {}
        pos = min(1, cfg.k - 1)  # position 0 is the attention sink: its difference is mostly sink activations
        scored: list[tuple[float, int, str]] = []
        for layer, means in means_by_layer.items():
            entry: dict[str, Any] = {
                "norm_ft": means["norm_ft"],
                "mean_diff_norms": [float(np.linalg.norm(means["diff"][p])) for p in range(cfg.k)],
            }
            for readout in READOUTS:
                shares = [r["share"] for r in relevance if r["layer"] == layer and r["readout"] == readout
                          and r["position"] >= pos and r.get("share") is not None]
                entry[f"{readout}_relevance"] = float(np.mean(shares)) if shares else None
                entry[f"top_{readout}"] = [r["token"] for r in rows if r["layer"] == layer and r["readout"] == readout
                                           and r["position"] == pos and r["sign"] == "+"][:10]
                if shares:
                    scored.append((float(np.mean(shares)), layer, readout))
            by_layer[str(layer)] = entry
        best = max(scored) if scored else (None, layers[-1], "lens_delta")
        first = means_by_layer[layers[0]]
        headline: dict[str, Any] = {
            "layers": layers, "k": cfg.k, "n_texts": store.n_sequences,
            "norm_ft": first["norm_ft"],
            "mean_diff_norm_pos0": float(np.linalg.norm(first["diff"][0])),
            "by_layer": by_layer,
            "lens_relevance": best[0],
            "lens_relevance_layer": best[1] if scored else None,
            "lens_relevance_readout": best[2] if scored else None,
            "relevance_producer": relevance_producer(gt) if scored else None,
            "top_lens": by_layer[str(best[1])][f"top_{best[2]}"],
        }
        if steering_rows:
            headline["steering_alpha"] = steering_rows[0]["alpha"]
            headline["steering_layer"] = steer_layer
        rel = lambda n: str((art / n).relative_to(ctx.run.path))  # noqa: E731
        summary = (
            f"{store.n_sequences} texts ({corpus.name}), layers {layers}: {best[2]} of +diff at position {pos}, "
            f"layer {best[1]}: {', '.join(repr(t) for t in headline['top_lens'][:6])}"
            + (f"; token relevance {best[0]:.0%} (positions {pos}-{cfg.k - 1}, the best layer and readout)"
               if scored else "")
            + "."
        )
        return MethodResult(
            headline=headline,
            summary=summary,
            data={"corpus": corpus.describe()},
            artifacts=[rel(n) for n in ("logit_lens.parquet", "patchscope.parquet", "relevance.parquet",
                                        "steering.json", "mean_differences.npz")],
            corpus=corpus.name,
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Lens tables per layer and position, patchscope, relevance and steered vs unsteered samples."""
        import json

        h = result.headline
        section.text(result.summary)
        section.figures({"layers": ", ".join(map(str, h["layers"])), "texts": h["n_texts"],
                         "||mean diff|| @0 (first layer)": h["mean_diff_norm_pos0"],
                         "typical ft norm (first layer)": h["norm_ft"],
                         "best token relevance": h["lens_relevance"] if h["lens_relevance"] is not None else "n/a",
                         "at layer": h.get("lens_relevance_layer") or "n/a",
                         "readout": h.get("lens_relevance_readout") or "n/a"})
        lens = pd.read_parquet(run.path / result.artifacts[0])
        titles = {"lens_delta": "Lens of the mean finetuned minus the mean base activation",
                  "lens": "Logit lens of the mean difference vector"}
        for layer in h["layers"]:
            for readout in ("lens_delta", "lens"):
                part = lens[(lens.layer == layer) & (lens.readout == readout)] if len(lens) else lens
                if not len(part):
                    continue
                rel = h["by_layer"][str(layer)].get(f"{readout}_relevance")
                section.heading(f"{titles[readout]}, layer {layer}, by position"
                                + (f" (token relevance {rel:.0%})" if rel is not None else ""))
                for sign, rows_shown in (("+", 15), ("-", 8)):
                    wide = part[part.sign == sign].pivot_table(index="rank", columns="position", values="token",
                                                               aggfunc="first")
                    wide.columns = [f"pos {c} ({sign}diff)" for c in wide.columns]
                    section.table(wide.reset_index(drop=True), max_rows=rows_shown)
        patch = pd.read_parquet(run.path / result.artifacts[1])
        if len(patch):
            section.heading("Patchscope (tokens stable across identity prompts)")
            section.table(patch[patch.sign == "+"].sort_values(["layer", "position", "scale"])[
                ["layer", "position", "scale", "mass", "tokens"]], max_rows=30)
        rel_df = pd.read_parquet(run.path / result.artifacts[2])
        if len(rel_df) and rel_df["share"].notna().any():
            section.heading(f"Token relevance to the ground truth ({h.get('relevance_producer') or 'offline'})")
            section.table(rel_df)
        steering = json.loads((run.path / result.artifacts[3]).read_text())
        if steering["search"]:
            section.heading(f"Steering strength search (layer {steering.get('layer')})")
            section.table(pd.DataFrame(steering["search"]))
        if steering["samples"]:
            section.heading("Steered vs unsteered generations")
            section.side_by_side(
                [{"prompt": f"{s['prompt']} (position {s['position']}, alpha {s['alpha']:.2f})",
                  "unsteered": s["unsteered"], "steered": s["steered"]} for s in steering["samples"]],
                "unsteered", "steered")
