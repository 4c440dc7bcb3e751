"""The registered adl method: mean differences from the shared store, read out per layer, then steering."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmdiff.errors import ConfigError
from lmdiff.interp.directions import mean_differences, open_direction_store
from lmdiff.interp.relevance import relevance_producer
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.adl.config import ADLConfig
from lmdiff.methods.adl.readouts import READOUTS, layer_readouts
from lmdiff.methods.adl.report import render_adl
from lmdiff.methods.adl.steering import steering_samples
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run

#: Files the adl method writes into its artifact directory (agents and reports read them by these names).
LOGIT_LENS_FILE = "logit_lens.parquet"
PATCHSCOPE_FILE = "patchscope.parquet"
RELEVANCE_FILE = "relevance.parquet"
STEERING_FILE = "steering.json"
MEAN_DIFFERENCES_FILE = "mean_differences.npz"


@register_method
class ADLMethod(DiffMethod[ADLConfig]):
    """Activation Difference Lens: logit lens, patchscope and steering of mean activation differences."""

    name = "adl"
    title = "Activation Difference Lens: what the mean activation difference encodes"
    description = "logit lens, patchscope and steering with the mean ft-base difference at the first positions"
    Config = ADLConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {
        "n_texts": 64, "n_tokens": 16, "steering_prompts": 2, "steering_samples": 2,
        "steering_search_steps": 2, "max_new_tokens": 24, "patchscope_scales": [1.0, 4.0],
    }
    default_set_settings: ClassVar[dict[str, Any]] = {
        "n_texts": 64, "n_tokens": 16, "steering_prompts": 2, "steering_samples": 2,
        "steering_search_steps": 2, "max_new_tokens": 24, "patchscope_scales": [1.0, 4.0],
    }
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True  # the steering search scores finetuned samples with the base model

    def run(self, ctx: MethodContext[ADLConfig]) -> MethodResult:
        """Mean differences, lens, patchscope and relevance per layer; steering at ``steering_layer``."""
        cfg = ctx.config
        pair = ctx.pair
        corpus = cfg.load_corpus(pair, ctx.run_config.seed, cache_dir=ctx.corpus_cache_dir)
        ft = pair.finetuned
        layers = cfg.store_layers(pair)
        steer_layer = ft.resolve_layer(cfg.steering_layer)
        if cfg.steering and steer_layer not in layers:
            raise ConfigError(f"steering_layer {cfg.steering_layer} (block {steer_layer}) is not among the layers "
                              f"read out ({layers}).", hint="add it to method.adl.layers")
        store = open_direction_store(cfg, pair, corpus, layers, ctx.run.path / "activations",
                                     shard_tokens=ctx.run_config.compute.activation_shard_tokens,
                                     executor=ctx.executor)
        art = ctx.artifact_dir
        gt = pair.ground_truth
        means_by_layer = {layer: mean_differences(store, layer, cfg.k) for layer in layers}
        arrays: dict[str, Any] = {
            f"layer{layer}_{k}": np.asarray(v) for layer, m in means_by_layer.items() for k, v in m.items()
        }
        np.savez(art / MEAN_DIFFERENCES_FILE, **arrays)
        rows: list[dict[str, Any]] = []
        relevance: list[dict[str, Any]] = []
        patch_rows: list[dict[str, Any]] = []
        for layer, means in means_by_layer.items():
            lens_rows, rel_rows, p_rows = layer_readouts(ft, layer, means, cfg, gt)
            rows += lens_rows
            relevance += rel_rows
            patch_rows += p_rows
        write_parquet(art / LOGIT_LENS_FILE, pd.DataFrame(rows))
        write_parquet(art / PATCHSCOPE_FILE,
                      pd.DataFrame(patch_rows) if patch_rows else pd.DataFrame({"position": []}))
        write_parquet(art / RELEVANCE_FILE, pd.DataFrame(relevance))
        steering_rows: list[dict[str, Any]] = []
        search: list[dict[str, Any]] = []
        if cfg.steering:
            steering_rows, search = steering_samples(pair, steer_layer, means_by_layer[steer_layer], cfg,
                                                     ctx.run_config.seed)
        write_json(art / STEERING_FILE, {"layer": steer_layer, "samples": steering_rows, "search": search})
        by_layer: dict[str, Any] = {}
        pos = min(1, cfg.k - 1)  # position 0 is the attention sink: its difference is mostly sink activations
        scored: list[tuple[float, int, str]] = []
        for layer, means in means_by_layer.items():
            entry: dict[str, Any] = {
                "norm_ft": means["norm_ft"],
                "mean_diff_norms": [float(np.linalg.norm(means["diff"][p])) for p in range(cfg.k)],
            }
            for readout in READOUTS:
                picked = [r for r in relevance if r["layer"] == layer and r["readout"] == readout
                          and r["position"] >= pos and r.get("share") is not None]
                shares = [r["share"] for r in picked]
                null = [r["null_share"] for r in picked if r.get("null_share") is not None]
                entry[f"{readout}_relevance"] = float(np.mean(shares)) if shares else None
                entry[f"{readout}_relevance_null"] = float(np.mean(null)) if null else None
                entry[f"top_{readout}"] = [r["token"] for r in rows if r["layer"] == layer and r["readout"] == readout
                                           and r["position"] == pos and r["sign"] == "+"][:10]
                if shares:
                    scored.append((float(np.mean(shares)), layer, readout))
            by_layer[str(layer)] = entry
        # The headline is a readout declared before looking at the ground truth: lens delta at the last layer,
        # positions pos..k-1. The best of layers x readouts is chosen against the ground truth itself, so it is
        # reported only as an exploratory figure, labelled so.
        primary_layer, primary_readout = max(layers), "lens_delta"
        primary = by_layer[str(primary_layer)]
        best = max(scored) if scored else (None, primary_layer, primary_readout)
        first = means_by_layer[layers[0]]
        headline: dict[str, Any] = {
            "layers": layers, "k": cfg.k, "n_texts": store.n_sequences,
            "norm_ft": first["norm_ft"],
            "mean_diff_norm_pos0": float(np.linalg.norm(first["diff"][0])),
            "by_layer": by_layer,
            "lens_relevance": primary[f"{primary_readout}_relevance"],
            "lens_relevance_null": primary[f"{primary_readout}_relevance_null"],
            "lens_relevance_layer": primary_layer if scored else None,
            "lens_relevance_readout": primary_readout if scored else None,
            "lens_relevance_positions": f"{pos}-{cfg.k - 1}",
            "lens_relevance_null_kind": f"{cfg.null_directions} random directions of matched norm",
            "exploratory_best_relevance": best[0],
            "exploratory_best_relevance_null": (by_layer[str(best[1])][f"{best[2]}_relevance_null"]
                                                if scored else None),
            "exploratory_best_layer": best[1] if scored else None,
            "exploratory_best_readout": best[2] if scored else None,
            "relevance_producer": relevance_producer(gt) if scored else None,
            "top_lens": primary[f"top_{primary_readout}"],
        }
        if steering_rows:
            headline["steering_alpha"] = steering_rows[0]["alpha"]
            headline["steering_layer"] = steer_layer
        def rel(n: str) -> str:
            return str((art / n).relative_to(ctx.run.path))

        def share(x: float | None) -> str:
            return f"{x:.0%}" if x is not None else "n/a"

        rel_primary = headline["lens_relevance"]
        summary = (
            f"{store.n_sequences} texts ({corpus.name}), layers {layers}: {primary_readout} of +diff at position "
            f"{pos}, layer {primary_layer}: {', '.join(repr(t) for t in headline['top_lens'][:6])}"
            + (f"; token relevance {share(rel_primary)} (pre-declared: {primary_readout}, layer {primary_layer}, "
               f"positions {pos}-{cfg.k - 1}; random directions of matched norm: "
               f"{share(headline['lens_relevance_null'])}); exploratory best of layers x readouts, chosen against "
               f"the ground truth: {share(best[0])} ({best[2]}, layer {best[1]}; null "
               f"{share(headline['exploratory_best_relevance_null'])})"
               if scored else "")
            + "."
        )
        return MethodResult(
            headline=headline,
            summary=summary,
            data={"corpus": corpus.describe()},
            artifacts=[rel(n) for n in (LOGIT_LENS_FILE, PATCHSCOPE_FILE, RELEVANCE_FILE, STEERING_FILE,
                                        MEAN_DIFFERENCES_FILE)],
            corpus=corpus.name,
        )

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Lens tables per layer and position, patchscope, relevance and steered vs unsteered samples."""
        render_adl(result, section, run)
