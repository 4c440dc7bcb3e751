"""``sae_diff``: a BatchTopK SAE on normalised activation differences h_ft - h_base at one layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmdiff.dictionaries import ActivationStream, TrainedDictionary, train_dictionary
from lmdiff.dictionaries.examples import unit_stats
from lmdiff.dictionaries.saelens import load_saelens, save_saelens
from lmdiff.errors import ConfigError
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.dictionaries.config import SAEDiffConfig
from lmdiff.methods.dictionaries.readouts import (
    STEERING_FILE,
    UNITS_FILE,
    open_dictionary_store,
    relevance_headline,
    skipped_result,
    steer_units,
    top_example_note,
    unit_rows,
    zero_difference,
)
from lmdiff.methods.dictionaries.report import (
    relevance_figures,
    render_steering,
    render_training,
    render_units,
)
from lmdiff.methods.dictionaries.writer import reply_pairs, writer_columns, writer_contrast, writer_headline
from lmdiff.methods.registry import register_method
from lmdiff.report.builder import Section
from lmdiff.runs.run import Run


@register_method
class SAEDiffMethod(DiffMethod[SAEDiffConfig]):
    """A BatchTopK SAE on per-token differences; latents ranked by the share of the difference they explain."""

    name = "sae_diff"
    title = "SAE on activation differences"
    description = "BatchTopK SAE on per-token ft-base differences: latents' lens, examples, frequency, steering"
    Config = SAEDiffConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {
        "n_texts": 64, "n_tokens": 64, "steering": False,
        "train": {"n_latents": 256, "k": 16, "train_tokens": 20000, "batch_size": 512}}
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True

    def run(self, ctx: MethodContext[SAEDiffConfig]) -> MethodResult:
        """Train (or load) the SAE, export it in SAELens' format, read out its top latents."""
        cfg = ctx.config
        sc = open_dictionary_store(ctx)
        if zero_difference(sc):
            return skipped_result(sc, "SAE")
        store, layer, ft = sc.store, sc.layer, ctx.pair.finetuned
        art = ctx.artifact_dir
        metrics_files: dict[str, str] = {}
        if cfg.pretrained:
            td = load_saelens(cfg.pretrained)
            if td.model.d_in != store.d_model:
                raise ConfigError(f"the pretrained SAE reads width {td.model.d_in}, but layer {layer} has width "
                                  f"{store.d_model}.")
            source = f"pretrained: {cfg.pretrained}"
        else:
            step = ctx.step("train", {"layer": layer, "train": cfg.train.model_dump(mode="json"),
                                      "store": store.meta.get("key_hash"), "min_position": cfg.min_position},
                            whole_config=False)
            out = step.prepare() if not step.done else step.dir
            stream = ActivationStream(store, layer, "diff", batch_size=cfg.train.batch_size,
                                      buffer_tokens=cfg.train.buffer_tokens, seed=cfg.train.seed,
                                      min_position=cfg.min_position)
            td = train_dictionary(stream, cfg.train, out, label="sae_diff")
            step.finish({"steps": cfg.train.steps})
            save_saelens(td, art / "saelens", {"model_name": ft.name,
                                               "hook_name": f"diff.blocks.{layer}.hook_resid_post",
                                               "lmdiff_input": "finetuned minus base residual stream"})
            metrics_files["sae_diff"] = str((out / "metrics.parquet").relative_to(ctx.run.path))
            source = "trained"
        return self._readouts(ctx, sc, td, source, metrics_files)

    def _readouts(self, ctx: MethodContext[SAEDiffConfig], sc: Any, td: TrainedDictionary, source: str,
                  metrics_files: dict[str, str]) -> MethodResult:
        cfg = ctx.config
        store, layer, ft = sc.store, sc.layer, ctx.pair.finetuned
        art = ctx.artifact_dir
        n_lat = td.model.n_latents
        seed = ctx.run_config.seed
        pairs = reply_pairs(sc.corpus, store.n_sequences, n_lat, seed) if cfg.writer_contrast else None
        st = unit_stats(store, layer, "diff", td.encode_raw, n_lat, n_top=cfg.n_examples,
                        min_position=cfg.min_position, sequences=pairs.sequences if pairs else None)
        dirs = td.directions()[:, 0]  # raw units [L, D]
        dn2 = np.linalg.norm(dirs, axis=1) ** 2
        total_var = sc.diff_variance * max(st.n_tokens, 1)
        share = st.energy * dn2 / max(total_var, 1e-12)
        writer, n_prompts = writer_contrast(st.sequence_energy, pairs, dn2, sc.mean_square, st.frequency > 0,
                                            seed=seed)
        ranked_by = "writer" if cfg.rank_by == "writer" and writer is not None else "variance"
        score = writer["writer_excess"].to_numpy() if ranked_by == "writer" and writer is not None else share
        order = [int(j) for j in np.argsort(-score, kind="stable") if st.frequency[j] > 0][: cfg.n_units]
        extra = {j: {"variance_share": float(share[j]), **writer_columns(writer, j)} for j in order}
        gt = ctx.pair.ground_truth
        table = pd.DataFrame({"latent": np.arange(n_lat), "frequency": st.frequency, "variance_share": share})
        if writer is not None:
            table = table.join(writer.drop(columns="unit"))
        write_parquet(art / "latents.parquet", table)
        rows = unit_rows(ft, sc, order, dirs, st, cfg, gt, extra)
        samples, search = steer_units(ctx, sc, order, dirs)
        write_json(art / UNITS_FILE, rows)
        write_json(art / STEERING_FILE, {"layer": layer, "samples": samples, "search": search})
        m = td.metrics
        tail = m.tail(max(1, len(m) // 20)) if len(m) else m
        headline: dict[str, Any] = {
            "layer": layer, "source": source, "n_latents": n_lat, "n_tokens": st.n_tokens,
            "n_massive_excluded": len(store.massive_rows(layer)),
            "train_tokens": int(len(m) * cfg.train.batch_size) if len(m) else None,
            "fve": float(tail["fve"].median()) if len(tail) else None,
            "l0": float(tail["l0"].mean()) if len(tail) else None,
            "dead": int(m["dead"].iloc[-1]) if len(m) else None,
            "alive": int((st.frequency > 0).sum()),
            "top_variance_share": [float(share[j]) for j in order],
            "ranked_by": ranked_by,
            **writer_headline(writer, n_prompts, order),
            **relevance_headline(ft, sc, rows, cfg, gt),
        }
        top_what = (f"{share[order[0]]:.1%} of the difference's variance" if ranked_by == "variance" or not order
                    else f"{extra[order[0]]['writer_excess']:+.2%} of the mean squared difference more in the "
                    f"finetune's replies, q {extra[order[0]]['writer_q']:.2g}")
        writer_note = (f"; {headline['writer_significant']} latents carry more of the difference in the finetune's "
                       f"own replies than in the base's (q <= 0.05, {n_prompts} prompts)" if writer is not None else "")
        summary = (f"{source} SAE ({n_lat} latents) on {st.n_tokens} difference tokens ({sc.corpus.name}), layer "
                   f"{layer}" + (f", variance explained {headline['fve']:.0%} at L0 {headline['l0']:.0f}"
                                 if headline["fve"] is not None else "")
                   + writer_note
                   + (f"; top latent by {ranked_by} ({top_what}): lens "
                      f"{', '.join(repr(t) for t in rows[0][cfg.lens_readout][:6])}" if rows else "")
                   + top_example_note(rows) + ".")

        def rel_path(p: Path) -> str:
            return str(p.relative_to(ctx.run.path))

        arts = [rel_path(art / UNITS_FILE), rel_path(art / STEERING_FILE), rel_path(art / "latents.parquet")]
        if (art / "saelens").exists():
            arts.append(rel_path(art / "saelens"))
        return MethodResult(headline=headline, summary=summary,
                            data={"units_file": arts[0], "steering_file": arts[1], "latents_file": arts[2],
                                  "metrics_files": metrics_files,
                                  "corpus": sc.corpus.describe()},
                            artifacts=arts, corpus=sc.corpus.name)

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Figures, training curves, the top latents' lens and examples, steering."""
        h = result.headline
        section.text(result.summary)
        if h.get("skipped"):
            return
        section.figures({"layer": h["layer"], "latents (alive)": f"{h['n_latents']} ({h['alive']})",
                         "variance explained": h.get("fve") if h.get("fve") is not None else "n/a",
                         "L0": h.get("l0") if h.get("l0") is not None else "n/a", **relevance_figures(h)})
        render_training(section, run, result)
        if h.get("ranked_by") == "writer":
            title = ("Latents that carry more of the difference in the finetune's own replies than in the base's "
                     f"({h.get('writer_prompts')} prompts; q: BH over all live latents)")
            cols: tuple[str, ...] = ("writer_excess", "writer_up", "writer_q", "variance_share")
        else:
            title, cols = "Latents ranked by their share of the difference's variance", ("variance_share",)
        render_units(section, run, result, title, "latent", cols)
        render_steering(section, run, result, "latent")
