r"""``causal``: does the mean-difference direction matter to the finetuned model's loss?

The direction is the unit mean difference h_ft - h_base over positions 1..k-1 of a corpus
(position 0, the attention sink, is left out as adl leaves it out) at one layer (the middle by
default), computed from the activation store chosen by the direction settings causal shares with
``adl`` (:class:`lmdiff.interp.directions.DirectionConfig`: equal settings, the defaults
included, give one store for both methods). In the finetuned model, a forward hook on that
layer's block output then either

* **ablates** the projection on the unit direction u: ``h <- h - (h.u) u``, or
* **swaps it to the base value**: ``h <- h - (h.u) u + (h_base.u) u``, where ``h_base`` is the
  base model's hidden state at the same token (computed beforehand on the same tokens),

and the change in the finetuned model's mean per-token loss (NLL) is measured on

* (a) the organism's own data (corpus ``organism`` when the pair has one; otherwise the chat
  prompts with the finetuned model's own greedy replies, scored on the reply tokens), and
* (b) generic text (corpus ``generic``),

against the same interventions along random unit directions with the real direction's projected
variance under the covariance of single tokens' differences (not isotropic: isotropic directions
mostly point where activations barely vary, a control any direction beats) and along directions
drawn from single tokens' differences h_ft - h_base at positions >= 1.
A direction that carries the finetune should raise the loss on (a) more than random
directions do, and more on (a) than on (b). Every loss change carries a bootstrap CI over texts
(the text is the unit; clean and edited losses are resampled together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from lmdiff.config import GenerationConfig
from lmdiff.corpora import load_corpus, organism_data_path
from lmdiff.data.prompts import load_prompts
from lmdiff.interp.directions import (
    DirectionConfig,
    difference_covariance,
    matched_variance_directions,
    mean_differences,
    open_direction_store,
    projected_variance,
    sink_free_direction,
)
from lmdiff.interp.hooks import layer_hook
from lmdiff.io import read_json, write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodConfig, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

MODES = ("ablate", "swap")
CORPORA = ("own", "generic")


class CausalConfig(DirectionConfig, MethodConfig):
    """Settings of the causal method.

    The direction's store settings (``corpus``, ``n_texts``, ``k``, ``n_tokens``, ``layers``,
    ``dtype``) are :class:`~lmdiff.interp.directions.DirectionConfig`'s, shared with adl: with
    equal values (the defaults included) the two methods read one activation store. ``layer`` is
    added to the stored layers.
    """

    layer: float | int = Field(0.5, description="layer whose output is edited (default: the middle, adl's "
                                                 "steering layer)")
    position: int | None = Field(None, ge=1, description="use this position's mean difference only "
                                                         "(default: the mean over positions 1..k-1; position 0, "
                                                         "the attention sink, is never used)")
    modes: list[str] = Field(default_factory=lambda: list(MODES), description="ablate and/or swap")
    n_random: int = Field(8, ge=1, description="random unit directions with the real direction's projected "
                                               "variance under the per-token difference covariance")
    n_diff_random: int = Field(8, ge=0, description="random directions drawn from per-token differences")
    n_boot: int = Field(2000, ge=100, description="bootstrap resamples of texts for the loss-change CIs")
    ci: float = Field(0.95, gt=0, lt=1, description="confidence level of the loss-change CIs")
    eval_texts: int = Field(24, ge=1, description="texts per evaluation corpus")
    max_tokens: int = Field(64, ge=2, description="tokens per evaluation text")
    reply_tokens: int = Field(48, ge=1, description="reply length when the own corpus is the ft's own replies")
    generic_corpus: str = Field("generic", description="generic-text corpus")


@dataclass
class EvalSet:
    """Token sequences whose targets from index ``starts[i]`` on are scored.

    Attributes:
        name: the corpus name recorded in results.
        seqs: token ids.
        starts: index of the first scored target token in each sequence (>= 1).
    """

    name: str
    seqs: list[list[int]]
    starts: list[int]

    @property
    def n_targets(self) -> int:
        """Number of scored tokens."""
        return sum(len(s) - st for s, st in zip(self.seqs, self.starts, strict=True))


# ------------------------------------------------------------------ interventions
def project_out(h: torch.Tensor, u: torch.Tensor, replacement: torch.Tensor | None = None) -> torch.Tensor:
    """Remove the component of ``h`` [..., D] along the unit vector ``u``; put ``replacement`` [...] there instead.

    Args:
        h: hidden states.
        u: a unit direction [D].
        replacement: the new projection at each position (None: zero, i.e. ablation).

    Returns:
        The edited hidden states in ``h``'s dtype (computed in float32).
    """
    hf = h.float()
    uf = u.to(hf.device, torch.float32)
    coef = -(hf @ uf)
    if replacement is not None:
        coef = coef + replacement.to(hf.device, torch.float32)
    return (hf + coef.unsqueeze(-1) * uf).to(h.dtype)


def _batches(n: int, batch_size: int) -> list[list[int]]:
    return [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]


def _pad_hidden(hidden: Sequence[torch.Tensor], rows: Sequence[int]) -> torch.Tensor:
    """Right-padded [B, T, D] stack of per-sequence hidden states."""
    width = max(hidden[r].shape[0] for r in rows)
    out = torch.zeros(len(rows), width, hidden[rows[0]].shape[1])
    for i, r in enumerate(rows):
        out[i, : hidden[r].shape[0]] = hidden[r]
    return out


def base_hidden(base: LanguageModel, evalset: EvalSet, layer: int, batch_size: int) -> list[torch.Tensor]:
    """The base model's block-``layer`` output on every sequence (float32, CPU), for swap-to-base."""
    return [d[layer] for d in base.hidden_states(evalset.seqs, [layer], batch_size=batch_size)]


def evaluate_loss(
    lm: LanguageModel,
    evalset: EvalSet,
    batch_size: int = 8,
    layer: int | None = None,
    direction: torch.Tensor | None = None,
    base_states: Sequence[torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL and scored-token count per sequence, optionally with an intervention at ``layer``.

    Args:
        lm: the (finetuned) LanguageModel.
        evalset: the sequences and the first scored target of each.
        batch_size: sequences per forward pass.
        layer: block whose output is edited (with ``direction``).
        direction: a unit vector [D]; None runs the clean model.
        base_states: per-sequence base hidden states at ``layer``: given, the projection on
            ``direction`` is swapped to the base model's; None ablates it (sets it to zero).

    Returns:
        (nll_sum, n_tokens), float64 and int64 arrays of length ``len(evalset.seqs)``.
    """
    n = len(evalset.seqs)
    nll = np.zeros(n, dtype=np.float64)
    count = np.zeros(n, dtype=np.int64)
    state: dict[str, Any] = {}

    def edit(h: torch.Tensor) -> torch.Tensor:
        assert direction is not None
        repl = None
        if base_states is not None:
            hb = state["base"]
            repl = hb[:, : h.shape[1]].to(h.device, torch.float32) @ direction.to(h.device, torch.float32)
        return project_out(h, direction, repl)

    def run_batches() -> None:
        for rows in _batches(n, batch_size):
            seqs = [evalset.seqs[r] for r in rows]
            if base_states is not None:
                state["base"] = _pad_hidden(base_states, rows)
            (batch,) = list(lm.iter_forward(seqs, batch_size=len(seqs), sort_by_length=False))
            assert batch.logits is not None
            logits = batch.logits.float()
            for i, r in enumerate(rows):
                s, length = evalset.starts[r], len(seqs[i])
                if s >= length:
                    continue
                target = batch.input_ids[i, s:length]
                losses = torch.nn.functional.cross_entropy(logits[i, s - 1 : length - 1], target, reduction="sum")
                nll[r] = float(losses)
                count[r] = length - s

    if direction is None:
        run_batches()
    else:
        if layer is None:
            raise ValueError("an intervention needs a layer")
        with layer_hook(lm, layer, edit):
            run_batches()
    return nll, count


def random_directions(d: int, n: int, seed: int) -> torch.Tensor:
    """``n`` isotropic random unit vectors [n, d] (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, d, generator=gen, dtype=torch.float64)
    out: torch.Tensor = (v / v.norm(dim=1, keepdim=True)).float()
    return out


def diff_directions(store: Any, layer: int, n: int, seed: int) -> torch.Tensor:
    """``n`` unit directions drawn from single tokens' differences h_ft - h_base in ``store`` (positions >= 1)."""
    eligible = np.flatnonzero(store.positions() >= 1) if n and store.n_tokens else np.zeros(0, dtype=np.int64)
    if len(eligible) == 0:
        return torch.zeros(0, store.d_model)
    rng = np.random.default_rng(seed)
    picks = rng.choice(eligible, size=min(len(eligible), 4 * n), replace=False)
    out = []
    for t in picks:
        v = store.read("diff", layer, int(t), int(t) + 1)[0].astype(np.float64)
        norm = float(np.linalg.norm(v))
        if norm > 1e-8:
            out.append(v / norm)
        if len(out) == n:
            break
    return torch.as_tensor(np.array(out), dtype=torch.float32).reshape(-1, store.d_model)


def loss_change_ci(
    nll: np.ndarray, count: np.ndarray, edited_nll: np.ndarray, edited_count: np.ndarray,
    n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap CI over texts of the change in mean per-token loss (edited minus clean).

    The text is the resampling unit: each replicate draws texts with replacement and recomputes
    both token-weighted losses on the same draw (paired), so the CI reflects which texts were
    scored, not token-level noise within them.

    Returns:
        (low, high, replicates [n_boot]).
    """
    n = len(nll)
    if n == 0:
        return float("nan"), float("nan"), np.zeros(0)
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    clean = (w @ nll) / np.maximum(w @ count, 1)
    edited = (w @ edited_nll) / np.maximum(w @ edited_count, 1)
    reps = edited - clean
    alpha = (1.0 - ci) / 2
    return float(np.quantile(reps, alpha)), float(np.quantile(reps, 1 - alpha)), reps


def compare(real: float, controls: Sequence[float]) -> dict[str, float | None]:
    """Mean, sd (ddof=1), z-score and empirical percentile of ``real`` among ``controls``."""
    c = np.asarray(list(controls), dtype=np.float64)
    if len(c) == 0:
        return {"mean": None, "sd": None, "z": None, "percentile": None}
    mean = float(c.mean())
    sd = float(c.std(ddof=1)) if len(c) > 1 else 0.0
    z = (real - mean) / sd if sd > 0 else None
    pct = float(((c < real).sum() + 0.5 * (c == real).sum()) / len(c))
    return {"mean": mean, "sd": sd, "z": z, "percentile": pct}


# ------------------------------------------------------------------ corpora
def own_evalset(ctx: MethodContext[CausalConfig], cfg: CausalConfig) -> EvalSet:
    """The organism's data when the pair has it, else chat prompts with the finetuned model's own replies."""
    pair = ctx.pair
    seed = ctx.run_config.seed
    if organism_data_path(pair) is not None:
        corpus = load_corpus("organism", pair, limit=cfg.eval_texts, seed=seed)
        seqs = [s for s in corpus.encode(pair.base, max_tokens=cfg.max_tokens) if len(s) >= 2]
        return EvalSet("organism", seqs, [1] * len(seqs))

    prompts = load_prompts("chat", limit=cfg.eval_texts, seed=seed)
    cache = ctx.artifact_dir / f"ft_replies_{prompts.content_hash[:12]}_{cfg.reply_tokens}_{seed}.json"
    ft = pair.finetuned
    if cache.is_file():
        replies = [str(r) for r in read_json(cache)]
    else:
        gen = GenerationConfig.model_validate({"temperature": 0.0, "max_new_tokens": cfg.reply_tokens, "seed": seed,
                                               "batch_size": cfg.batch_size})
        gens = ft.generate(prompts.texts, gen)
        replies = [g[0].text for g in gens]
        write_json(cache, replies)
    seqs, starts = [], []
    for p, r in zip(prompts.texts, replies, strict=True):
        prompt_ids = ft.encode_chat(p)
        reply_ids = ft.encode(r, add_special_tokens=False)[: cfg.reply_tokens]
        if reply_ids and prompt_ids:
            seqs.append(prompt_ids + reply_ids)
            starts.append(len(prompt_ids))
    return EvalSet("chat+ft_replies", seqs, starts)


def generic_evalset(ctx: MethodContext[CausalConfig], cfg: CausalConfig) -> EvalSet:
    """Generic text, scored on every token after the first."""
    corpus = load_corpus(cfg.generic_corpus, ctx.pair, limit=cfg.eval_texts, seed=ctx.run_config.seed,
                         cache_dir=ctx.corpus_cache_dir)
    seqs = [s for s in corpus.encode(ctx.pair.base, max_tokens=cfg.max_tokens) if len(s) >= 2]
    return EvalSet(corpus.name, seqs, [1] * len(seqs))


@register_method
class CausalMethod(DiffMethod[CausalConfig]):
    """Ablate or swap-to-base the mean-difference direction and measure the finetuned loss change."""

    name = "causal"
    title = "Causal check: does the mean-difference direction carry the finetune?"
    description = ("ablate / swap-to-base the projection on the mean ft-base difference direction and compare the "
                   "loss change on the organism's data vs generic text with random directions")
    Config = CausalConfig
    needs_shared_tokenizer = True
    white_box = True

    def run(self, ctx: MethodContext[CausalConfig]) -> MethodResult:
        """Direction from the shared store, then clean and edited losses on both corpora."""
        cfg = ctx.config
        pair = ctx.pair
        modes = [m for m in cfg.modes if m in MODES]
        if not modes:
            raise ValueError(f"causal: modes must be among {MODES}, got {cfg.modes}")
        if pair.is_self_pair:
            return self._skipped("self-pair: both sides are the same model, so the mean difference is zero; "
                                 "nothing to ablate (skipped).")
        layer = pair.finetuned.resolve_layer(cfg.layer)
        corpus = cfg.load_corpus(pair, ctx.run_config.seed, cache_dir=ctx.corpus_cache_dir)
        store = open_direction_store(cfg, pair, corpus, cfg.store_layers(pair, layer), ctx.run.path / "activations",
                                     shard_tokens=ctx.run_config.compute.activation_shard_tokens,
                                     executor=ctx.executor)
        means = mean_differences(store, layer, max(cfg.k, 2, (cfg.position or 0) + 1))
        try:
            vec = sink_free_direction(means, cfg.position)
        except ValueError as e:
            return self._skipped(f"{e} (skipped).", layer=layer)
        norm = float(np.linalg.norm(vec))
        if norm <= 1e-9 * max(float(means["norm_ft"]), 1.0):
            return self._skipped(f"the mean difference at layer {layer} is zero (norm {norm:.3g}); nothing to "
                                 "ablate (skipped).", layer=layer)
        real = torch.as_tensor(vec / norm, dtype=torch.float32)
        d = real.shape[0]
        seed = ctx.run_config.seed
        cov = difference_covariance(store, layer)
        target = float(projected_variance(cov, real.numpy())[0])
        matched = torch.as_tensor(matched_variance_directions(cov, target, cfg.n_random, seed + 1),
                                  dtype=torch.float32) if d else random_directions(d, cfg.n_random, seed + 1)
        controls: list[tuple[str, int, torch.Tensor]] = [("real", 0, real)]
        controls += [("random", i, u) for i, u in enumerate(matched)]
        controls += [("diff_random", i, u) for i, u in enumerate(diff_directions(store, layer, cfg.n_diff_random,
                                                                                    seed + 2))]
        evalsets = {"own": own_evalset(ctx, cfg), "generic": generic_evalset(ctx, cfg)}
        proj_var = projected_variance(cov, torch.stack([u for _, _, u in controls]).numpy().astype(np.float64))
        rows: list[dict[str, Any]] = []
        clean: dict[str, float] = {}
        real_reps: dict[tuple[str, str], np.ndarray] = {}
        for key, es in evalsets.items():
            if not es.seqs:
                continue
            base_states = base_hidden(pair.base, es, layer, cfg.batch_size) if "swap" in modes else None
            ft = pair.finetuned
            nll, cnt = evaluate_loss(ft, es, cfg.batch_size)
            clean[key] = float(nll.sum() / max(cnt.sum(), 1))
            for mode in modes:
                for j, (kind, i, u) in enumerate(controls):
                    e_nll, e_cnt = evaluate_loss(ft, es, cfg.batch_size, layer, u,
                                                 base_states if mode == "swap" else None)
                    loss = float(e_nll.sum() / max(e_cnt.sum(), 1))
                    lo, hi, reps = loss_change_ci(nll, cnt, e_nll, e_cnt, cfg.n_boot, cfg.ci, seed + 3)
                    if kind == "real":
                        real_reps[(mode, key)] = reps
                    rows.append({"corpus": key, "corpus_name": es.name, "mode": mode, "kind": kind, "index": i,
                                 "loss": loss, "delta": loss - clean[key], "delta_ci_low": lo, "delta_ci_high": hi,
                                 "proj_var": float(proj_var[j]), "cos_real": float(u @ real)})
        df = pd.DataFrame(rows)
        art = ctx.artifact_dir
        write_parquet(art / "causal_losses.parquet", df)
        np.save(art / "direction.npy", real.numpy())
        summary_rows, headline = self._summarise(df, modes, clean)
        alpha = (1.0 - cfg.ci) / 2
        for mode in modes:
            if (mode, "own") in real_reps and (mode, "generic") in real_reps:
                spec = real_reps[(mode, "own")] - real_reps[(mode, "generic")]  # independent text sets
                headline[f"{mode}_specificity_ci"] = [float(np.quantile(spec, alpha)),
                                                      float(np.quantile(spec, 1 - alpha))]
        headline.update({"ci": cfg.ci, "ci_unit": "text", "proj_var_real": target,
                         "random_control": "matched projected variance (per-token difference covariance)",
                         "layer": layer, "direction_norm": norm, "norm_ft": float(means["norm_ft"]),
                         "direction_position": (cfg.position if cfg.position is not None
                                                else f"mean 1..{max(cfg.k, 2) - 1}"),
                         "direction_corpus": corpus.name, "direction_texts": store.n_sequences,
                         "own_corpus": evalsets["own"].name, "generic_corpus": evalsets["generic"].name,
                         "n_eval_texts": {k: len(v.seqs) for k, v in evalsets.items()},
                         "n_eval_tokens": {k: v.n_targets for k, v in evalsets.items()},
                         "n_random": cfg.n_random, "n_diff_random": sum(k == "diff_random" for k, _, _ in controls),
                         "skipped": False})
        write_parquet(art / "causal_summary.parquet", pd.DataFrame(summary_rows))
        parts = []
        for mode in modes:
            o, g = headline.get(f"{mode}_own_delta"), headline.get(f"{mode}_generic_delta")
            pct = headline.get(f"{mode}_own_percentile")
            oci = headline.get(f"{mode}_own_delta_ci")
            if o is not None and g is not None:
                ci_txt = f" [{cfg.ci:.0%} CI over texts {oci[0]:+.3g}, {oci[1]:+.3g}]" if oci else ""
                parts.append(f"{mode}: delta loss {o:+.4g}{ci_txt} on {evalsets['own'].name} vs {g:+.4g} on "
                             "generic text"
                             + (f" (percentile {pct:.0%} among random directions)" if pct is not None else ""))
        def rel(n: str) -> str:
            return str((art / n).relative_to(ctx.run.path))

        return MethodResult(
            headline=headline,
            summary=(f"Layer {layer}, mean-difference direction (norm {norm:.4g}, {store.n_sequences} texts of "
                     f"{corpus.name}); " + "; ".join(parts) + "."),
            data={"direction_corpus": corpus.describe(), "summary": summary_rows},
            artifacts=[rel("causal_losses.parquet"), rel("causal_summary.parquet"), rel("direction.npy")],
            corpus=f"{evalsets['own'].name}+{evalsets['generic'].name}",
        )

    @staticmethod
    def _skipped(reason: str, **extra: Any) -> MethodResult:
        return MethodResult(headline={"skipped": True, "reason": reason, **extra}, summary=reason,
                            data={"skipped": True}, corpus="none")

    @staticmethod
    def _summarise(df: pd.DataFrame, modes: Sequence[str],
                   clean: dict[str, float]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Per (mode, corpus): the real direction's delta against both control sets."""
        rows: list[dict[str, Any]] = []
        headline: dict[str, Any] = {f"clean_loss_{k}": v for k, v in clean.items()}
        for mode in modes:
            for key in clean:
                sub = df[(df["mode"] == mode) & (df["corpus"] == key)]
                real_row = sub.loc[sub["kind"] == "real"].iloc[0]
                real = float(real_row["delta"])
                ci = [float(real_row["delta_ci_low"]), float(real_row["delta_ci_high"])]
                rnd = compare(real, sub.loc[sub["kind"] == "random", "delta"].tolist())
                drd = compare(real, sub.loc[sub["kind"] == "diff_random", "delta"].tolist())
                rows.append({"mode": mode, "corpus": key, "clean_loss": clean[key], "delta_real": real,
                             "delta_real_ci_low": ci[0], "delta_real_ci_high": ci[1],
                             "random_mean": rnd["mean"], "random_sd": rnd["sd"], "z_random": rnd["z"],
                             "percentile_random": rnd["percentile"], "diff_random_mean": drd["mean"],
                             "diff_random_sd": drd["sd"], "z_diff_random": drd["z"],
                             "percentile_diff_random": drd["percentile"]})
                headline[f"{mode}_{key}_delta"] = real
                headline[f"{mode}_{key}_delta_ci"] = ci
                headline[f"{mode}_{key}_random_mean"] = rnd["mean"]
                headline[f"{mode}_{key}_random_sd"] = rnd["sd"]
                headline[f"{mode}_{key}_z"] = rnd["z"]
                headline[f"{mode}_{key}_percentile"] = rnd["percentile"]
                headline[f"{mode}_{key}_diff_random_mean"] = drd["mean"]
                headline[f"{mode}_{key}_diff_random_percentile"] = drd["percentile"]
            if all(k in clean for k in CORPORA):
                headline[f"{mode}_specificity"] = headline[f"{mode}_own_delta"] - headline[f"{mode}_generic_delta"]
        return rows, headline

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Headline figures, the real-vs-random table and a strip plot of delta-loss."""
        h = result.headline
        section.text(result.summary)
        if h.get("skipped"):
            section.note(str(h.get("reason", "skipped")), kind="warn")
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figs: dict[str, Any] = {"layer": h["layer"], "||mean diff||": h["direction_norm"]}
        for mode in ("ablate", "swap"):
            for key in CORPORA:
                if f"{mode}_{key}_delta" in h:
                    figs[f"{mode} Δloss ({key})"] = h[f"{mode}_{key}_delta"]
                    ci = h.get(f"{mode}_{key}_delta_ci")
                    if ci:
                        figs[f"{mode} Δloss CI ({key})"] = f"[{ci[0]:+.4g}, {ci[1]:+.4g}]"
                    z = h.get(f"{mode}_{key}_z")
                    figs[f"{mode} z ({key})"] = z if z is not None else "n/a"
        section.figures(figs)
        section.text(f"Own data: {h['own_corpus']} ({h['n_eval_tokens'].get('own', 0)} scored tokens); generic: "
                     f"{h['generic_corpus']} ({h['n_eval_tokens'].get('generic', 0)} tokens). Δloss is the change "
                     "in the finetuned model's mean per-token NLL (nats) when the projection on the direction is "
                     "ablated or swapped to the base model's value, with a "
                     f"{h.get('ci', 0.95):.0%} bootstrap CI over texts; the direction leaves out position 0 (the "
                     "attention sink). Controls: random unit directions with the real direction's projected "
                     "variance under the per-token difference covariance "
                     f"({h.get('proj_var_real', float('nan')):.4g}), and single tokens' difference directions.")
        summary = pd.read_parquet(run.path / result.artifacts[1])
        section.table(summary, caption="Δloss of the mean-difference direction vs random directions")
        df = pd.read_parquet(run.path / result.artifacts[0])
        panels = sorted({(m, c) for m, c in zip(df["mode"], df["corpus"], strict=True)},
                        key=lambda t: (t[0] != "ablate", t[1] != "own"))
        fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.2 * max(len(panels), 1), 3), squeeze=False)
        colours = {"random": "#888888", "diff_random": "#2b4cc0"}
        for ax, (mode, key) in zip(axes[0], panels, strict=False):
            sub = df[(df["mode"] == mode) & (df["corpus"] == key)]
            for x, kind in enumerate(("random", "diff_random")):
                vals = sub.loc[sub["kind"] == kind, "delta"].to_numpy()
                if len(vals):
                    jitter = np.linspace(-0.15, 0.15, len(vals))
                    ax.scatter(x + jitter, vals, s=14, color=colours[kind], label=kind)
            real = sub.loc[sub["kind"] == "real", "delta"]
            if len(real):
                ax.axhline(float(real.iloc[0]), color="#c03030", lw=2, label="mean-diff direction")
            ax.set_xticks([0, 1], ["random", "diff tokens"])
            ax.set_title(f"{mode} / {key}", fontsize=9)
            ax.set_ylabel("Δ loss (nats)")
        axes[0][0].legend(fontsize=7)
        section.figure(fig, "Δloss of the finetuned model: mean-difference direction (red) vs random directions")

