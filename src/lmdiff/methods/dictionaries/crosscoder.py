"""``crosscoder``: a BatchTopK crosscoder on paired activations, with norm tags, latent scaling and a null control."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmdiff.dictionaries import ActivationStream, TrainedDictionary, train_dictionary
from lmdiff.dictionaries.examples import unit_stats
from lmdiff.dictionaries.scaling import TAGS, latent_scaling, norm_tags
from lmdiff.io import write_json, write_parquet
from lmdiff.methods.base import DiffMethod, MethodContext, MethodResult
from lmdiff.methods.dictionaries.config import CrosscoderConfig
from lmdiff.methods.dictionaries.readouts import (
    STEERING_FILE,
    UNITS_FILE,
    StoreContext,
    open_dictionary_store,
    relevance_headline,
    steer_units,
    top_example_note,
    unit_rows,
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

#: The control crosscoder's tags (its relative decoder norms are what chance gives).
CONTROL_FILE = "latents_control.parquet"


@register_method
class CrosscoderMethod(DiffMethod[CrosscoderConfig]):
    """A crosscoder over (base, finetuned) activations; finetuned-only latents counted against a control."""

    name = "crosscoder"
    title = "Crosscoder: latents specific to the finetuned model"
    description = ("BatchTopK crosscoder on paired activations: decoder-norm tags, latent scaling on both sides, "
                   "finetuned-only latents against a swapped-pair control")
    Config = CrosscoderConfig
    demo_settings: ClassVar[dict[str, Any] | None] = {
        "n_texts": 64, "n_tokens": 64, "steering": False,
        "train": {"n_latents": 256, "k": 16, "train_tokens": 20000, "batch_size": 512}}
    needs_shared_tokenizer = True
    white_box = True
    needs_both_resident = True

    def _train(self, ctx: MethodContext[CrosscoderConfig], sc: StoreContext, control: str) -> tuple[
            TrainedDictionary, str]:
        cfg = ctx.config
        step = ctx.step(f"train-{control}", {"layer": sc.layer, "train": cfg.train.model_dump(mode="json"),
                                             "store": sc.store.meta.get("key_hash"), "control": control,
                                             "min_position": cfg.min_position}, whole_config=False)
        out = step.dir if step.done else step.prepare()
        stream = ActivationStream(sc.store, sc.layer, "paired", batch_size=cfg.train.batch_size,
                                  buffer_tokens=cfg.train.buffer_tokens, seed=cfg.train.seed,
                                  min_position=cfg.min_position, control=control)  # type: ignore[arg-type]
        td = train_dictionary(stream, cfg.train, out, label=f"crosscoder ({control})" if control != "none"
                              else "crosscoder")
        step.finish({"steps": cfg.train.steps})
        return td, str((out / "metrics.parquet").relative_to(ctx.run.path))

    def run(self, ctx: MethodContext[CrosscoderConfig]) -> MethodResult:
        """Train the crosscoder and its control; tag, scale and read out the latents."""
        cfg = ctx.config
        sc = open_dictionary_store(ctx)
        store, layer, ft = sc.store, sc.layer, ctx.pair.finetuned
        art = ctx.artifact_dir
        td, mfile = self._train(ctx, sc, "none")
        metrics_files = {"crosscoder": mfile}
        n_lat = td.model.n_latents
        seed = ctx.run_config.seed
        pairs = reply_pairs(sc.corpus, store.n_sequences, n_lat, seed) if cfg.writer_contrast else None
        st = unit_stats(store, layer, "paired", td.encode_raw, n_lat, n_top=cfg.n_examples,
                        min_position=cfg.min_position, sequences=pairs.sequences if pairs else None)
        tags = norm_tags(td, st.frequency, cfg.ft_only_threshold)
        control_counts: dict[str, int] | None = None
        control_range: list[float] | None = None
        if cfg.control != "none":
            ctrl, cfile = self._train(ctx, sc, cfg.control)
            metrics_files[f"control ({cfg.control})"] = cfile
            cst = unit_stats(store, layer, "paired", ctrl.encode_raw, n_lat, n_top=1, min_position=cfg.min_position)
            ctags = norm_tags(ctrl, cst.frequency, cfg.ft_only_threshold)
            control_counts = {t: int((ctags.tag == t).sum()) for t in TAGS}
            control_range = _live_range(ctags)
            write_parquet(art / CONTROL_FILE, ctags)
        dirs = td.directions()  # [L, 2, D] raw units
        ft_energy = st.energy * (np.linalg.norm(dirs[:, 1], axis=1) ** 2)
        tags["ft_energy"] = ft_energy
        delta_n2 = np.linalg.norm(dirs[:, 1] - dirs[:, 0], axis=1) ** 2  # each latent's share of the difference
        writer, n_prompts = writer_contrast(st.sequence_energy, pairs, delta_n2, sc.mean_square, st.frequency > 0,
                                            seed=seed)
        if writer is not None:
            tags = tags.join(writer.drop(columns="unit"))
        one_sided = tags[tags.tag.isin(["finetuned-only", "base-only"])].sort_values("ft_energy", ascending=False)
        rest = tags[tags.tag.isin(["shared", "mixed"])].sort_values("ft_energy", ascending=False)
        scored = pd.concat([one_sided, rest]).latent.to_numpy()[: cfg.scaling_latents]
        scaling = latent_scaling(store, layer, td, scored, min_position=cfg.min_position)
        table = tags.merge(scaling, on="latent", how="left")
        write_parquet(art / "latents.parquet", table)
        ft_only = table[table.tag == "finetuned-only"].sort_values("ft_energy", ascending=False)
        shown = ft_only.latent.tolist()[: cfg.n_units]
        # then the latents that write more of the difference in the finetune's own replies (pair-replies), or
        # else the most finetuned-leaning ones, each labelled by its tag
        fill_by = "writer_excess" if writer is not None else "rel_norm"
        if len(shown) < cfg.n_units:
            more = table[~table.latent.isin(shown) & (table.tag != "dead")].sort_values(fill_by, ascending=False,
                                                                                         kind="stable")
            shown += more.latent.tolist()[: cfg.n_units - len(shown)]
        by_lat = table.set_index("latent")
        extra = {int(j): {"tag": str(by_lat.at[j, "tag"]), "rel_norm": float(by_lat.at[j, "rel_norm"]),
                          "nu_eps": _num(by_lat.at[j, "nu_eps"]), "nu_r": _num(by_lat.at[j, "nu_r"]),
                          **writer_columns(writer, int(j))}
                 for j in shown}
        gt = ctx.pair.ground_truth
        rows = unit_rows(ft, sc, [int(j) for j in shown], dirs[:, 1], st, cfg, gt, extra)
        samples, search = steer_units(ctx, sc, [int(j) for j in ft_only.latent.tolist()], dirs[:, 1])
        write_json(art / UNITS_FILE, rows)
        write_json(art / STEERING_FILE, {"layer": layer, "samples": samples, "search": search})
        counts = {t: int((tags.tag == t).sum()) for t in TAGS}
        ft_scaled = scaling[scaling.latent.isin(ft_only.latent)]
        m = td.metrics
        tail = m.tail(max(1, len(m) // 20))
        headline: dict[str, Any] = {
            "layer": layer, "n_latents": n_lat, "n_tokens": st.n_tokens,
            "n_massive_excluded": len(store.massive_rows(layer)),
            "train_tokens": int(len(m) * cfg.train.batch_size),
            "fve": float(tail["fve"].median()), "l0": float(tail["l0"].mean()), "dead": int(m["dead"].iloc[-1]),
            "tag_counts": counts, "finetuned_only": counts["finetuned-only"], "base_only": counts["base-only"],
            "control": cfg.control, "control_tag_counts": control_counts,
            "rel_norm_range": _live_range(tags), "control_rel_norm_range": control_range,
            "filled_by": fill_by if len(ft_only) < cfg.n_units else None,
            **writer_headline(writer, n_prompts, [int(j) for j in shown]),
            "finetuned_only_control": control_counts["finetuned-only"] if control_counts else None,
            "finetuned_only_excess": (counts["finetuned-only"] - control_counts["finetuned-only"]
                                      if control_counts else None),
            "finetuned_only_low_nu": int(((ft_scaled.nu_eps.abs() < 0.3) & (ft_scaled.nu_r.abs() < 0.3)).sum()),
            "median_nu_eps_finetuned_only": _num(ft_scaled.nu_eps.median()) if len(ft_scaled) else None,
            "median_nu_r_finetuned_only": _num(ft_scaled.nu_r.median()) if len(ft_scaled) else None,
            **relevance_headline(ft, sc, rows, cfg, gt),
        }
        null = (f"; control ({cfg.control}): {control_counts['finetuned-only']}" if control_counts else "")
        rng_note = (f"; relative decoder norms span {_span(headline['rel_norm_range'])}"
                    + (f" (control {_span(control_range)})" if control_range else ""))
        writer_note = (f"; {headline['writer_significant']} latents write more of the difference in the finetune's "
                       f"own replies than in the base's (q <= 0.05, {n_prompts} prompts)" if writer is not None else "")
        summary = (f"crosscoder ({n_lat} latents, variance explained {headline['fve']:.0%}) on {st.n_tokens} paired "
                   f"tokens ({sc.corpus.name}), layer {layer}: {counts['finetuned-only']} finetuned-only, "
                   f"{counts['base-only']} base-only, {counts['shared']} shared latents{null}; "
                   f"{headline['finetuned_only_low_nu']} finetuned-only latents also pass latent scaling "
                   f"(|nu_eps|, |nu_r| < 0.3)" + rng_note + writer_note
                   + (f"; top latent's lens: {', '.join(repr(t) for t in rows[0][cfg.lens_readout][:6])}"
                      if rows else "") + top_example_note(rows) + ".")

        def rel_path(name: str) -> str:
            return str((art / name).relative_to(ctx.run.path))

        return MethodResult(headline=headline, summary=summary,
                            data={"units_file": rel_path(UNITS_FILE), "steering_file": rel_path(STEERING_FILE),
                                  "latents_file": rel_path("latents.parquet"), "metrics_files": metrics_files,
                                  **({"control_latents_file": rel_path(CONTROL_FILE)} if control_counts else {}),
                                  "corpus": sc.corpus.describe()},
                            artifacts=[rel_path(n) for n in (UNITS_FILE, STEERING_FILE, "latents.parquet",
                                                             *([CONTROL_FILE] if control_counts else []))],
                            corpus=sc.corpus.name)

    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Tag counts against the control, the rel_norm histogram, latent scaling, top latents, curves."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = result.headline
        section.text(result.summary)
        section.figures({"layer": h["layer"], "variance explained": h["fve"], "L0": h["l0"],
                         "finetuned-only latents": h["finetuned_only"],
                         f"finetuned-only in the {h['control']} control": _fig(h.get("finetuned_only_control")),
                         "base-only latents": h["base_only"],
                         "finetuned-only with |nu| < 0.3 (latent scaling)": h["finetuned_only_low_nu"],
                         **relevance_figures(h)})
        lat = pd.read_parquet(run.path / result.data["latents_file"])
        alive = lat[lat.tag != "dead"]
        fig, ax = plt.subplots(figsize=(5, 3))
        ctrl_path = run.path / result.data.get("control_latents_file", "-")
        ctrl = pd.read_parquet(ctrl_path) if ctrl_path.is_file() else None
        ctrl_rel = ctrl[ctrl.tag != "dead"]["rel_norm"] if ctrl is not None else alive["rel_norm"].iloc[:0]
        both = pd.concat([alive["rel_norm"], ctrl_rel])
        lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
        bins = [float(b) for b in np.linspace(lo, max(hi, lo + 1e-6), 41)]  # one scale for both histograms
        ax.hist(alive["rel_norm"], bins=bins, label="crosscoder")
        if ctrl is not None:
            ax.hist(ctrl_rel, bins=bins, histtype="step", color="k", label=f"{h['control']} control")
            ax.legend(fontsize=7)
        ax.set_xlabel("||d_ft|| / (||d_base|| + ||d_ft||)")
        ax.set_ylabel("latents")
        section.figure(fig, caption="relative decoder norms (0: base-only, 1: finetuned-only); the control's sides "
                       "carry no meaning, so its spread is what chance gives")
        render_training(section, run, result)
        then = {"writer_excess": "then those writing more of the difference in the finetune's own replies",
                "rel_norm": "then the most finetuned-leaning"}.get(h.get("filled_by") or "", "")
        cols: tuple[str, ...] = ("tag", "rel_norm", "nu_eps", "nu_r")
        if h.get("writer_prompts"):
            cols += ("writer_excess", "writer_q")
        render_units(section, run, result, "Finetuned-only latents" + (f" ({then})" if then else ""), "latent",
                     cols)
        scored = lat[lat.nu_eps.notna() & lat.tag.isin(["finetuned-only", "base-only"])]
        if len(scored):
            section.heading("Latent scaling of the one-sided latents")
            section.table(scored[["latent", "tag", "rel_norm", "frequency", "beta_eps_base", "beta_eps_ft",
                                  "beta_r_base", "beta_r_ft", "nu_eps", "nu_r"]], max_rows=30,
                          caption="nu: the other side's beta over the own side's (near 0: the concept is specific "
                          "to the own side; large: the other model holds it too, the norm tag is an artefact)")
        render_steering(section, run, result, "latent")


def _live_range(tags: pd.DataFrame) -> list[float] | None:
    """[min, max] relative decoder norm of the latents that fire (None: none fires)."""
    live = tags[tags.tag != "dead"].rel_norm
    return [float(live.min()), float(live.max())] if len(live) else None


def _span(r: list[float] | None) -> str:
    return f"{r[0]:.3f}-{r[1]:.3f}" if r else "n/a"


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _fig(x: Any) -> Any:
    return "n/a" if x is None else x
